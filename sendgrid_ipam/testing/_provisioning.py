"""Handlers of the 3 IP Provisioning operations (/v3/partners/accounts/{accountID}/ips).

The spec documents one 400 error id ("10-40002", an invalid IP); the fake numbers its other
refusals 10-40000 .. 10-40008 as listed below, so tests can tell them apart.
"""

from __future__ import annotations

from typing import Any

from ._paging import page
from ._params import is_ipv4, json_object, parse_int
from ._replies import NO_CONTENT, Call, Refused, Reply
from ._state import AddressesExhausted, State

DEFAULT_LIMIT = 10
MAX_LIMIT = 5000
MAX_BATCH = 10
REGIONS = ("eu", "us")

# Error ids of 400 replies ("10-40002" is the spec's; the others are the fake's own).
JSON_PARSE = "10-40000"
BAD_COUNT = "10-40001"
BAD_IP = "10-40002"
BAD_LIMIT = "10-40003"
BAD_REGION = "10-40004"
BAD_IPS = "10-40005"
NOT_ON_ACCOUNT = "10-40006"
NO_IPS_REMAINING = "10-40007"
UNKNOWN_OFFSET = "10-40008"

_INVALID_IP = "Field must be a valid IP address"


def _account(state: State, call: Call) -> tuple[str, list[str]]:
    account_id = call.path["accountID"]
    ips = state.accounts.get(account_id)
    if ips is None:
        raise Refused(404, "", "Account not found", "10-40400")
    return account_id, ips


def _body(call: Call) -> dict[str, Any]:
    return json_object(call.body, JSON_PARSE)


def list_account_ips(state: State, call: Call) -> Reply:
    """ListAccountIps: newest first; `offset` is the last IP of the previous page."""
    _, ips = _account(state, call)
    text = call.query.get("limit")
    limit = DEFAULT_LIMIT if text is None else parse_int(text)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise Refused(
            400, "limit", f"Field must be an integer between 1 and {MAX_LIMIT}", BAD_LIMIT
        )
    offset = call.query.get("offset")
    before = None
    if offset is not None:
        if not is_ipv4(offset):
            raise Refused(400, "offset", _INVALID_IP, BAD_IP)
        address = state.addresses.known.get(offset)
        if address is None:
            raise Refused(400, "offset", "IP not found", UNKNOWN_OFFSET)
        before = address.seq  # still known after it left the account: paging goes on
    found, more = page(ips, state.addresses.seq, before, limit, descending=True)
    result = [{"ip": ip, "region": state.region(ip)} for ip in found]
    return Reply.json(200, {"result": result, "pages": {"last": found[-1]} if more else {}})


def add_account_ips(state: State, call: Call) -> Reply:
    """AddAccountIps: hands out `count` new addresses in `region` to the account."""
    account_id, _ = _account(state, call)
    body = _body(call)
    count, region = body.get("count"), body.get("region")
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= MAX_BATCH:
        raise Refused(
            400, "count", f"Field must be an integer between 1 and {MAX_BATCH}", BAD_COUNT
        )
    if region not in REGIONS:
        raise Refused(400, "region", "Field must be one of: " + ", ".join(REGIONS), BAD_REGION)
    try:
        added = state.add_account_ips(account_id, count, region)
    except AddressesExhausted:
        raise Refused(400, "count", "No IPs remaining", NO_IPS_REMAINING) from None
    return Reply.json(201, {"ips": added, "region": region})


def remove_account_ips(state: State, call: Call) -> Reply:
    """RemoveAccountIps: every IP must be on the account, else nothing is removed."""
    account_id, held = _account(state, call)
    ips = _body(call).get("ips")
    if not isinstance(ips, list) or not 1 <= len(ips) <= MAX_BATCH:
        raise Refused(400, "ips", f"Field must hold between 1 and {MAX_BATCH} IPs", BAD_IPS)
    if not all(is_ipv4(ip) for ip in ips):
        raise Refused(400, "ips", _INVALID_IP, BAD_IP)
    on_account = set(held)
    missing = [ip for ip in dict.fromkeys(ips) if ip not in on_account]
    if missing:
        raise Refused(400, "ips", "IP not found on account: " + ", ".join(missing), NOT_ON_ACCOUNT)
    state.remove_account_ips(account_id, ips)
    return NO_CONTENT
