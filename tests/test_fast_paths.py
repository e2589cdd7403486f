"""The request path's shortcuts behave exactly like the general code they stand in for."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendgrid_ipam import SendGridIPAM, ValidationError, _wire
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
    assert _create_pool_json(body) == _wire.dump_json(unstructure(body))


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
