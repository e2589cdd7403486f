"""Handlers of the 15 IP Address Management operations (/v3/send_ips).

Error messages are the spec's own examples (components.examples) wherever it has one. Cursors
(`after_key`, `before_key`) are decimal strings: the spec types the query parameter as an
integer, so a client that sends back what it was given stays valid against the spec.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from operator import attrgetter
from typing import Any, TypeVar

from ._paging import page
from ._params import is_ip, is_strings, json_object, parse_bool, parse_int
from ._replies import NO_CONTENT, Call, Refused, Reply
from ._state import AddressesExhausted, IpamIp, Pool, State

DEFAULT_LIMIT = 10
MAX_POOLS = 100
MAX_POOL_IPS = 100
MAX_ADD_IP_SUBUSERS = 100
MAX_BATCH_SUBUSERS = 1000
UPDATABLE = ("is_enabled", "is_auto_warmup", "is_parent_assigned")
FLAGS = ("is_leased", "is_enabled", "is_parent_assigned")

T = TypeVar("T")

_CHOICE = "must be one of the following: "
_NOT_IN_BODY = "not found in the request body"
_LIMIT_MESSAGES = {5000: "should be > 0 and ≤ 5000", 100: "should be > 0 and <= 100"}
_BY_SEQ = attrgetter("seq")
_BY_ID = attrgetter("id")


def _quoted(value: object) -> str:
    """The value in the curly quotes of the spec's messages."""
    return f"\u2018{value}\u2019"


# query parameters
def _parsed(
    query: Mapping[str, str], name: str, parse: Callable[[str], T | None], message: str
) -> T | None:
    """The parameter read by `parse`; None when absent; a 400 naming it when unreadable."""
    text = query.get(name)
    if text is None:
        return None
    value = parse(text)
    if value is None:
        raise Refused(400, name, message)
    return value


def _limit(query: Mapping[str, str], maximum: int) -> int:
    value = _parsed(query, "limit", parse_int, _LIMIT_MESSAGES[maximum])
    if value is None:
        return DEFAULT_LIMIT
    if not 0 < value <= maximum:
        raise Refused(400, "limit", _LIMIT_MESSAGES[maximum])
    return value


def _cursor(query: Mapping[str, str], name: str) -> int | None:
    value = _parsed(query, name, parse_int, "must be a numeric value")
    if value is not None and value < 0:
        raise Refused(400, name, "must be >= 0")
    return value


def _flag(query: Mapping[str, str], name: str) -> bool | None:
    return _parsed(query, name, parse_bool, _CHOICE + "true, false")


def _number(query: Mapping[str, str], name: str) -> int | None:
    return _parsed(query, name, parse_int, "must be numeric")


def _region_filter(query: Mapping[str, str]) -> str | None:
    region = query.get("region")
    if region not in (None, "all", "eu", "us"):
        raise Refused(400, "region", _CHOICE + "all, eu, us")
    return region


def _find_pool(state: State, text: str, field: str, type_message: str) -> Pool:
    if not (text.isascii() and text.isdigit()):
        raise Refused(400, field, type_message)
    pool = state.pools.get(int(text))
    if pool is None:
        raise Refused(400, field, "not found")
    return pool


def _pool(state: State, call: Call) -> Pool:
    return _find_pool(state, call.path["poolid"], "poolid", "must be a numeric value")


def _ip(state: State, call: Call, invalid_field: str) -> IpamIp:
    ip = call.path["ip"]
    if not is_ip(ip):
        raise Refused(400, invalid_field, "invalid IP address")
    record = state.ipam.get(ip)
    if record is None:
        raise Refused(400, "ip", "not found")
    return record


# body fields
def _body_flag(body: Mapping[str, Any], name: str, *, required: bool = False) -> bool | None:
    if name not in body:
        if required:
            raise Refused(400, name, _NOT_IN_BODY)
        return None
    value = body[name]
    if not isinstance(value, bool):
        raise Refused(400, name, _CHOICE + "true, false")
    return value


def _body_strings(body: Mapping[str, Any], name: str, *, required: bool) -> list[str]:
    if name not in body:
        if required:
            raise Refused(400, name, _NOT_IN_BODY)
        return []
    value = body[name]
    if not is_strings(value):
        raise Refused(400, name, "must be an array of strings")
    return list(dict.fromkeys(value))


def _subusers(call: Call) -> list[str]:
    subusers = _body_strings(json_object(call.body), "subusers", required=True)
    if not subusers:
        raise Refused(400, "subusers", "must not be empty")
    if len(subusers) > MAX_BATCH_SUBUSERS:
        raise Refused(
            400, "subusers", f"cannot assign more than {MAX_BATCH_SUBUSERS} subusers per call"
        )
    return subusers


