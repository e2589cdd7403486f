"""Request validation (before anything is sent) and lenient reading of replies.

Every rule is exercised through the public methods a user calls: the error must name the
field and the rule, and no request may leave the client.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from typing import Any

import pytest

from sendgrid_ipam import (
    AccountIps,
    DecodeError,
    IpAddress,
    IpPool,
    IpPoolIps,
    PoolRef,
    RetryPolicy,
    SendGridIPAM,
    UpdatedIp,
    ValidationError,
)
from tests.conftest import BASE, RecordingResponses

IP = "192.0.2.1"
Call = Callable[[SendGridIPAM], Any]


def ips(n: int, prefix: str = "10.0") -> list[str]:
    return [f"{prefix}.{i // 250}.{i % 250 + 1}" for i in range(n)]


def subusers(n: int) -> list[str]:
    return [str(100000 + i) for i in range(n)]


async def run(call: Call, sg: SendGridIPAM) -> Any:
    """Make the call; list methods are iterated to the end."""
    result = call(sg)
    if inspect.isawaitable(result):
        return await result
    return [item async for item in result]


# (call, field, a fragment of the rule)
INVALID: dict[str, tuple[Call, str, str]] = {
    # AddAccountIps
    "count 0": (lambda sg: sg.provisioning.add_ips("acct", count=0, region="us"),
                "count", "from 1 to 10"),
    "count 11": (lambda sg: sg.provisioning.add_ips("acct", count=11, region="us"),
                 "count", "from 1 to 10"),
    "count True": (lambda sg: sg.provisioning.add_ips("acct", count=True, region="us"),
                   "count", "integer"),
    "count '3'": (lambda sg: sg.provisioning.add_ips("acct", count="3", region="us"),
                  "count", "integer"),
    "count 2.0": (lambda sg: sg.provisioning.add_ips("acct", count=2.0, region="us"),
                  "count", "integer"),
    "region xx": (lambda sg: sg.provisioning.add_ips("acct", count=1, region="xx"),
                  "region", "'eu' or 'us'"),
    "region US": (lambda sg: sg.provisioning.add_ips("acct", count=1, region="US"),
                  "region", "'eu' or 'us'"),
    "account id empty": (lambda sg: sg.provisioning.add_ips("", count=1, region="us"),
                         "account_id", "non-empty"),
    "account id not a string": (lambda sg: sg.provisioning.list_ips(123),
                                "account_id", "string"),
    # RemoveAccountIps
    "remove 0 account ips": (lambda sg: sg.provisioning.remove_ips("acct", ips=[]),
                             "ips", "from 1 to 10"),
    "remove 11 account ips": (lambda sg: sg.provisioning.remove_ips("acct", ips=ips(11)),
                              "ips", "from 1 to 10"),
    "remove unparsable account ip": (
        lambda sg: sg.provisioning.remove_ips("acct", ips=["192.0.2.300"]),
        "ips", "'192.0.2.300' is not an IPv4 address"),
    "remove IPv6 account ip": (
        lambda sg: sg.provisioning.remove_ips("acct", ips=["2001:db8::1"]),
        "ips", "not an IPv4 address"),
    "remove account ips given as a string": (
        lambda sg: sg.provisioning.remove_ips("acct", ips=IP), "ips", "must be a list"),
    "remove duplicate account ips": (
        lambda sg: sg.provisioning.remove_ips("acct", ips=[IP, IP]), "ips", "must not repeat"),
    # ListAccountIps
    "account ips limit 0": (lambda sg: sg.provisioning.list_ips("acct", limit=0),
                            "limit", "from 1 to 5000"),
    "account ips limit 5001": (lambda sg: sg.provisioning.list_ips("acct", limit=5001),
                               "limit", "from 1 to 5000"),
    # CreateIpPool / UpdateIpPool names
    "pool name empty": (lambda sg: sg.pools.create(""), "name", "from 2 to 64"),
    "pool name 1 char": (lambda sg: sg.pools.create("a"), "name", "from 2 to 64"),
    "pool name 65 chars": (lambda sg: sg.pools.create("p" * 65), "name", "from 2 to 64"),
    "pool name leading space": (lambda sg: sg.pools.create(" x"), "name",
                                "must not begin with a space or a period"),
    "pool name leading period": (lambda sg: sg.pools.create(".x"), "name",
                                 "must not begin with a space or a period"),
    "pool name not a string": (lambda sg: sg.pools.create(12), "name", "must be a string"),
    "rename to 1 char": (lambda sg: sg.pools.rename("1", "a"), "name", "from 2 to 64"),
    "rename to leading period": (lambda sg: sg.pools.rename("1", ".hidden"), "name",
                                 "must not begin with a space or a period"),
    # CreateIpPool IPs
    "create pool with 101 ips": (lambda sg: sg.pools.create("big", ips=ips(101)),
                                 "ips", "from 0 to 100"),
    "create pool with unparsable ip": (lambda sg: sg.pools.create("p1", ips=["10.0.0.256"]),
                                       "ips", "'10.0.0.256' is not an IP address"),
    "create pool with ips as a string": (lambda sg: sg.pools.create("p1", ips=IP),
                                         "ips", "must be a list"),
    "create pool with duplicate ips": (lambda sg: sg.pools.create("p1", ips=[IP, IP]),
                                       "ips", "must not repeat"),
    "create pool with a non-string ip": (lambda sg: sg.pools.create("p1", ips=[3232235777]),
                                         "ips", "non-empty strings"),
    # AddIpsToIpPool / DeleteIpsFromIpPool
    "add 0 ips to pool": (lambda sg: sg.pools.add_ips("1", []), "ips", "from 1 to 100"),
    "add 101 ips to pool": (lambda sg: sg.pools.add_ips("1", ips(101)), "ips", "from 1 to 100"),
    "add ips to pool as a string": (lambda sg: sg.pools.add_ips("1", IP), "ips",
                                    "must be a list"),
    "remove 0 ips from pool": (lambda sg: sg.pools.remove_ips("1", []), "ips",
                               "from 1 to 100"),
    "remove 101 ips from pool": (lambda sg: sg.pools.remove_ips("1", ips(101)), "ips",
                                 "from 1 to 100"),
    "remove unparsable ip from pool": (lambda sg: sg.pools.remove_ips("1", ["ip-1"]), "ips",
                                       "'ip-1' is not an IP address"),
    # pool ids in paths
    "empty pool id": (lambda sg: sg.pools.get(""), "poolid", "must not be empty"),
    "pool id None": (lambda sg: sg.pools.delete(None), "poolid", "must be a string"),
    # list limits
    "list ips limit 0": (lambda sg: sg.ips.list(limit=0), "limit", "from 1 to 5000"),
    "list ips limit 5001": (lambda sg: sg.ips.list(limit=5001), "limit", "from 1 to 5000"),
    "list ips limit '10'": (lambda sg: sg.ips.list(limit="10"), "limit", "integer"),
    "list pools limit 101": (lambda sg: sg.pools.list(limit=101), "limit", "from 1 to 100"),
    "list pool ips limit 101": (lambda sg: sg.pools.list_ips("1", limit=101), "limit",
                                "from 1 to 100"),
    "list subusers limit 101": (lambda sg: sg.ips.list_subusers(IP, limit=101), "limit",
                                "from 1 to 100"),
    "list subusers limit 0": (lambda sg: sg.ips.list_subusers(IP, limit=0), "limit",
                              "from 1 to 100"),
    # ListIp filters
    "list ips pool with is_parent_assigned": (
        lambda sg: sg.ips.list(pool="12345", is_parent_assigned=True), "pool",
        "is_parent_assigned"),
    "list ips pool with is_parent_assigned False": (
        lambda sg: sg.ips.list(pool="12345", is_parent_assigned=False), "pool",
        "is_parent_assigned"),
    "list ips bad ip filter": (lambda sg: sg.ips.list(ip="x"), "ip", "IP address"),
    "list ips region": (lambda sg: sg.ips.list(region="mars"), "region", "'all'"),
    "list ips is_leased 'yes'": (lambda sg: sg.ips.list(is_leased="yes"), "is_leased",
                                 "True or False"),
    "list ips negative start": (lambda sg: sg.ips.list(start_added_at=-1), "start_added_at",
                                "at least 0"),
    "list pools region": (lambda sg: sg.pools.list(region="xx"), "region", "'all'"),
    "list pools bad ip filter": (lambda sg: sg.pools.list(ip="1.2.3"), "ip", "IP address"),
    # AddIp
    "add ip 101 subusers": (
        lambda sg: sg.ips.add(is_auto_warmup=True, is_parent_assigned=False,
                              subusers=subusers(101)), "subusers", "from 0 to 100"),
    "add ip subusers as a string": (
        lambda sg: sg.ips.add(is_auto_warmup=True, is_parent_assigned=False,
                              subusers="12345"), "subusers", "must be a list"),
    "add ip warmup 'yes'": (
        lambda sg: sg.ips.add(is_auto_warmup="yes", is_parent_assigned=False),
        "is_auto_warmup", "True or False"),
    "add ip region": (
        lambda sg: sg.ips.add(is_auto_warmup=True, is_parent_assigned=False, region="asia"),
        "region", "'eu' or 'us'"),
    # UpdateIp
    "update ip with no field": (lambda sg: sg.ips.update(IP), "is_auto_warmup",
                                "at least one of is_auto_warmup, is_parent_assigned, is_enabled"),
    "update ip with non-bool": (lambda sg: sg.ips.update(IP, is_enabled=1), "is_enabled",
                                "True or False"),
    # IPs in paths
    "get unparsable ip": (lambda sg: sg.ips.get("not-an-ip"), "ip", "IP address"),
    "get ip with a path in it": (lambda sg: sg.ips.get("1.2.3.4/../pools"), "ip",
                                 "IP address"),
    "update unparsable ip": (lambda sg: sg.ips.update("999.1.1.1", is_enabled=True), "ip",
                             "IP address"),
    "list subusers of unparsable ip": (lambda sg: sg.ips.list_subusers("x"), "ip",
                                       "IP address"),
    # AddSubUsersToIp / DeleteSubUsersFromIp
    "add no subusers": (lambda sg: sg.ips.add_subusers(IP, []), "subusers", "from 1 to 1000"),
    "add subusers as a string": (lambda sg: sg.ips.add_subusers(IP, "12345"), "subusers",
                                 "must be a list"),
    "add duplicate subusers": (lambda sg: sg.ips.add_subusers(IP, ["1", "1"]), "subusers",
                               "must not repeat"),
    "remove no subusers": (lambda sg: sg.ips.remove_subusers(IP, []), "subusers",
                           "from 1 to 1000"),
    "remove empty subuser id": (lambda sg: sg.ips.remove_subusers(IP, [""]), "subusers",
                                "non-empty strings"),
}


@pytest.mark.parametrize(("call", "field", "rule"), INVALID.values(), ids=INVALID.keys())
async def test_invalid_input_is_refused_before_sending(
    client: SendGridIPAM, mocked: RecordingResponses, call: Call, field: str, rule: str
) -> None:
    with pytest.raises(ValidationError) as info:
        await run(call, client)
    assert info.value.field == field
    assert rule in info.value.rule
    assert str(info.value).startswith(f"{field}: ")
    assert isinstance(info.value, ValueError)
    assert mocked.sent == []


def test_list_methods_refuse_at_the_call_not_at_the_first_page(client: SendGridIPAM) -> None:
    """A bad argument surfaces where the user wrote it, even if the list is never iterated."""
    with pytest.raises(ValidationError):
        client.ips.list(limit=0)
    with pytest.raises(ValidationError):
        client.pools.list_ips("1", limit=0)
    with pytest.raises(ValidationError):
        client.provisioning.list_ips("acct", limit=0)


# ---------------------------------------------------------------- the limits themselves pass

LIST_REPLY = {"result": [], "_metadata": {"next_params": {"after_key": None}}}


async def test_boundary_values_are_accepted(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(re.compile(r".*/v3/partners/accounts/acct/ips.*"),
               payload={"result": [], "pages": {}}, repeat=True)
    mocked.post(f"{BASE}/v3/partners/accounts/acct/ips",
                payload={"ips": ips(10), "region": "eu"}, status=201)
    mocked.post(f"{BASE}/v3/partners/accounts/acct/ips",
                payload={"ips": ips(1), "region": "us"}, status=201)
    mocked.delete(f"{BASE}/v3/partners/accounts/acct/ips", status=204, repeat=True)
    mocked.post(f"{BASE}/v3/send_ips/pools", status=201, repeat=True,
                payload={"id": "1", "name": "pp", "ips": []})
    mocked.get(re.compile(r".*/v3/send_ips/(ips|pools)(/[^/]+/(ips|subusers))?\?.*"),
               payload=LIST_REPLY, repeat=True)
    mocked.post(re.compile(r".*/v3/send_ips/pools/1/ips:batch(Add|Delete)$"), repeat=True,
                payload={"id": "1", "name": "pp", "ips": []})
    mocked.post(f"{BASE}/v3/send_ips/ips", status=201, payload={"ip": IP}, repeat=True)

    added = await client.provisioning.add_ips("acct", count=10, region="eu")
    assert added == AccountIps(ips=tuple(ips(10)), region="eu")
    await client.provisioning.add_ips("acct", count=1, region="us")
    await client.provisioning.remove_ips("acct", ips=ips(10))
    await client.provisioning.remove_ips("acct", ips=ips(1))
    await run(lambda sg: sg.provisioning.list_ips("acct", limit=5000), client)
    await run(lambda sg: sg.provisioning.list_ips("acct", limit=1), client)
    await client.pools.create("p" * 64, ips=ips(100))
    await client.pools.create("pp")
    await client.pools.create("a.", ips=["2001:db8::1"])
    await client.pools.add_ips("1", ips(100))
    await client.pools.remove_ips("1", ips(1))
    await run(lambda sg: sg.ips.list(limit=5000), client)
    await run(lambda sg: sg.ips.list(limit=1, pool="12345"), client)
    await run(lambda sg: sg.ips.list(is_parent_assigned=False), client)
    await run(lambda sg: sg.pools.list(limit=100), client)
    await run(lambda sg: sg.pools.list_ips("1", limit=100), client)
    await run(lambda sg: sg.ips.list_subusers(IP, limit=100), client)
    await client.ips.add(is_auto_warmup=False, is_parent_assigned=True, subusers=subusers(100))
    await client.ips.add(is_auto_warmup=False, is_parent_assigned=True, subusers=[])
    bodies = [s.json for s in mocked.sent if s.method == "POST" and s.url.endswith("/pools")]
    assert bodies[0] == {"name": "p" * 64, "ips": ips(100)}


async def test_generators_and_tuples_are_lists(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.post(f"{BASE}/v3/send_ips/pools/7/ips:batchAdd", payload={"id": "7", "ips": []})
    mocked.post(f"{BASE}/v3/send_ips/pools/7/ips:batchDelete", status=204)
    await client.pools.add_ips("7", (ip for ip in [IP, "192.0.2.2"]))
    await client.pools.remove_ips("7", (IP,))
    assert [s.json for s in mocked.sent] == [
        {"ips": [IP, "192.0.2.2"]},
        {"ips": [IP]},
    ]


# ---------------------------------------------------------------- lenient replies


async def test_unknown_reply_fields_are_ignored(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{BASE}/v3/send_ips/ips/{IP}", payload={
        "ip": IP,
        "pools": [{"id": "1", "name": "tx", "colour": "red"}],
        "is_auto_warmup": False,
        "brand_new_field": {"nested": [1, 2]},
        "warmup_stage": 3,
    })
    assert await client.ips.get(IP) == IpAddress(
        ip=IP, pools=(PoolRef(id="1", name="tx"),), is_auto_warmup=False
    )


async def test_missing_optional_reply_fields_are_defaulted(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{BASE}/v3/send_ips/pools/9", payload={"id": "9"})
    mocked.patch(f"{BASE}/v3/send_ips/ips/{IP}", payload={"ip": IP})
    pool = await client.pools.get("9")
    assert pool == IpPool(id="9")
    assert (pool.name, pool.ips_preview, pool.total_ip_count, pool.regions) == ("", (), None, ())
    assert await client.ips.update(IP, is_enabled=True) == UpdatedIp(ip=IP)


async def test_nulls_where_the_spec_allows_them(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{BASE}/v3/send_ips/ips/{IP}", payload={
        "ip": IP, "updated_at": None, "is_enabled": None, "is_parent_assigned": None,
        "added_at": 1664390835,
    })
    got = await client.ips.get(IP)
    assert (got.updated_at, got.is_enabled, got.is_parent_assigned, got.added_at) == (
        None, None, None, 1664390835,
    )


async def test_numeric_ids_are_read_as_strings(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.post(f"{BASE}/v3/send_ips/pools", status=201,
                payload={"id": 12345, "name": "tx", "ips": [IP]})
    assert await client.pools.create("tx", ips=[IP]) == IpPoolIps(id="12345", name="tx",
                                                                     ips=(IP,))


WRONG_TYPES = {
    "bool as text": ("GET", f"/v3/send_ips/ips/{IP}", {"ip": IP, "is_auto_warmup": "yes"},
                     lambda sg: sg.ips.get(IP)),
    "ip null": ("GET", f"/v3/send_ips/ips/{IP}", {"ip": None}, lambda sg: sg.ips.get(IP)),
    "pools not a list": ("GET", f"/v3/send_ips/ips/{IP}", {"ip": IP, "pools": "tx"},
                         lambda sg: sg.ips.get(IP)),
    "pools items are numbers": ("GET", f"/v3/send_ips/ips/{IP}", {"ip": IP, "pools": [1]},
                                lambda sg: sg.ips.get(IP)),
    "pools items are strings": ("GET", f"/v3/send_ips/ips/{IP}", {"ip": IP, "pools": ["tx"]},
                                lambda sg: sg.ips.get(IP)),
    "region counts as a string": ("GET", "/v3/send_ips/pools/9",
                                  {"id": "9", "ip_count_by_region": "us"},
                                  lambda sg: sg.pools.get("9")),
    "timestamp as words": ("GET", f"/v3/send_ips/ips/{IP}", {"ip": IP, "added_at": "soon"},
                           lambda sg: sg.ips.get(IP)),
    "count as bool": ("GET", "/v3/send_ips/pools/9", {"id": "9", "total_ip_count": True},
                      lambda sg: sg.pools.get("9")),
    "ips as a string": ("POST", "/v3/partners/accounts/acct/ips",
                        {"ips": "192.0.2.1", "region": "us"},
                        # one attempt; the account is then checked, found unchanged,
                        # and the DecodeError stands
                        lambda sg: sg.provisioning.add_ips(
                            "acct", count=1, region="us", retry=RetryPolicy(max_attempts=1))),
    "reply is a list": ("GET", "/v3/send_ips/pools/9", [{"id": "9"}],
                        lambda sg: sg.pools.get("9")),
    "reply is null": ("GET", "/v3/send_ips/pools/9", None, lambda sg: sg.pools.get("9")),
    "list result not a list": ("GET", "/v3/send_ips/pools", {"result": {"id": "9"}},
                               lambda sg: sg.pools.list()),
    "list items not objects": ("GET", "/v3/send_ips/pools", {"result": ["9"]},
                               lambda sg: sg.pools.list()),
}


@pytest.mark.parametrize(("method", "path", "reply", "call"), WRONG_TYPES.values(),
                         ids=WRONG_TYPES.keys())
async def test_reply_of_the_wrong_kind_is_a_decode_error_with_the_raw_text(
    client: SendGridIPAM, mocked: RecordingResponses,
    method: str, path: str, reply: Any, call: Call,
) -> None:
    text = json.dumps(reply)
    mocked.add(re.compile(re.escape(BASE + path) + r"(\?.*)?$"), method=method, body=text,
               status=201 if method == "POST" else 200, repeat=True)
    # AddAccountIps looks at the account's IPs before (newest IP) and after (the check).
    mocked.get(re.compile(r".*/accounts/acct/ips\?limit=\d+$"),
               payload={"result": [], "pages": {}}, repeat=True)
    with pytest.raises(DecodeError) as info:
        await run(call, client)
    assert info.value.status in (200, 201)
    assert info.value.body == text
