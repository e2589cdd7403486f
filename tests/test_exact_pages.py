"""List pages read from orjson's decoding (the ``speed`` extra) read exactly as without it.

orjson decodes a page at twice the standard library's speed, but reads an int beyond 64 bits
as a float; so a page's exact reader returns a page only when it can vouch for every value,
and otherwise the body is read again the usual way. The differential tests here hold it to
that: for any body, valid or not, the exact reader returns None or the very page the usual
path returns; and the client's lists give the same items and cursors with it as without.
"""

from __future__ import annotations

import json
import re
import sys
import types
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendgrid_ipam import DecodeError, SendGridIPAM, _wire, models, pagination
from sendgrid_ipam._fast import READERS, exact_page_items_reader, page_items_reader
from sendgrid_ipam._wire import load_json
from sendgrid_ipam.pagination import Page, PageReader
from tests.conftest import BASE, RecordingResponses
from tests.test_convert_differential import PAGE_MODELS, PAGES, ip, outcome, page_of

pytest.importorskip("orjson")

PAGINGS = ("after_key", "offset")


def readers(model: type, paging: str) -> tuple[PageReader, PageReader]:
    """The reader a list uses (with its exact path) and one with the usual path only."""
    args = (paging, READERS[model], 3)
    exact = PageReader(*args, page_items_reader(model), exact_page_items_reader(model))
    usual = PageReader(*args, page_items_reader(model))
    assert exact.reads_exact
    assert not usual.reads_exact
    return exact, usual


def fields(page: Page) -> tuple[Any, ...]:
    """A page as plain values, each with its type (so an int read as a float differs)."""
    return (page.next_cursor, type(page.next_cursor), [
        (type(m), [(v, type(v)) for v in attrs.astuple(m, recurse=False)]) for m in page.items])


def assert_exact_or_none(model: type, paging: str, body: bytes) -> Page | None:
    exact, usual = readers(model, paging)
    got = exact.exact(body)
    if got is not None:
        expected = outcome(usual, load_json(body, bound_depth=False))
        assert expected[0] == "ok", "the exact path read a page the usual path refuses"
        assert fields(got) == fields(expected[1])
    return got


CURSORS = st.none() | st.sampled_from(
    ["", "1", "192.0.2.9", 7, 2**63, 2**64, -(2**63) - 1, 10**30, 1.5, True, [], {}])


@st.composite
def replies(draw: st.DrawFn, model: type) -> bytes:
    items = draw(page_of(model))
    if draw(st.booleans()):  # ints beyond 64 bits, where orjson gives floats
        big = draw(st.sampled_from([2**63, 2**64, 10**30, -(2**63) - 1]))
        items = [{**i, draw(st.sampled_from(["added_at", "updated_at", "ip"])): big}
                 if type(i) is dict else i for i in items]
    reply: dict[str, Any] = {"result": items}
    cursor = draw(CURSORS)
    reply["_metadata"] = {"next_params": {"after_key": cursor}}
    reply["pages"] = {"last": cursor}
    if draw(st.booleans()):
        reply["extra"] = draw(st.sampled_from([10**30, 1.5, [[[1]]], {"a": None}]))
    return json.dumps(reply).encode()


@pytest.mark.parametrize("paging", PAGINGS)
@pytest.mark.parametrize("model", PAGE_MODELS, ids=lambda m: m.__name__)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_exact_path_gives_none_or_the_usual_page(
    model: type, paging: str, data: st.DataObject
) -> None:
    assert_exact_or_none(model, paging, data.draw(replies(model)))


VALID = json.dumps({"result": [ip(n) for n in range(1, 5)],
                    "_metadata": {"next_params": {"after_key": "4"}}})
ODD_BODIES = {
    "a big int in an item": VALID.replace('"added_at": 1', f'"added_at": {10**30}', 1),
    "a big int in the last item": VALID[::-1].replace(
        ' :"ta_dedda"', f' :"ta_dedda"{str(2**64)[::-1]}', 1)[::-1],
    "a big cursor": VALID.replace('"4"', str(10**30)),
    "a float cursor": VALID.replace('"4"', "4.0"),
    "a lone surrogate": VALID.replace('"us"', '"\\ud800"', 1),
    "NaN": VALID.replace('"added_at": 1', '"added_at": NaN', 1),
    "1e400": VALID.replace('"added_at": 1', '"added_at": 1e400', 1),
    "a BOM": "\ufeff" + VALID,
    "trailing data": VALID + " x",
    "not an object": "[]",
    "no result": '{"_metadata": {}}',
    "result not a list": '{"result": {}}',
    "deep metadata": VALID.replace('"after_key": "4"', '"x": ' + "[" * 40 + "]" * 40, 1),
}