def _pool_name(state: State, body: Mapping[str, Any], renamed: Pool | None = None) -> str:
    name = body.get("name")
    if name is None:
        raise Refused(400, "name", _NOT_IN_BODY)
    if not isinstance(name, str):
        raise Refused(400, "name", "must be a string")
    if name.startswith((" ", ".")):
        raise Refused(400, "name", "cannot start with a dot or a space")
    if not 2 <= len(name) <= 64:
        raise Refused(400, "name", "needs to be between 2 to 64 characters long")
    holder = state.pool_ids.get(name)
    if holder is not None and (renamed is None or holder != renamed.id):
        raise Refused(400, "name", "already exists")
    return name


def _batch_ips(call: Call) -> list[str]:
    ips = _body_strings(json_object(call.body), "ips", required=True)
    if not 1 <= len(ips) <= MAX_POOL_IPS:
        raise Refused(400, "ips", f"the number of IPs must be between 1 and {MAX_POOL_IPS}")
    return ips


def _check_assignable(state: State, ips: Sequence[str]) -> None:
    unknown = [ip for ip in ips if ip not in state.addresses.known]
    if unknown:
        raise Refused(400, "ips", "unable to verify IPs assignability: " + ", ".join(unknown))


# replies
def _listing(
    result: list[Any], cursors: dict[str, Any], query: Mapping[str, str], echo: Sequence[str]
) -> Reply:
    """A list reply; `next_params` repeats the query parameters named in `echo`."""
    next_params = {name: query[name] for name in echo if name in query} | cursors
    return Reply.json(200, {"result": result, "_metadata": {"next_params": next_params}})


def _next_key(found: Sequence[Any], more: bool, key: Callable[[Any], int]) -> str | None:
    return str(key(found[-1])) if more else None


def ip_details(state: State, record: IpamIp, include_region: bool | None) -> dict[str, Any]:
    """An IPAM IP as GetIp and ListIp show it."""
    details: dict[str, Any] = {
        "ip": record.ip,
        "pools": state.pool_refs(record.ip),
        "is_auto_warmup": record.is_auto_warmup,
        "is_parent_assigned": record.is_parent_assigned,
        "updated_at": record.updated_at,
        "is_enabled": record.is_enabled,
        "is_leased": record.is_leased,
        "added_at": record.added_at,
    }
    if include_region:
        details["region"] = record.region
    return details


def _pool_preview(state: State, pool: Pool) -> dict[str, Any]:
    return {
        "name": pool.name,
        "id": str(pool.id),
        "ips_preview": state.pool_ips(pool)[:10],
        "total_ip_count": len(pool.ips),
    }


def _region_counts(state: State, pool: Pool) -> Counter[str]:
    return Counter(state.region(ip) for ip in pool.ips)


# IPs
def _all_of(tests: Sequence[Callable[[T], bool]]) -> Callable[[T], bool] | None:
    """One test that passes when all pass; None (keep everything) when there is none."""
    return (lambda item: all(test(item) for test in tests)) if tests else None


def _is(name: str, wanted: object) -> Callable[[IpamIp], bool]:
    return lambda record: getattr(record, name) == wanted


def _ip_filters(
    query: Mapping[str, str], flags: Mapping[str, bool | None], pool: Pool | None
) -> list[Callable[[IpamIp], bool]]:
    region = _region_filter(query)
    start, end = _number(query, "start_added_at"), _number(query, "end_added_at")
    tests = [_is(name, wanted) for name, wanted in flags.items() if wanted is not None]
    if region in ("eu", "us"):
        tests.append(_is("region", region))
    if start is not None:
        tests.append(lambda record: record.added_at >= start)
    if end is not None:
        tests.append(lambda record: record.added_at <= end)
    if pool is not None:
        members = pool.ips
        tests.append(lambda record: record.ip in members)
    return tests


def _ip_candidates(state: State, query: Mapping[str, str], pool: Pool | None) -> Sequence[IpamIp]:
    """The IPs a filtered ListIp can return, by seq: one IP, a pool's IPs, or all."""
    if "ip" in query:
        return [state.ipam[query["ip"]]] if query["ip"] in state.ipam else []
    if pool is not None:
        return sorted((state.ipam[ip] for ip in pool.ips if ip in state.ipam), key=_BY_SEQ)
    return state.ipam_order


