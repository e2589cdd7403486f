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

import typing
from collections.abc import Callable
from typing import Any

import attrs

from ._convert import shown, strict_bool, strict_int, strict_str, strings
from ._wire import MAX_DEPTH, deeper_than
from .models import AccountIp, IpAddress, IpPool, IpPoolIps, PoolIp, PoolRef, RegionCount

__all__ = ["READERS", "page_items_reader"]

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


# ---------------------------------------------------------------- whole pages of a list
#
# A page of a list is a hundred to five thousand objects of one shape: the same keys, in
# the same order, with values of the same few types. For a page's shape (the fields its
# first item holds), a function is generated that reads every item of that shape with
# nothing but subscripts, identity and type checks and slot stores, in one loop: no call
# per item, no `dict.get` (RESULTS.md: ~4,000 instructions an item against ~11,000 for the
# item reader above). An item of any other shape, or holding any value outside the common
# types, goes to the item reader, which reads it as before or raises the same error.
#
# Such a page also needs no walk or scan for the JSON depth bound: an item read on the fast
# path holds exactly the model's fields (``len`` equal and every subscript found), each a
# scalar or, for pools, a list of flat two-key objects: four levels at most. Only what the
# fast path did not vouch for (items it handed on, the reply's other keys) is walked.

_SCALAR_CHECKS = {
    str: "type({v}) is str",
    str | None: "(type({v}) is str or {v} is None)",
    bool | None: "({v} is True or {v} is False or {v} is None)",
    int | None: "(type({v}) is int or {v} is None)",
    int: "type({v}) is int",
}
_POOLS = tuple[PoolRef, ...]


def _plain_refs(value: list[Any]) -> tuple[PoolRef, ...] | None:
    """``pools`` read as `_pool_refs` reads it, or None for anything but flat {id, name}."""
    refs = []
    for item in value:
        if type(item) is not dict or len(item) != 2:
            return None
        id_, name = item.get("id"), item.get("name")
        if type(id_) is not str or type(name) is not str:
            return None
        ref = _POOL_REFS.get(id_)
        refs.append(ref if ref is not None and ref.name == name else _pool_ref(id_, name))
    return tuple(refs)


def _page_source(model: type[Any], shape: tuple[str, ...], exact: bool = False) -> str | None:
    """The source of the page reader of ``model`` for items holding exactly ``shape``.

    ``exact``: the reader returns None as soon as an item is not read inline (see
    `exact_page_items_reader`), instead of handing it to the item reader.
    """
    hints = typing.get_type_hints(model)
    fields = attrs.fields(model)
    if not shape:
        return None
    keys = ", ".join(f"k{i}" for i in range(len(shape)))
    lines = [
        # The keys are the first item's own: the JSON decoder makes one str per key and
        # page, so each lookup finds its key by identity, with no comparison of text.
        f"def read_page(items, {keys}):",
        "    out = []",
        "    append = out.append",
        "    last_pools = last_refs = None",
        "    for d in items:",
        "        try:",  # (an item that is not an object raises TypeError)
        *[f"            v{i} = d[k{i}]" for i in range(len(shape))],
        "        except (KeyError, TypeError):",
        "            pass",
        "        else:",
    ]
    checks, pools = [], None
    for i, name in enumerate(shape):
        kind = hints[name]
        if kind == _POOLS:
            checks.append(f"type(v{i}) is list")
            pools = i
        elif kind in _SCALAR_CHECKS:
            checks.append(_SCALAR_CHECKS[kind].format(v=f"v{i}"))
        else:
            return None  # (a field of a kind read only by the item reader)
    indent = " " * 12
    # Every key of the shape found, and no other: the item is exactly the shape.
    lines.append(f"{indent}if len(d) == {len(shape)} and {' and '.join(checks)}:")
    indent += "    "
    if pools is not None:
        # Most IPs of a page are in the same few pools: a list equal to the last item's
        # (which was read, so flat objects of two strings) has the same refs, by one
        # comparison; a value of another type never compares equal to a str.
        v = f"v{pools}"
        lines += [
            f"{indent}if {v} == last_pools:",
            f"{indent}    {v} = last_refs",
            f"{indent}elif ({v}_refs := plain_refs({v})) is not None:",
            f"{indent}    last_pools, last_refs = {v}, {v}_refs",
            f"{indent}    {v} = {v}_refs",
            f"{indent}else:",
            f"{indent}    {v} = None",
            f"{indent}if {v} is not None:",
        ]
        indent += "    "
    lines.append(f"{indent}made = Writable()")
    for field in fields:
        if field.name in shape:
            value = f"v{shape.index(field.name)}"
        elif field.default is attrs.NOTHING:
            return None  # a required field missing: every item of the page fails
        else:
            value = f"default_{field.name}"
        lines.append(f"{indent}made.{field.name} = {value}")
    lines += [f"{indent}made.__class__ = Model", f"{indent}append(made)", f"{indent}continue"]
    if exact:
        lines += ["        return None", "    return out"]
    else:
        lines += ["        check_depth(d)", "        append(read_item(d))", "    return out"]
    return "\n".join(lines)


