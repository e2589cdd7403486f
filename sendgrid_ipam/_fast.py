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
from .models import AccountIp, IpAddress, IpPool, IpPoolIps, PoolIp, PoolRef, RegionCount

__all__ = ["READERS"]

_NO_ITEMS = ()  # the default of a tuple field; an absent key reads as it


def _writable(cls: type[Any]) -> type[Any]:
    """A subclass of a frozen, slotted model whose instances take plain attribute stores.

    A reader fills one field by field and then turns it into the model itself by assigning
    ``__class__`` (no field of its own, so the layout is the model's and CPython allows it):
    the result is an instance of the model, frozen and hashed like any other. Why: attrs'
    frozen ``__init__`` stores each field through a call of ``object.__setattr__``; for
    IpAddress's nine fields that is ~10,000 instructions on CPython 3.11, against ~2,700
    this way, where a store on a slot is one specialised instruction of the interpreter
    (benchmarks/RESULTS.md). Only for models whose ``__init__`` does nothing but store its
    arguments (tests/test_convert_differential.py checks that).
    """
    body = {
        "__slots__": (),
        # Both, so that the type's setattr slot is the generic one and stores specialise.
        "__setattr__": object.__setattr__,
        "__delattr__": object.__delattr__,
        "__init__": object.__init__,  # made empty, then filled by the reader
    }
    return type(f"_Writable{cls.__name__}", (cls,), body)


_WritablePoolRef = _writable(PoolRef)
_WritableRegionCount = _writable(RegionCount)
_WritableIpAddress = _writable(IpAddress)
_WritableAccountIp = _writable(AccountIp)
_WritablePoolIp = _writable(PoolIp)
_WritableIpPool = _writable(IpPool)
_WritableIpPoolIps = _writable(IpPoolIps)

# The same few pools come back on IP after IP (an account has at most 100): their refs,
# immutable, are shared rather than built again. By id (a ref whose name differs is built
# anew); bounded, in case a reply is not like that.
_POOL_REFS: dict[str, PoolRef] = {}
_POOL_REFS_MAX = 1024


def _not_object(name: str, value: object) -> TypeError:
    return TypeError(f"expected a JSON object for {name}, got {shown(value)}")


def _not_list(value: object) -> TypeError:
    return TypeError(f"expected a list of objects, got {shown(value)}")


def _pool_ref(id_: str, name: str) -> PoolRef:
    ref: Any = _WritablePoolRef()
    ref.id, ref.name = id_, name
    ref.__class__ = PoolRef
    if len(_POOL_REFS) >= _POOL_REFS_MAX:
        _POOL_REFS.clear()
    _POOL_REFS[id_] = ref
    return ref  # type: ignore[no-any-return]


def _pool_refs(value: Any) -> tuple[PoolRef, ...]:
    if type(value) is not list and not isinstance(value, list | tuple):
        raise _not_list(value)
    refs = []
    for item in value:
        if type(item) is not dict and not isinstance(item, dict):
            raise _not_object("PoolRef", item)
        id_, name = item.get("id", ""), item.get("name", "")
        if type(id_) is not str:
            id_ = strict_str(id_)
        if type(name) is not str:
            name = strict_str(name)
        ref = _POOL_REFS.get(id_)
        refs.append(ref if ref is not None and ref.name == name else _pool_ref(id_, name))
    return tuple(refs)


def _region_count(data: Any) -> RegionCount:
    if not isinstance(data, dict):
        raise _not_object("RegionCount", data)
    region, count = data.get("region"), data.get("count", 0)
    if region is not None and type(region) is not str:
        region = strict_str(region)
    if type(count) is not int:
        count = strict_int(count)
    made: Any = _WritableRegionCount()
    made.region, made.count = region, count
    made.__class__ = RegionCount
    return made  # type: ignore[no-any-return]


def _region_counts(value: Any) -> tuple[RegionCount, ...]:
    if not isinstance(value, list | tuple):
        raise _not_list(value)
    return tuple([_region_count(item) for item in value])