def list_ip(state: State, call: Call) -> Reply:
    """ListIp: GET /v3/send_ips/ips with every filter of the spec."""
    query = call.query
    limit = _limit(query, 5000)
    after, before = _cursor(query, "after_key"), _cursor(query, "before_key")
    if after is not None and before is not None:
        raise Refused(400, "after_key", "cannot be used with " + _quoted("before_key"))
    flags = {name: _flag(query, name) for name in FLAGS}
    include_region = _flag(query, "include_region")
    if "pool" in query and flags["is_parent_assigned"] is not None:
        raise Refused(400, "pool", "cannot be used with " + _quoted("is_parent_assigned"))
    pool = _find_pool(state, query["pool"], "pool", "must be numeric") if "pool" in query else None
    keep = _all_of(_ip_filters(query, flags, pool))
    candidates = _ip_candidates(state, query, pool)
    if before is None:
        found, more = page(candidates, _BY_SEQ, after, limit, keep=keep)
        cursors: dict[str, Any] = {"after_key": _next_key(found, more, _BY_SEQ)}
    else:
        found, more = page(candidates, _BY_SEQ, before, limit, descending=True, keep=keep)
        found.reverse()
        cursors = {"after_key": None, "before_key": str(found[0].seq) if more else None}
    cursors |= {name: wanted for name, wanted in flags.items() if wanted is not None}
    result = [ip_details(state, record, include_region) for record in found]
    echo = ("ip", "pool", "start_added_at", "end_added_at", "limit", "region", "include_region")
    return _listing(result, cursors, query, echo)


def add_ip(state: State, call: Call) -> Reply:
    """AddIp: POST /v3/send_ips/ips hands out a new address."""
    body = json_object(call.body)
    is_auto_warmup = _body_flag(body, "is_auto_warmup", required=True)
    is_parent_assigned = _body_flag(body, "is_parent_assigned", required=True)
    include_region = _body_flag(body, "include_region")
    subusers = _body_strings(body, "subusers", required=False)
    if len(subusers) > MAX_ADD_IP_SUBUSERS:
        raise Refused(
            400, "subusers", f"cannot assign more than {MAX_ADD_IP_SUBUSERS} subusers per call"
        )
    region = body.get("region", "us")
    if region not in ("eu", "us"):
        raise Refused(400, "region", _CHOICE + "eu, us")
    try:
        record = state.add_ipam_ip(
            region=region,
            added_at=int(call.now),
            is_auto_warmup=bool(is_auto_warmup),
            is_parent_assigned=bool(is_parent_assigned),
            subusers=subusers,
        )
    except AddressesExhausted:
        raise Refused(400, "", "No IPs remaining") from None
    reply: dict[str, Any] = {
        "ip": record.ip,
        "is_auto_warmup": record.is_auto_warmup,
        "is_parent_assigned": record.is_parent_assigned,
        "subusers": list(record.subusers),
    }
    if include_region:
        reply["region"] = record.region
    return Reply.json(201, reply)


def get_ip(state: State, call: Call) -> Reply:
    """GetIp: GET /v3/send_ips/ips/{ip}."""
    record = _ip(state, call, "ip")
    return Reply.json(200, ip_details(state, record, _flag(call.query, "include_region")))


def update_ip(state: State, call: Call) -> Reply:
    """UpdateIp: PATCH /v3/send_ips/ips/{ip} with at least one of the three flags."""
    record = _ip(state, call, "ip")
    body = json_object(call.body)
    changes = {name: _body_flag(body, name) for name in UPDATABLE}
    changes = {name: value for name, value in changes.items() if value is not None}
    if not changes:
        raise Refused(400, "", "at least one of the following is required: " + ", ".join(UPDATABLE))
    for name, value in changes.items():
        setattr(record, name, value)
    record.updated_at = int(call.now)
    reply: dict[str, Any] = {
        "ip": record.ip,
        "is_auto_warmup": record.is_auto_warmup,
        "is_parent_assigned": record.is_parent_assigned,
    }
    if record.is_enabled is not None:  # the reply's schema does not allow null
        reply["is_enabled"] = record.is_enabled
    return Reply.json(200, reply)


def list_subusers(state: State, call: Call) -> Reply:
    """ListSubUserAssignedToIp: GET /v3/send_ips/ips/{ip}/subusers; after_key is an offset."""
    record = _ip(state, call, "")
    limit = _limit(call.query, 100)
    start = _cursor(call.query, "after_key") or 0
    subusers = list(record.subusers)
    end = start + limit
    cursors = {"after_key": str(end) if end < len(subusers) else None}
    return _listing(subusers[start:end], cursors, call.query, ("limit",))


def add_subusers(state: State, call: Call) -> Reply:
    """AddSubUsersToIp: POST .../subusers:batchAdd; answers every subuser of the IP."""
    record = _ip(state, call, "")
    record.subusers.update(dict.fromkeys(_subusers(call)))
    return Reply.json(200, {"ip": record.ip, "subusers": list(record.subusers)})


def delete_subusers(state: State, call: Call) -> Reply:
    """DeleteSubUsersFromIp: POST .../subusers:batchDelete; unknown subusers are ignored."""
    record = _ip(state, call, "")
    for subuser in _subusers(call):
        record.subusers.pop(subuser, None)
    return NO_CONTENT


