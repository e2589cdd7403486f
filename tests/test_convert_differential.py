"""The cheap readers of replies read exactly what the generic cattrs converter reads.

The oracle is a stock ``cattrs.Converter`` set up as the library's was before its readers
were made cheap: cattrs' own handling of optional fields, a hook looked up for every item of
a list, generated functions with detailed validation off, and the same rules for strings,
booleans and integers. Against it, for JSON values that hypothesis draws (valid, slightly
wrong and plain garbage) and for a table of hand-picked malformed replies:

* the converter's generated function (`structurer`) of every response model, and
* the hand-written reader of every model a list returns (`_fast.READERS`)

return an equal model, or raise an error of the same type, one that the client turns into
a `DecodeError` (TypeError, ValueError, KeyError, AttributeError), never another.
"""

from __future__ import annotations

import json
import pickle
import re
import weakref
from collections.abc import Callable
from types import NoneType, UnionType
from typing import Any, get_args, get_origin, get_type_hints

import attrs
import cattrs
import pytest
from cattrs.gen import make_dict_structure_fn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendgrid_ipam import DecodeError, SendGridIPAM, models
from sendgrid_ipam._convert import (
    converter,
    strict_bool,
    strict_int,
    strict_str,
    strings,
    structurer,
)
from sendgrid_ipam._fast import READERS, page_items_reader
from sendgrid_ipam._wire import MAX_DEPTH, load_json
from sendgrid_ipam.operations import OPERATIONS
from sendgrid_ipam.pagination import PageReader
from tests.conftest import BASE, RecordingResponses

DECODE_ERRORS = (TypeError, ValueError, KeyError, AttributeError)  # what the client catches

RESPONSE_MODELS = sorted(
    {op.model for op in OPERATIONS.values() if op.model is not None and attrs.has(op.model)}
    | {models.PoolRef, models.RegionCount},
    key=lambda cls: cls.__name__,
)
FAST_MODELS = sorted((m for m in READERS if attrs.has(m)), key=lambda cls: cls.__name__)


def _oracle() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=False, detailed_validation=False)

    def objects(value: Any, t: Any) -> tuple[Any, ...]:
        if not isinstance(value, list | tuple):
            raise TypeError(f"expected a list of objects, got {value!r:.80}")
        item_type = t.__args__[0]
        return tuple(conv.get_structure_hook(item_type)(item, item_type) for item in value)

    def object_hook(cls: type) -> Callable[[Any, type], Any]:
        hook = make_dict_structure_fn(cls, conv)

        def structure(value: Any, _: type) -> Any:
            if not isinstance(value, dict):
                raise TypeError(f"expected a JSON object for {cls.__name__}")
            return hook(value, cls)

        return structure

    def is_object_tuple(t: Any) -> bool:
        args = get_args(t)
        return get_origin(t) is tuple and len(args) == 2 and args[1] is Ellipsis and attrs.has(
            args[0])

    conv.register_structure_hook_func(is_object_tuple, objects)
    conv.register_structure_hook_factory(attrs.has, object_hook)
    conv.register_structure_hook(str, strict_str)
    conv.register_structure_hook(bool, strict_bool)
    conv.register_structure_hook(int, strict_int)
    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], strings)
    return conv


ORACLE = _oracle()


def outcome(read: Callable[[Any], Any], data: Any) -> tuple[str, Any]:
    """("ok", the model) or ("error", the exception's type); any other exception fails."""
    try:
        return "ok", read(data)
    except DECODE_ERRORS as exc:
        return "error", type(exc)


def oracle_reader(model: type) -> Callable[[Any], Any]:
    def read(data: Any) -> Any:
        if type(data) is not dict:  # what the client's reader of a reply checks first
            raise TypeError("not an object")
        return ORACLE.structure(data, model)

    return read


def assert_same(model: type, data: Any) -> None:
    expected = outcome(oracle_reader(model), data)
    assert outcome(structurer(model), data) == expected
    if model in READERS:
        assert outcome(READERS[model], data) == expected
    if expected[0] == "ok":  # the same model, field for field and of the same types
        assert type(expected[1]) is model
        got = READERS.get(model, structurer(model))(data)
        assert type(got) is model
        assert attrs.astuple(got) == attrs.astuple(expected[1])
        assert [type(v) for v in attrs.astuple(got)] == [
            type(v) for v in attrs.astuple(expected[1])]


# ---------------------------------------------------------------- hypothesis: JSON values