@pytest.mark.parametrize("body", ODD_BODIES.values(), ids=ODD_BODIES.keys())
def test_odd_bodies_are_left_to_the_usual_path(body: str) -> None:
    assert assert_exact_or_none(models.IpAddress, "after_key", body.encode()) is None


@pytest.mark.parametrize("items", PAGES.values(), ids=PAGES.keys())
def test_hand_picked_pages_read_the_same(items: list[Any]) -> None:
    body = json.dumps({"result": items, "_metadata": {"next_params": {"after_key": "9"}}})
    assert_exact_or_none(models.IpAddress, "after_key", body.encode())


@pytest.mark.parametrize("paging", PAGINGS)
def test_a_usual_page_is_read_by_the_exact_path(paging: str) -> None:
    body = json.dumps({"result": [ip(n) for n in range(1, 4)], "pages": {"last": "192.0.2.3"},
                       "_metadata": {"next_params": {"after_key": 17}}}).encode()
    page = assert_exact_or_none(models.IpAddress, paging, body)
    assert page is not None
    assert [m.ip for m in page.items] == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
    assert page.next_cursor == ("17" if paging == "after_key" else "192.0.2.3")


@pytest.mark.parametrize("orjson", [True, False], ids=["orjson", "stdlib"])
async def test_a_list_with_big_ints_reads_them_exactly_with_or_without_orjson(
    client: SendGridIPAM, mocked: RecordingResponses, monkeypatch: pytest.MonkeyPatch,
    orjson: bool,
) -> None:
    if not orjson:
        monkeypatch.setattr(pagination, "FAST_LOADS", None)
    big = 10**30
    first = {"result": [ip(1), ip(2, added_at=big)],
             "_metadata": {"next_params": {"after_key": big}}}
    last = {"result": [ip(3)], "_metadata": {"next_params": {"after_key": None}}}
    url = re.escape(f"{BASE}/v3/send_ips/ips")
    mocked.get(re.compile(url + r"\?limit=2$"), body=json.dumps(first))
    mocked.get(re.compile(url + rf"\?.*after_key={big}"), body=json.dumps(last))

    got = [item async for item in client.ips.list(limit=2)]

    assert [(i.ip, i.added_at) for i in got] == [
        ("192.0.2.1", 1), ("192.0.2.2", big), ("192.0.2.3", 1)]
    assert type(got[1].added_at) is int


@pytest.mark.parametrize("orjson", [True, False], ids=["orjson", "stdlib"])
async def test_a_malformed_page_is_the_same_decode_error_with_or_without_orjson(
    client: SendGridIPAM, mocked: RecordingResponses, monkeypatch: pytest.MonkeyPatch,
    orjson: bool,
) -> None:
    if not orjson:
        monkeypatch.setattr(pagination, "FAST_LOADS", None)
    body = json.dumps({"result": [ip(1), ip(2, is_enabled="yes")]})
    mocked.get(re.compile(re.escape(f"{BASE}/v3/send_ips/ips") + r"\?.*"), body=body,
               repeat=True)
    with pytest.raises(DecodeError) as info:
        _ = [item async for item in client.ips.list(limit=100)]
    assert info.value.body == body
    assert "does not match the spec" in str(info.value)


def test_an_orjson_that_reads_what_the_client_refuses_is_not_used(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _wire._orjson_loads() is not None  # the installed orjson passes the checks
    lenient = types.ModuleType("orjson")
    lenient.loads = json.loads  # type: ignore[attr-defined]  # reads "\ud800", NaN, 1e400
    monkeypatch.setitem(sys.modules, "orjson", lenient)
    assert _wire._orjson_loads() is None
    monkeypatch.setitem(sys.modules, "orjson", None)  # not installed
    assert _wire._orjson_loads() is None