# pools
def list_pools(state: State, call: Call) -> Reply:
    """ListIpPool: GET /v3/send_ips/pools."""
    query = call.query
    limit = _limit(query, 100)
    after = _cursor(query, "after_key")
    region = _region_filter(query)
    include_region = _flag(query, "include_region")
    tests: list[Callable[[Pool], bool]] = []
    if "ip" in query:
        tests.append(lambda pool: pool.id in state.pools_of_ip.get(query["ip"], ()))
    if region == "all":
        tests.append(lambda pool: bool(pool.ips))
    elif region is not None:
        tests.append(lambda pool: region in _region_counts(state, pool))
    found, more = page(list(state.pools.values()), _BY_ID, after, limit, keep=_all_of(tests))
    result = []
    for pool in found:
        item = _pool_preview(state, pool)
        if include_region:
            item["regions"] = sorted(_region_counts(state, pool))
        result.append(item)
    cursors = {"after_key": _next_key(found, more, _BY_ID)}
    return _listing(result, cursors, query, ("ip", "limit", "region", "include_region"))


def create_pool(state: State, call: Call) -> Reply:
    """CreateIpPool: POST /v3/send_ips/pools; all or nothing."""
    body = json_object(call.body)
    name = _pool_name(state, body)
    if len(state.pools) >= MAX_POOLS:
        raise Refused(400, "", f"{MAX_POOLS} pools limit has been reached")
    ips = _body_strings(body, "ips", required=False)
    if len(ips) > MAX_POOL_IPS:
        raise Refused(400, "ips", f"the number of IPs must be between 1 and {MAX_POOL_IPS}")
    _check_assignable(state, ips)
    pool = state.create_pool(name, ips)
    return Reply.json(201, {"name": pool.name, "id": str(pool.id), "ips": state.pool_ips(pool)})


def get_pool(state: State, call: Call) -> Reply:
    """GetIpPool: GET /v3/send_ips/pools/{poolid}."""
    pool = _pool(state, call)
    reply = _pool_preview(state, pool)
    if _flag(call.query, "include_region"):
        counts = _region_counts(state, pool)
        reply["ip_count_by_region"] = [
            {"region": region, "count": counts[region]} for region in sorted(counts)
        ]
    return Reply.json(200, reply)


def rename_pool(state: State, call: Call) -> Reply:
    """UpdateIpPool: PUT /v3/send_ips/pools/{poolid} renames the pool."""
    pool = _pool(state, call)
    state.rename_pool(pool, _pool_name(state, json_object(call.body), pool))
    return Reply.json(200, {"name": pool.name, "id": str(pool.id)})


def delete_pool(state: State, call: Call) -> Reply:
    """DeleteIpPool: DELETE /v3/send_ips/pools/{poolid}; the IPs stay on the account."""
    state.delete_pool(_pool(state, call))
    return NO_CONTENT


def list_pool_ips(state: State, call: Call) -> Reply:
    """ListIpAssignedToIpPool: GET /v3/send_ips/pools/{poolid}/ips."""
    pool = _pool(state, call)
    limit = _limit(call.query, 100)
    after = _cursor(call.query, "after_key")
    include_region = _flag(call.query, "include_region")
    found, more = page(state.pool_ips(pool), state.addresses.seq, after, limit)
    result = []
    for ip in found:
        item: dict[str, Any] = {"ip": ip, "pools": state.pool_refs(ip)}
        if include_region:
            item["region"] = state.region(ip)
        result.append(item)
    cursors = {"after_key": _next_key(found, more, state.addresses.seq)}
    return _listing(result, cursors, call.query, ("limit", "include_region"))


def add_pool_ips(state: State, call: Call) -> Reply:
    """AddIpsToIpPool: POST .../pools/{poolid}/ips:batchAdd; answers every IP of the pool."""
    pool = _pool(state, call)
    ips = _batch_ips(call)
    _check_assignable(state, ips)
    if len(pool.ips.keys() | ips) > MAX_POOL_IPS:
        raise Refused(
            400,
            "ips",
            f"the total number of IPs per pool cannot exceed {MAX_POOL_IPS}. "
            f"current IP count in {_quoted(pool.name)} is {_quoted(len(pool.ips))}",
        )
    state.assign(pool, ips)
    return Reply.json(200, {"name": pool.name, "id": str(pool.id), "ips": state.pool_ips(pool)})


def delete_pool_ips(state: State, call: Call) -> Reply:
    """DeleteIpsFromIpPool: POST .../pools/{poolid}/ips:batchDelete; all must be in the pool."""
    pool = _pool(state, call)
    ips = _batch_ips(call)
    missing = [ip for ip in ips if ip not in pool.ips]
    if missing:
        raise Refused(400, "ips", f"not found in pool {_quoted(pool.name)}: " + ", ".join(missing))
    state.unassign(pool, ips)
    return NO_CONTENT