JSON_LEAVES = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    | st.sampled_from(["", "12", "-3", " 7 ", "²", "1e3", "us", "eu", "1" * 5000, 10**100])
)
JSON_ANY = st.recursive(
    JSON_LEAVES,
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)


def valid_value(t: Any) -> st.SearchStrategy[Any]:
    """JSON that the field's rule accepts (text for an id may be a number, and so on)."""
    if (inner := _optional(t)) is not None:
        return st.none() | valid_value(inner)
    if t is str:
        return st.text(max_size=12) | st.integers() | st.floats(allow_nan=False)
    if t is bool:
        return st.booleans()
    if t is int:
        return st.integers() | st.from_regex(r"-?[0-9]{1,25}", fullmatch=True)
    if t == tuple[str, ...]:
        return st.lists(st.text(max_size=12) | st.integers(), max_size=4)
    item = get_args(t)[0]
    return st.lists(json_object(item), max_size=3)


def _optional(t: Any) -> Any:
    if get_origin(t) is UnionType and NoneType in get_args(t):
        return next(a for a in get_args(t) if a is not NoneType)
    return None


def json_object(model: type) -> st.SearchStrategy[dict[str, Any]]:
    """An object for the model: each field valid, wrong, null or absent; extra keys too."""
    hints = get_type_hints(model)
    fields = {
        f.name: st.one_of(valid_value(hints[f.name]), valid_value(hints[f.name]), JSON_ANY)
        for f in attrs.fields(model)
    }
    required = {f.name for f in attrs.fields(model) if f.default is attrs.NOTHING}
    return st.fixed_dictionaries(
        {name: s for name, s in fields.items() if name in required},
        optional={
            **{name: s for name, s in fields.items() if name not in required},
            "unknown_field": JSON_ANY,
        },
    ) | st.builds(dict)


def reply_for(model: type) -> st.SearchStrategy[Any]:
    return json_object(model) | JSON_ANY