def read_ip_address(data: Any) -> IpAddress:
    """One item of ListIp (and GetIp's reply)."""
    if type(data) is not dict:
        raise _not_object("IpAddress", data)
    ip, pools = data.get("ip", ""), data.get("pools", _NO_ITEMS)
    if type(ip) is not str:
        ip = strict_str(ip)
    if pools is not _NO_ITEMS:
        pools = _pool_refs(pools)
    warmup, parent, enabled, leased = (
        data.get("is_auto_warmup"), data.get("is_parent_assigned"),
        data.get("is_enabled"), data.get("is_leased"),
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
    added, updated, region = data.get("added_at"), data.get("updated_at"), data.get("region")
    if added is not None and type(added) is not int:
        added = strict_int(added)
    if updated is not None and type(updated) is not int:
        updated = strict_int(updated)
    if region is not None and type(region) is not str:
        region = strict_str(region)
    made: Any = _WritableIpAddress()
    made.ip, made.pools, made.region = ip, pools, region
    made.is_auto_warmup, made.is_parent_assigned = warmup, parent
    made.is_enabled, made.is_leased = enabled, leased
    made.added_at, made.updated_at = added, updated
    made.__class__ = IpAddress
    return made  # type: ignore[no-any-return]


def read_account_ip(data: Any) -> AccountIp:
    """One item of ListAccountIps (``ip`` is required)."""
    if type(data) is not dict:
        raise _not_object("AccountIp", data)
    ip, region = data["ip"], data.get("region")
    if type(ip) is not str:
        ip = strict_str(ip)
    if region is not None and type(region) is not str:
        region = strict_str(region)
    made: Any = _WritableAccountIp()
    made.ip, made.region = ip, region
    made.__class__ = AccountIp
    return made  # type: ignore[no-any-return]


def read_pool_ip(data: Any) -> PoolIp:
    """One item of ListIpAssignedToIpPool."""
    if type(data) is not dict:
        raise _not_object("PoolIp", data)
    ip, region, pools = data.get("ip", ""), data.get("region"), data.get("pools", _NO_ITEMS)
    if type(ip) is not str:
        ip = strict_str(ip)
    if region is not None and type(region) is not str:
        region = strict_str(region)
    if pools is not _NO_ITEMS:
        pools = _pool_refs(pools)
    made: Any = _WritablePoolIp()
    made.ip, made.region, made.pools = ip, region, pools
    made.__class__ = PoolIp
    return made  # type: ignore[no-any-return]


def read_ip_pool(data: Any) -> IpPool:
    """One item of ListIpPool (and GetIpPool's reply)."""
    if type(data) is not dict:
        raise _not_object("IpPool", data)
    id_, name, preview, total = (
        data.get("id", ""), data.get("name", ""),
        data.get("ips_preview", _NO_ITEMS), data.get("total_ip_count"),
    )
    if type(id_) is not str:
        id_ = strict_str(id_)
    if type(name) is not str:
        name = strict_str(name)
    if preview is not _NO_ITEMS:
        preview = strings(preview)
    if total is not None and type(total) is not int:
        total = strict_int(total)
    regions, counts = data.get("regions", _NO_ITEMS), data.get("ip_count_by_region", _NO_ITEMS)
    if regions is not _NO_ITEMS:
        regions = strings(regions)
    if counts is not _NO_ITEMS:
        counts = _region_counts(counts)
    made: Any = _WritableIpPool()
    made.id, made.name, made.ips_preview, made.total_ip_count = id_, name, preview, total
    made.regions, made.ip_count_by_region = regions, counts
    made.__class__ = IpPool
    return made  # type: ignore[no-any-return]


def read_ip_pool_ips(data: Any) -> IpPoolIps:
    """CreateIpPool's reply (and AddIpsToIpPool's): one per call, but every pools.create
    pays the generic path's ~13,000 instructions, 2.5% of the call."""
    if type(data) is not dict:
        raise _not_object("IpPoolIps", data)
    id_, name, ips, reconciled = (
        data.get("id", ""), data.get("name", ""), data.get("ips", _NO_ITEMS),
        data.get("reconciled", False),
    )
    if type(id_) is not str:
        id_ = strict_str(id_)
    if type(name) is not str:
        name = strict_str(name)
    if ips is not _NO_ITEMS:
        ips = strings(ips)
    if reconciled is not False and reconciled is not True:
        strict_bool(reconciled)
    made: Any = _WritableIpPoolIps()
    made.id, made.name, made.ips, made.reconciled = id_, name, ips, reconciled
    made.__class__ = IpPoolIps
    return made  # type: ignore[no-any-return]


READERS: dict[Any, Callable[[Any], Any]] = {
    IpAddress: read_ip_address,
    AccountIp: read_account_ip,
    PoolIp: read_pool_ip,
    IpPool: read_ip_pool,
    IpPoolIps: read_ip_pool_ips,
    str: strict_str,
}
"""The fast reader of each model that has one (``str``: ListSubUserAssignedToIp's items)."""
