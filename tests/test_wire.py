"""The sans-I/O protocol: path and query encoding, reading replies, parsing error bodies."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest

from sendgrid_ipam import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    ErrorDetail,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    ValidationError,
    __version__,
    _wire,
)

NOW = 1_800_000_000.0


def read(status: int, headers: dict[str, str], body: bytes) -> object:
    """`_wire.read_reply` at a fixed Unix time."""
    return _wire.read_reply(status, headers, body, lambda: NOW)

# ---------------------------------------------------------------- path segments


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.0.2.1", "192.0.2.1"),
        ("2001:db8::1", "2001%3Adb8%3A%3A1"),
        ("12345", "12345"),
        (12345, "12345"),
        ("a/../b", "a%2F..%2Fb"),
        ("../../v3/user", "..%2F..%2Fv3%2Fuser"),
        ("%", "%25"),
        ("%2F", "%252F"),
        ("?x=1", "%3Fx%3D1"),
        ("#frag", "%23frag"),
        ("a b", "a%20b"),
        ("café", "caf%C3%A9"),
        ("池", "%E6%B1%A0"),
        ("a;b", "a%3Bb"),
        ("a\\b", "a%5Cb"),
    ],
)
def test_segment_encoding(value: object, expected: str) -> None:
    assert _wire.encode_segment("poolid", value) == expected


@pytest.mark.parametrize(
    "value", ["a/../b", "%", "?", "#", "/", "x/y", "..%2F", "é/..", "a?b#c", "...", ".x"]
)
def test_segment_never_leaves_its_place(value: str) -> None:
    """Whatever the value, it stays one segment that no URL normalisation can resolve."""
    encoded = _wire.encode_segment("poolid", value)
    assert "/" not in encoded
    assert "?" not in encoded
    assert "#" not in encoded
    assert encoded not in (".", "..")
    assert unquote(encoded) == value


@pytest.mark.parametrize("value", [".", ".."])
def test_dot_segments_are_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="poolid"):
        _wire.encode_segment("poolid", value)


@pytest.mark.parametrize("value", ["", None, True, False, 1.5, ["1"], b"12"])
def test_segment_rejects_what_is_not_an_id(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        _wire.encode_segment("poolid", value)
    assert info.value.field == "poolid"


# ---------------------------------------------------------------- query strings


def test_query_booleans_are_lowercase_words() -> None:
    assert _wire.encode_query({"is_leased": True, "include_region": False}) == (
        "is_leased=true&include_region=false"
    )


def test_query_skips_none_and_keeps_order() -> None:
    assert _wire.encode_query({"limit": 10, "ip": None, "region": "eu"}) == "limit=10&region=eu"


def test_query_of_nothing_is_empty() -> None:
    assert _wire.encode_query({"ip": None}) == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2001:db8::1", "2001%3Adb8%3A%3A1"),
        ("a&b=c", "a%26b%3Dc"),
        ("a b+c", "a%20b%2Bc"),
        ("é", "%C3%A9"),
        (0, "0"),
    ],
)
def test_query_values_are_encoded(value: object, expected: str) -> None:
    assert _wire.encode_query({"after_key": value}) == f"after_key={expected}"


# ---------------------------------------------------------------- headers and bodies


def test_base_headers() -> None:
    headers = _wire.base_headers("SG.key")
    assert headers["Authorization"] == "Bearer SG.key"
    assert headers["User-Agent"] == f"sendgrid-ipam/{__version__}"
    assert headers["Accept"] == "application/json"


def test_custom_user_agent_replaces_the_default() -> None:
    assert _wire.base_headers("SG.key", "acme/2")["User-Agent"] == "acme/2"


def test_json_bodies_are_compact_utf8() -> None:
    assert _wire.dump_json({"name": "café", "ips": ["192.0.2.1"]}) == (
        '{"name":"café","ips":["192.0.2.1"]}'.encode()
    )


# ---------------------------------------------------------------- reading replies


@pytest.mark.parametrize("status", [200, 201, 202])
def test_read_reply_decodes_json(status: int) -> None:
    assert read(status, {}, b'{"ip": "192.0.2.1"}') == {"ip": "192.0.2.1"}


@pytest.mark.parametrize("status", [200, 201, 204])
def test_read_reply_of_an_empty_body_is_none(status: int) -> None:
    assert read(status, {}, b"") is None


@pytest.mark.parametrize(
    "body", [b"{", b"<html>oops</html>", b"not json", b"\xff\xfe", b'{"a": 1} trailing']
)
def test_read_reply_of_invalid_json_raises_decode_error_with_the_text(body: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        read(200, {}, body)
    assert info.value.status == 200
    assert info.value.body == body.decode("utf-8", "replace")
    assert "HTTP 200" in str(info.value)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, PermissionDeniedError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (502, ServerError),
        (503, ServerError),
        (504, ServerError),
        (409, APIError),
        (418, APIError),
    ],
)
def test_read_reply_raises_the_class_for_the_status(status: int, cls: type[APIError]) -> None:
    body = b'{"errors":[{"field":"name","message":"bad"}]}'
    with pytest.raises(APIError) as info:
        read(status, {"X-Request-Id": "r1"}, body)
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.errors == [ErrorDetail("bad", "name")]
    assert info.value.body == body.decode()
    assert info.value.headers == {"X-Request-Id": "r1"}


def test_read_reply_on_429_parses_the_rate_limit() -> None:
    headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0",
               "X-RateLimit-Reset": str(int(NOW) + 30)}
    with pytest.raises(RateLimitError) as info:
        read(429, headers, b'{"errors":[{"field":null,"message":"too many requests"}]}')
    assert info.value.retry_at == NOW + 30
    assert info.value.errors == [ErrorDetail("too many requests")]


# ---------------------------------------------------------------- error bodies


def test_ipam_error_shape() -> None:
    text = json.dumps({"errors": [
        {"field": "name", "message": "already exists"},
        {"field": "", "message": "100 pools limit has been reached"},
    ]})
    details = _wire.parse_error_details(text)
    assert [(d.field, d.message, d.error_id) for d in details] == [
        ("name", "already exists", None),
        ("", "100 pools limit has been reached", None),
    ]


def test_provisioning_error_shape() -> None:
    text = json.dumps({"errors": [
        {"message": "Field must be a valid IP address", "field": "ip", "error_id": "10-40002"},
    ]})
    assert _wire.parse_error_details(text) == [
        ErrorDetail("Field must be a valid IP address", "ip", "10-40002")
    ]


@pytest.mark.parametrize("key", ["error", "message"])
def test_single_error_string_shape(key: str) -> None:
    assert _wire.parse_error_details(json.dumps({key: "access forbidden"})) == [
        ErrorDetail("access forbidden")
    ]


def test_errors_item_with_null_field() -> None:
    text = '{"errors":[{"field":null,"message":"too many requests"}]}'
    assert _wire.parse_error_details(text) == [ErrorDetail("too many requests", None)]


def test_errors_items_that_are_strings_or_junk() -> None:
    text = '{"errors":["plain text", 7, null, {"message": "ok"}]}'
    assert _wire.parse_error_details(text) == [ErrorDetail("plain text"), ErrorDetail("ok")]


def test_errors_item_with_null_message_does_not_read_none() -> None:
    """A null message is no message, not the word "None"."""
    text = '{"errors":[{"field":"ips","message":null}]}'
    (detail,) = _wire.parse_error_details(text)
    assert detail.field == "ips"
    assert detail.message == ""


def test_numeric_error_id_becomes_text() -> None:
    text = '{"errors":[{"field":"","message":"m","error_id":1040002}]}'
    assert _wire.parse_error_details(text)[0].error_id == "1040002"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
        "{",
        '[{"field": "name", "message": "bad"}]',
        '"just a string"',
        "null",
        "42",
        '{"errors": "not a list"}',
        '{"errors": {"field": "x"}}',
        '{"unrelated": true}',
    ],
)
def test_unreadable_error_bodies_give_no_details_and_never_raise(text: str) -> None:
    assert _wire.parse_error_details(text) == []


def test_error_text_that_is_not_utf8_is_kept_readable() -> None:
    with pytest.raises(ServerError) as info:
        read(502, {}, b"Bad gateway \xff")
    assert info.value.body == "Bad gateway \ufffd"
    assert info.value.errors == []