@pytest.mark.parametrize("model", RESPONSE_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_reader_reads_what_the_generic_converter_reads(
    model: type, data: st.DataObject
) -> None:
    reply = data.draw(reply_for(model))
    reply = json.loads(json.dumps(reply))  # exactly what a reply's JSON gives
    assert_same(model, reply)


@pytest.mark.parametrize("model", FAST_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_fast_readers_read_valid_objects_as_the_generic_converter(
    model: type, data: st.DataObject
) -> None:
    hints = get_type_hints(model)
    reply = data.draw(st.fixed_dictionaries(
        {f.name: valid_value(hints[f.name]) for f in attrs.fields(model)}))
    expected = outcome(oracle_reader(model), reply)
    assert outcome(READERS[model], reply) == expected


# ---------------------------------------------------------------- hand-picked malformed replies


def nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth):
        value = [value]
    return value


POOL = {"id": "1", "name": "tx"}
MALFORMED: dict[str, tuple[type, Any]] = {
    "ip is null": (models.IpAddress, {"ip": None}),
    "ip is an object": (models.IpAddress, {"ip": {"v": "192.0.2.1"}}),
    "ip is true": (models.IpAddress, {"ip": True}),
    "account ip missing": (models.AccountIp, {"region": "us"}),
    "account ip null": (models.AccountIp, {"ip": None}),
    "region is a list": (models.AccountIp, {"ip": "192.0.2.1", "region": ["us"]}),
    "pools is null": (models.IpAddress, {"pools": None}),
    "pools is an object": (models.IpAddress, {"pools": POOL}),
    "pools is text": (models.PoolIp, {"pools": "tx"}),
    "pool is a list": (models.PoolIp, {"pools": [[POOL]]}),
    "pool id is null": (models.IpAddress, {"pools": [{"id": None, "name": "tx"}]}),
    "pool name is an object": (models.IpAddress, {"pools": [POOL, {"name": {}}]}),
    "warmup is 1": (models.IpAddress, {"is_auto_warmup": 1}),
    "enabled is 'true'": (models.IpAddress, {"is_enabled": "true"}),
    "leased is a list": (models.IpAddress, {"is_leased": [True]}),
    "added_at is a float": (models.IpAddress, {"added_at": 1.5}),
    "added_at is true": (models.IpAddress, {"added_at": True}),
    "updated_at is superscript digits": (models.IpAddress, {"updated_at": "²³"}),
    "added_at has 5000 digits": (models.IpAddress, {"added_at": "9" * 5000}),
    "total is huge text": (models.IpPool, {"total_ip_count": "-" + "1" * 4400}),
    "total is an object": (models.IpPool, {"total_ip_count": {}}),
    "preview is text": (models.IpPool, {"ips_preview": "192.0.2.1"}),
    "preview holds null": (models.IpPool, {"ips_preview": ["192.0.2.1", None]}),
    "regions holds objects": (models.IpPool, {"regions": [{}]}),
    "region count is text": (models.IpPool, {"ip_count_by_region": ["us"]}),
    "region count's count is null": (models.IpPool, {"ip_count_by_region": [{"count": None}]}),
    "ip nested 500 deep": (models.IpAddress, {"ip": nested(500)}),
    "pool nested 500 deep": (models.PoolIp, {"pools": [nested(500)]}),
    "region nested 500 deep": (models.AccountIp, {"ip": "1", "region": nested(500)}),
    "ip is a 1 MB list": (models.IpAddress, {"ip": ["192.0.2.1"] * 100_000}),
    "reply is a list": (models.IpAddress, [{"ip": "192.0.2.1"}]),
    "reply is null": (models.IpPool, None),
    "reply is text": (models.AccountIp, "192.0.2.1"),
    "subuser id is null": (str, None),
    "subuser id is an object": (str, {"id": 1}),
}


@pytest.mark.parametrize(("model", "reply"), MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_replies_raise_the_same_decode_error(model: type, reply: Any) -> None:
    if model is str:
        expected = outcome(lambda data: ORACLE.structure(data, str), reply)
    else:
        expected = outcome(oracle_reader(model), reply)
        assert outcome(structurer(model), reply) == expected
    assert expected[0] == "error"
    assert outcome(OPERATIONS_READ[model], reply) == expected


EDGES: dict[str, tuple[type, Any]] = {
    "huge integers": (models.IpAddress, {"added_at": 10**300, "updated_at": -(10**300)}),
    "digits as text": (models.IpPool, {"total_ip_count": " 42 ",
                                       "ip_count_by_region": [{"count": "-3"}]}),
    "numbers as ids": (models.IpPool, {"id": 12, "name": 1.5, "ips_preview": [1, "a"]}),
    "empty object": (models.AccountIp, {"ip": ""}),
    "empty lists": (models.IpAddress, {"pools": []}),
    "nulls where allowed": (models.IpAddress, {"is_enabled": None, "updated_at": None,
                                               "region": None}),
    "unknown fields, deep": (models.PoolIp, {"ip": "1", "extra": nested(500)}),
    "a pool without fields": (models.PoolIp, {"pools": [{}]}),
}


@pytest.mark.parametrize(("model", "reply"), EDGES.values(), ids=EDGES.keys())
def test_edge_cases_of_valid_replies_read_the_same(model: type, reply: Any) -> None:
    assert outcome(oracle_reader(model), reply)[0] == "ok"
    assert_same(model, reply)


OPERATIONS_READ = {
    models.IpAddress: OPERATIONS["ListIp"].read,
    models.AccountIp: OPERATIONS["ListAccountIps"].read,
    models.PoolIp: OPERATIONS["ListIpAssignedToIpPool"].read,
    models.IpPool: OPERATIONS["ListIpPool"].read,
    models.IpPoolIps: OPERATIONS["CreateIpPool"].read,
    str: OPERATIONS["ListSubUserAssignedToIp"].read,
}


def test_the_operations_read_with_the_fast_readers() -> None:
    for model, read in OPERATIONS_READ.items():
        assert read is READERS[model]


def test_an_error_shows_a_bounded_part_of_a_huge_or_deep_value() -> None:
    for value in (nested(900), ["192.0.2.1"] * 100_000, "x" * 1_000_000):
        with pytest.raises(TypeError) as info:
            READERS[models.IpAddress]({"ip": value} if not isinstance(value, str) else
                                      {"added_at": value})
        assert len(str(info.value)) < 300


# ---------------------------------------------------------------- the models the fast paths make


@pytest.mark.parametrize("model", [*FAST_MODELS, models.PoolRef, models.RegionCount],
                         ids=lambda m: m.__name__)
def test_fast_path_models_only_store_their_arguments(model: type) -> None:
    # The fast readers fill the slots themselves: a validator, converter or post-init hook
    # added to one of these models would be skipped, so this fails first.
    assert not hasattr(model, "__attrs_post_init__")
    assert not hasattr(model, "__attrs_pre_init__")
    for field in attrs.fields(model):
        assert field.validator is None, field.name
        assert field.converter is None, field.name
        assert field.init, field.name
        assert field.on_setattr is None, field.name


def test_a_fast_read_model_is_the_model_frozen_hashable_and_weakly_referable() -> None:
    reply = {"ip": "192.0.2.1", "pools": [POOL], "is_enabled": True, "added_at": 7}
    got = READERS[models.IpAddress](reply)
    built = models.IpAddress("192.0.2.1", (models.PoolRef("1", "tx"),), is_enabled=True,
                             added_at=7)
    assert type(got) is models.IpAddress
    assert type(got.pools[0]) is models.PoolRef
    assert got == built
    assert hash(got) == hash(built)
    assert repr(got) == repr(built)
    assert weakref.ref(got)() is got
    assert pickle.loads(pickle.dumps(got)) == built
    assert converter.unstructure(got) == converter.unstructure(built)  # the CLI's output
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        got.ip = "192.0.2.2"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        del got.pools  # type: ignore[misc]
    assert attrs.evolve(got, ip="192.0.2.2").ip == "192.0.2.2"


def test_shared_pool_refs_stay_bounded() -> None:
    from sendgrid_ipam import _fast

    for n in range(3 * _fast._POOL_REFS_MAX):
        ref = READERS[models.IpAddress]({"pools": [{"id": str(n), "name": "p"}]}).pools[0]
        assert ref == models.PoolRef(str(n), "p")
    assert len(_fast._POOL_REFS) <= _fast._POOL_REFS_MAX
    same_id = [{"id": "1", "name": "a"}, {"id": "1", "name": "b"}]
    renamed = READERS[models.PoolIp]({"pools": same_id})
    assert renamed.pools == (models.PoolRef("1", "a"), models.PoolRef("1", "b"))


# ---------------------------------------------------------------- through the client


async def test_a_deeply_nested_item_in_a_list_is_a_decode_error(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    text = json.dumps({"result": [{"ip": "192.0.2.1"}, {"ip": nested(400)}]})
    mocked.get(re.compile(re.escape(f"{BASE}/v3/send_ips/ips") + r"\?.*"), body=text,
               repeat=True)
    with pytest.raises(DecodeError) as info:
        _ = [ip async for ip in client.ips.list(limit=100)]
    assert info.value.body == text


# ---------------------------------------------------------------- whole pages

PAGE_MODELS = [models.IpAddress, models.AccountIp, models.PoolIp]


def one_by_one(model: type) -> Callable[[list[Any]], list[Any]]:
    read = READERS[model]
    return lambda items: [read(item) for item in items]


def assert_same_page(model: type, items: list[Any]) -> None:
    read_items = page_items_reader(model)
    assert read_items is not None
    expected = outcome(one_by_one(model), items)
    got = outcome(read_items, items)
    assert got == expected
    if expected[0] == "ok":  # the same models, field for field and of the same types
        assert [type(m) for m in got[1]] == [model] * len(items)
        assert [attrs.astuple(m) for m in got[1]] == [attrs.astuple(m) for m in expected[1]]
        assert [[type(v) for v in attrs.astuple(m)] for m in got[1]] == [
            [type(v) for v in attrs.astuple(m)] for m in expected[1]]


def valid_object(model: type) -> st.SearchStrategy[dict[str, Any]]:
    hints = get_type_hints(model)
    return st.fixed_dictionaries({f.name: valid_value(hints[f.name]) for f in attrs.fields(model)})


def page_of(model: type) -> st.SearchStrategy[list[Any]]:
    """Items as a page holds them: mostly of one shape (the fast path's), some not."""
    plain = st.fixed_dictionaries({f.name: st.sampled_from([None, "1", True, 7, [], [POOL]])
                                   for f in attrs.fields(model)})
    item = valid_object(model) | json_object(model) | plain | JSON_ANY
    return st.lists(item, max_size=6).flatmap(
        lambda items: st.permutations(items + items[:1] * 3))


@pytest.mark.parametrize("model", PAGE_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_page_reads_as_its_items_one_by_one(model: type, data: st.DataObject) -> None:
    items = json.loads(json.dumps(data.draw(page_of(model))))  # as a reply's JSON gives
    assert_same_page(model, items)


def ip(n: int, **changes: Any) -> dict[str, Any]:
    item = {"ip": f"192.0.2.{n}", "pools": [POOL], "is_auto_warmup": False,
            "is_parent_assigned": True, "updated_at": 2, "is_enabled": True,
            "is_leased": None, "added_at": 1, "region": "us"}
    return {**item, **changes}


PAGES: dict[str, list[Any]] = {
    "all the same shape": [ip(n) for n in range(5)],
    "one without a field": [ip(1), {k: v for k, v in ip(2).items() if k != "region"}, ip(3)],
    "the first without a field": [{"ip": "192.0.2.1"}, ip(2), {"ip": "192.0.2.3"}],
    "an unknown field": [ip(1), ip(2, extra=[1, [2]]), ip(3)],
    "a field as text": [ip(1), ip(2, added_at="12"), ip(3, ip=5)],
    "a bad flag": [ip(1), ip(2, is_enabled="yes"), ip(3)],
    "a bad flag first": [ip(1, is_leased=1), ip(2)],
    "pools that change": [ip(1), ip(2, pools=[]), ip(3, pools=[POOL, {"id": "2", "name": "b"}]),
                          ip(4, pools=[{"id": "1", "name": "renamed"}]), ip(5)],
    "a pool with an extra key": [ip(1), ip(2, pools=[{**POOL, "x": 1}]), ip(3)],
    "a pool id as a number": [ip(1), ip(2, pools=[{"id": 1, "name": "tx"}]), ip(3)],
    "a pool that is a list": [ip(1), ip(2, pools=[[POOL]])],
    "pools as an object": [ip(1), ip(2, pools=POOL)],
    "an item that is a list": [ip(1), [ip(2)]],
    "an item that is null": [ip(1), None],
    "an item that is text": [ip(1), "192.0.2.2"],
    "an empty item": [{}, ip(1)],
    "no items": [],
}


@pytest.mark.parametrize("items", PAGES.values(), ids=PAGES.keys())
def test_hand_picked_pages_read_as_their_items_one_by_one(items: list[Any]) -> None:
    assert_same_page(models.IpAddress, json.loads(json.dumps(items)))


def test_an_account_page_without_ips_fails_as_its_items_do() -> None:
    assert_same_page(models.AccountIp, [{"region": "us"}, {"ip": "1"}])
    assert_same_page(models.AccountIp, [{"ip": "1"}, {"region": "us"}])


def test_a_page_of_a_model_without_a_page_reader_has_none() -> None:
    assert page_items_reader(models.IpPool) is None


# The depth bound: a page read without `load_json`'s scan (bound_depth=False) is refused
# exactly when the scan would refuse it, wherever the deep value sits.


def wrapped(value: Any, levels: int) -> Any:
    for _ in range(levels):
        value = [value]
    return value


def deep_pages(levels: int) -> dict[str, dict[str, Any]]:
    # The reply's object is level 1, "result" level 2, an item level 3.
    return {
        "in the metadata": {"result": [ip(1)],
                            "_metadata": {"next_params": wrapped(None, levels - 2)}},
        "in an unknown key": {"result": [ip(1), ip(2, extra=wrapped(1, levels - 3))]},
        "in a pool's extra key": {
            "result": [ip(1, pools=[{**POOL, "x": wrapped(1, levels - 5)}])]},
        "as an item": {"result": [ip(1), wrapped("x", levels - 2)]},
        "in the first item": {"result": [ip(1, extra=wrapped(1, levels - 3)), ip(2)]},
    }


@pytest.mark.parametrize("levels", [31, 32, 33, 40])
@pytest.mark.parametrize("where", list(deep_pages(33)))
def test_a_page_is_refused_for_depth_exactly_when_the_scan_refuses_it(
    levels: int, where: str
) -> None:
    text = json.dumps(deep_pages(levels)[where])
    scan = outcome(load_json, text)
    new = PageReader("after_key", READERS[models.IpAddress], 100,
                     page_items_reader(models.IpAddress))
    old = PageReader("after_key", READERS[models.IpAddress], 100)
    assert new.bounds_depth
    assert not old.bounds_depth
    got = outcome(new, load_json(text, bound_depth=False))
    assert (scan[0] == "error") == (levels > MAX_DEPTH)
    if scan[0] == "error":
        assert got[0] == "error"
    else:
        assert got == outcome(old, scan[1])


@pytest.mark.parametrize("levels", [32, 33])
async def test_a_list_page_nested_too_deep_is_a_decode_error(
    client: SendGridIPAM, mocked: RecordingResponses, levels: int
) -> None:
    text = json.dumps(deep_pages(levels)["in an unknown key"])
    mocked.get(re.compile(re.escape(f"{BASE}/v3/send_ips/ips") + r"\?.*"), body=text,
               repeat=True)
    if levels > MAX_DEPTH:
        with pytest.raises(DecodeError) as info:
            _ = [ip async for ip in client.ips.list(limit=100)]
        assert info.value.body == text
    else:
        assert len([ip async for ip in client.ips.list(limit=100)]) == 2