ItemsReader = Callable[[list[Any]], list[Any]]

_WRITABLE = {
    IpAddress: _WritableIpAddress, AccountIp: _WritableAccountIp, PoolIp: _WritablePoolIp,
}
_ITEM_LEVEL = 3  # an item's level in a page: the reply's object, its "result", the item


def _check_item_depth(item: Any) -> None:
    if deeper_than(item, MAX_DEPTH - _ITEM_LEVEL + 1):
        raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep")


def _exact_fallback(items: list[Any], *_: str) -> list[Any] | None:
    return None if items else []


def _compile(model: type[Any], shape: tuple[str, ...], exact: bool = False) -> ItemsReader:
    read_item = READERS[model]
    source = _page_source(model, shape, exact)
    if source is None and exact:
        return _exact_fallback  # type: ignore[return-value]
    if source is None:
        def read_page(items: list[Any], *_: str) -> list[Any]:
            out = []
            for item in items:
                _check_item_depth(item)
                out.append(read_item(item))
            return out

        return read_page
    namespace: dict[str, Any] = {
        "Model": model, "Writable": _WRITABLE[model], "plain_refs": _plain_refs,
        "check_depth": _check_item_depth, "read_item": read_item, "KeyError": KeyError,
        "TypeError": TypeError,
        "dict": dict, "list": list, "int": int, "str": str, "type": type, "len": len,
        **{f"default_{f.name}": f.default for f in attrs.fields(model)},
    }
    # Generated and compiled once per shape, as cattrs builds its functions.
    exec(compile(source, f"<page reader of {model.__name__}>", "exec"), namespace)
    return namespace["read_page"]  # type: ignore[no-any-return]


_COMPILED: dict[tuple[type[Any], tuple[str, ...], bool], ItemsReader] = {}
_COMPILED_MAX = 256  # shapes; a server that varies them endlessly only costs compiles


def page_items_reader(model: type[Any]) -> ItemsReader | None:
    """The reader of a whole page of ``model`` items, or None if there is none for it.

    It returns what ``[READERS[model](item) for item in items]`` returns, or raises what it
    raises (TypeError, ValueError, KeyError), and also refuses (ValueError) an item nested
    deeper than the JSON depth bound allows at an item's level: the page's reply may be
    decoded without `load_json`'s own depth check.
    """
    return _items_reader(model, exact=False)


def exact_page_items_reader(model: type[Any]) -> Callable[[list[Any]], list[Any] | None] | None:
    """A page reader that reads only what it can vouch for exactly, or None if none for it.

    For items decoded by a JSON reader other than the standard library's (orjson, which
    reads ints beyond 64 bits as floats): it returns what `page_items_reader`'s reader
    returns when every item is read inline, each value checked to be exactly of its
    field's type (text, bool, null, an int: never a float), and None as soon as one is not
    (the caller then reads the page again the usual way). It may also raise (TypeError on
    an item that is not an object): the caller treats that as None too.
    """
    return _items_reader(model, exact=True)


def _items_reader(model: type[Any], *, exact: bool) -> ItemsReader | None:
    if model not in _WRITABLE:
        return None
    names = tuple(field.name for field in attrs.fields(model))

    def read_items(items: list[Any]) -> list[Any]:
        first = items[0] if items else None
        keys = {key: key for key in first if key in names} if type(first) is dict else {}
        shape = tuple(name for name in names if name in keys)
        read_page = _COMPILED.get((model, shape, exact))
        if read_page is None:
            if len(_COMPILED) >= _COMPILED_MAX:
                _COMPILED.clear()
            read_page = _COMPILED[model, shape, exact] = _compile(model, shape, exact)
        return read_page(items, *[keys[name] for name in shape])

    return read_items
