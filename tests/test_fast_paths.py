"""The request path's shortcuts behave exactly like the general code they stand in for."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendgrid_ipam import SendGridIPAM, ValidationError, _wire, models
from sendgrid_ipam._convert import unstructure
from sendgrid_ipam.models import CreatePoolBody
from sendgrid_ipam.operations import OPERATIONS
from sendgrid_ipam.resources.pools import _create_pool_json

REPLIES = [
    b'{"a":1}',
    b' {"a": [1, 2.5, null, true]}\n',
    b"[1,2]",
    b'"x"',
    '{"é":"ü","池":"池"}'.encode(),
    '{"a":1}'.encode("utf-16"),
    '{"a":1}'.encode("utf-8-sig"),
]


@pytest.mark.parametrize("body", REPLIES)
def test_load_json_reads_what_json_loads_reads(body: bytes) -> None:
    assert _wire.load_json(body) == json.loads(body)


@pytest.mark.parametrize(
    "body", [b"", b"{", b'{"a":1}x', b"nul", b"<html>502</html>", b"\xff\xfe\xfd"]
)
def test_load_json_refuses_what_json_loads_refuses(body: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - json's own error, whichever it is
        json.loads(body)
    with pytest.raises(ValueError):  # noqa: PT011
        _wire.load_json(body)


@pytest.mark.parametrize(
    "value",
    [
        {"name": "pool", "ips": ("192.0.2.1", "192.0.2.2")},
        {"é": "ü", "n": None, "b": True, "i": 10, "nested": {"list": [1, "two"]}},
        {"quote": 'a "b" \\ c\n', "control": "\x00\x1f"},
    ],
)
def test_dump_json_writes_what_json_dumps_writes(value: object) -> None:
    expected = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    assert _wire.dump_json(value) == expected


# Any text a pool name may hold (quotes, backslashes, controls, any plane; no lone surrogate).
_NAMES = st.text(st.characters(exclude_categories=("Cs",)), min_size=2, max_size=64).filter(
    lambda name: name[0] not in " .")
_IPS = st.lists(st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)).map(str),
                unique=True, max_size=100)


@given(name=_NAMES, ips=_IPS)
def test_create_pool_json_writes_what_the_converter_and_encoder_write(
    name: str, ips: list[str]
) -> None:
    body = CreatePoolBody(name, ips)
    assert _create_pool_json(body.name, body.ips) == _wire.dump_json(unstructure(body))


def test_dump_json_refuses_what_json_cannot_encode() -> None:
    with pytest.raises(TypeError):
        _wire.dump_json({"when": object()})


async def test_urls_are_reused_per_operation_and_path() -> None:
    async with SendGridIPAM("SG.unit", base_url="http://127.0.0.1:9") as sg:
        get = OPERATIONS["GetIpPool"]
        first = sg._engine.url(get, "12345", None)
        assert sg._engine.url(get, "12345", None) is first
        assert str(first) == "http://127.0.0.1:9/v3/send_ips/pools/12345"
        assert sg._engine.url(get, "a/b", None).raw_path == "/v3/send_ips/pools/a%2Fb"
        with_query = sg._engine.url(get, "12345", {"include_region": True})
        assert str(with_query).endswith("/pools/12345?include_region=true")


async def test_a_cached_url_never_lets_a_bad_value_through() -> None:
    async with SendGridIPAM("SG.unit", base_url="http://127.0.0.1:9") as sg:
        get = OPERATIONS["GetIpPool"]
        sg._engine.url(get, "1", None)
        sg._engine.url(get, 1, None)  # an int id is fine, and not cached
        with pytest.raises(ValidationError, match="poolid"):
            sg._engine.url(get, True, None)  # True == 1, yet it must not pass for it
        with pytest.raises(ValidationError, match="poolid"):
            sg._engine.url(get, "..", None)


async def test_the_url_cache_is_bounded() -> None:
    async with SendGridIPAM("SG.unit", base_url="http://127.0.0.1:9") as sg:
        get = OPERATIONS["GetIpPool"]
        for n in range(5000):
            sg._engine.url(get, str(n), None)
        assert len(sg._engine.urls) <= 1024


# ---------------------------------------------------------------- IPv4 check and pool bodies

_REGEX_IPV4 = re.compile(  # the check as it was before inet_pton: the reference
    r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
    r"(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}")

_IPV4_TABLE = [
    "0.0.0.0", "1.2.3.4", "255.255.255.255", "10.0.0.10", "192.0.2.199", "249.250.251.252",
    "01.2.3.4", "1.02.3.4", "1.2.3.00", "00.0.0.0", "000.0.0.0", "1.2.3.010",  # leading zeros
    "256.1.2.3", "1.2.3.256", "300.1.1.1", "1.2.3.999", "1.2.3.1000", "1.2.3.2555",
    "1.2.3", "1.2.3.4.5", "1.2.3.", ".1.2.3", "1..2.3", "...", "", ".", "1",
    " 1.2.3.4", "1.2.3.4 ", "1.2.3.4\n", "1.2.3.4\t", "1.2.3.4\r\n", "1. 2.3.4", "\u00a01.2.3.4",
    "\u0661.2.3.4", "1.2.3.\u0664", "\uff11.2.3.4", "1.2.3.\u00b2", "1.2.3.\u2074",  # unicode
    "0x1.2.3.4", "0x7f.0.0.1", "+1.2.3.4", "1.2.3.-4", "1.2.3.4/32", "1.2.3.4%eth0",
    "1.2.3.4\x00", "\x001.2.3.4", "\ud800.1.2.3", "1.2.3.4\udfff", "::1", "::ffff:1.2.3.4",
    "2001:db8::1", "1.2.3.4:80", "a.b.c.d", "1e1.2.3.4", "1,2,3,4",
]


@pytest.mark.parametrize("text", _IPV4_TABLE)
def test_is_ipv4_accepts_what_the_regular_expression_accepts(text: str) -> None:
    assert models.is_ipv4(text) is (_REGEX_IPV4.fullmatch(text) is not None)


@given(st.text(st.one_of(st.sampled_from("0123456789."), st.characters()), max_size=20))
def test_is_ipv4_agrees_with_the_regular_expression_on_any_text(text: str) -> None:
    assert models.is_ipv4(text) is (_REGEX_IPV4.fullmatch(text) is not None)


@given(st.ip_addresses(v=4).map(str))
def test_is_ipv4_accepts_every_ipv4_address(text: str) -> None:
    assert models.is_ipv4(text)


def test_is_ipv4_is_inet_pton_where_the_c_library_is_strict() -> None:
    if sys.platform.startswith("linux"):  # glibc and musl: strict
        assert models.is_ipv4 is models._pton_ipv4


_ANY_NAME = st.one_of(_NAMES, st.text(max_size=70), st.sampled_from(
    ["", "a", "p" * 64, "p" * 65, " x", ".x", "x ", "x.", "\ud800x", "é" * 3]),
    st.integers(), st.none())
_ANY_IP = st.one_of(st.sampled_from(_IPV4_TABLE), st.ip_addresses().map(str),
                    st.text(max_size=16), st.integers())
_ANY_IPS = st.one_of(
    st.lists(_ANY_IP, max_size=5), st.lists(_ANY_IP, max_size=5).map(tuple),
    st.lists(st.ip_addresses(v=4).map(str), min_size=99, max_size=102),
    st.sampled_from(["1.2.3.4", b"1.2.3.4", None, 5, ["1.2.3.4", "1.2.3.4"]]),
    st.lists(st.ip_addresses(v=4).map(str), max_size=3).map(iter),
)


@given(name=_ANY_NAME, ips=_ANY_IPS)
def test_plain_create_pool_accepts_only_what_the_model_accepts(name: object, ips: object) -> None:
    checked = models.plain_create_pool(name, ips)
    if checked is not None:  # the model must agree, with the same fields
        body = CreatePoolBody(name, ips)  # type: ignore[arg-type]
        assert (body.name, body.ips) == (name, checked)
        assert type(checked) is tuple


@given(name=_NAMES.filter(str.isascii), ips=st.lists(
    st.ip_addresses(v=4).map(str), unique=True, max_size=100))
def test_plain_create_pool_takes_the_common_kind(name: str, ips: list[str]) -> None:
    assert models.plain_create_pool(name, ips) == tuple(ips)
    assert models.plain_create_pool(name, tuple(ips)) == tuple(ips)


async def test_create_sends_the_ips_as_they_were_when_called() -> None:
    ips = ["192.0.2.1"]
    async with SendGridIPAM("SG.unit", base_url="http://127.0.0.1:9") as sg:
        sent: list[bytes] = []

        async def execute(op: object, *, body: bytes, reconcile: Any, **kw: object) -> Any:
            ips.append("192.0.2.2")  # the caller's list changes while the call runs
            sent.append(body)
            return reconcile().body

        sg._engine.execute = execute  # type: ignore[method-assign]
        body = await sg.pools.create("p1", ips=ips)
    assert sent == [b'{"name":"p1","ips":["192.0.2.1"]}']
    assert body == CreatePoolBody("p1", ["192.0.2.1"])
