"""Hand-written readers for the models lists return, a hundred to five thousand a page.

Each does what the converter's generated function for its model does (tests/
test_convert_differential.py proves it: the same model for every JSON value the generic
path reads, an error of the same type for every one it refuses), with the checks inlined:
a JSON value is one of six types, so ``type(v) is str`` settles the common case in one
comparison, and only a value that fails it goes through the shared rule (`strict_str`...),
which either reads it as the generic path would or raises the same error.

The domain is what ``json.loads`` returns. They raise only TypeError, ValueError and
KeyError, which the client reports as `DecodeError`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ._convert import shown, strict_bool, strict_int, strict_str, strings
from .models import AccountIp, IpAddress, IpPool, PoolIp, PoolRef, RegionCount

__all__ = ["READERS"]

_NO_ITEMS = ()  # the default of a tuple field; an absent key reads as it


def _not_object(name: str, value: object) -> TypeError:
    return TypeError(f"expected a JSON object for {name}, got {shown(value)}")


def _not_list(value: object) -> TypeError:
    return TypeError(f"expected a list of objects, got {shown(value)}")


def _pool_ref(data: Any) -> PoolRef:
    if not isinstance(data, dict):
        raise _not_object("PoolRef", data)
    get = data.get
    id_, name = get("id", ""), get("name", "")
    if type(id_) is not str:
        id_ = strict_str(id_)
    if type(name) is not str:
        name = strict_str(name)
    return PoolRef(id_, name)


def _pool_refs(value: Any) -> tuple[PoolRef, ...]:
    if not isinstance(value, list | tuple):
        raise _not_list(value)
    return tuple([_pool_ref(item) for item in value])


def _region_count(data: Any) -> RegionCount:
    if not isinstance(data, dict):
        raise _not_object("RegionCount", data)
    get = data.get
    region, count = get("region"), get("count", 0)
    if region is not None and type(region) is not str:
        region = strict_str(region)
    if type(count) is not int:
        count = strict_int(count)
    return RegionCount(region, count)


def _region_counts(value: Any) -> tuple[RegionCount, ...]:
    if not isinstance(value, list | tuple):
        raise _not_list(value)
    return tuple([_region_count(item) for item in value])


def read_ip_address(data: Any) -> IpAddress:
    """One item of ListIp (and GetIp's reply)."""
    if type(data) is not dict:
        raise _not_object("IpAddress", data)
    get = data.get
    ip, pools = get("ip", ""), get("pools", _NO_ITEMS)
    if type(ip) is not str:
        ip = strict_str(ip)
    if pools is not _NO_ITEMS:
        pools = _pool_refs(pools)
    warmup, parent, enabled, leased = (
        get("is_auto_warmup"), get("is_parent_assigned"), get("is_enabled"), get("is_leased"),
    )
    # Checked in field order, so a reply with two bad fields fails on the same one.
    if warmup is not None and warmup is not True and warmup is not False:
        strict_bool(warmup)
    if parent is not None and parent is not True and parent is not False:
        strict_bool(parent)
    if enabled is not None and enabled is not True and enabled is not False:
        strict_bool(enabled)
    if leased is not None and leased is not True and leased is not False:
        strict_bool(leased)
    added, updated, region = get("added_at"), get("updated_at"), get("region")
    if added is not None and type(added) is not int:
        added = strict_int(added)
    if updated is not None and type(updated) is not int:
        updated = strict_int(updated)
    if region is not None and type(region) is not str:
        region = strict_str(region)
    return IpAddress(ip, pools, warmup, parent, enabled, leased, added, updated, region)


def read_account_ip(data: Any) -> AccountIp:
    """One item of ListAccountIps (``ip`` is required)."""
    if type(data) is not dict:
        raise _not_object("AccountIp", data)
    ip, region = data["ip"], data.get("region")
    if type(ip) is not str:
        ip = strict_str(ip)
    if region is not None and type(region) is not str:
        region = strict_str(region)
    return AccountIp(ip, region)


def read_pool_ip(data: Any) -> PoolIp:
    """One item of ListIpAssignedToIpPool."""
    if type(data) is not dict:
        raise _not_object("PoolIp", data)
    get = data.get
    ip, region, pools = get("ip", ""), get("region"), get("pools", _NO_ITEMS)
    if type(ip) is not str:
        ip = strict_str(ip)
    if region is not None and type(region) is not str:
        region = strict_str(region)
    if pools is not _NO_ITEMS:
        pools = _pool_refs(pools)
    return PoolIp(ip, region, pools)


def read_ip_pool(data: Any) -> IpPool:
    """One item of ListIpPool (and GetIpPool's reply)."""
    if type(data) is not dict:
        raise _not_object("IpPool", data)
    get = data.get
    id_, name, preview, total = (
        get("id", ""), get("name", ""), get("ips_preview", _NO_ITEMS), get("total_ip_count"),
    )
    if type(id_) is not str:
        id_ = strict_str(id_)
    if type(name) is not str:
        name = strict_str(name)
    if preview is not _NO_ITEMS:
        preview = strings(preview)
    if total is not None and type(total) is not int:
        total = strict_int(total)
    regions, counts = get("regions", _NO_ITEMS), get("ip_count_by_region", _NO_ITEMS)
    if regions is not _NO_ITEMS:
        regions = strings(regions)
    if counts is not _NO_ITEMS:
        counts = _region_counts(counts)
    return IpPool(id_, name, preview, total, regions, counts)


READERS: dict[Any, Callable[[Any], Any]] = {
    IpAddress: read_ip_address,
    AccountIp: read_account_ip,
    PoolIp: read_pool_ip,
    IpPool: read_ip_pool,
    str: strict_str,
}
"""The fast reader of each model that has one (``str``: ListSubUserAssignedToIp's items)."""
