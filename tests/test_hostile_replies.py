"""Hostile replies: whatever the body and headers, a typed error (or the value), never a crash.

Bodies a server (or something pretending to be one) may send: JSON nested 100,000 deep,
numbers no float or int can hold, bytes that are not UTF-8, lone surrogates, NUL bytes.
On a 2xx the user gets `DecodeError` (status and the start of the raw text kept), on an
error status the status's `APIError` with empty details.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendgrid_ipam import (
    AmbiguousResultError,
    APIError,
    BadRequestError,
    DecodeError,
    ErrorDetail,
    RetryPolicy,
    SendGridError,
    SendGridIPAM,
    ServerError,
    _wire,
)
from sendgrid_ipam.errors import error_class_for
from tests.conftest import OPS, RecordingResponses, serve_checks

NOW = 1_800_000_000.0
ONE_ATTEMPT = RetryPolicy(max_attempts=1)
KEPT = 64 * 1024

HOSTILE_BODIES: dict[str, bytes] = {
    "nested arrays": b"[" * 100_000,
    "nested objects": b'{"a":' * 100_000,
    "nested and closed": b"[" * 5_000 + b"]" * 5_000,
    "nested 33 deep": b"[" * 33 + b"]" * 33,
    "nested error message": b'{"errors":[{"message":' + b"[" * 900 + b"]" * 900 + b"}]}",
    "nested in a field": b'{"ip":' + b'{"a":' * 40 + b"1" + b"}" * 40 + b"}",
    "huge exponent": b"1e999999",
    "huge exponent in a field": b'{"errors":[{"message":-1e400}], "ip": 1e999}',
    "huge int": b"1" * 100_000,
    "huge int in a message": b'{"errors":[{"message":' + b"9" * 5_000 + b"}]}",
    "NaN": b'{"errors":[{"message":NaN}]}',
    "Infinity": b"Infinity",
    "-Infinity": b'{"ip": -Infinity}',
    "invalid UTF-8": b'{"errors":[{"message":"\xff\xfe"}]}',
    "truncated UTF-8": b'{"ip":"\xe6\xb1',
    "lone surrogate": b'{"errors":[{"message":"\\ud800"}]}',
    "lone low surrogate": b'"\\uDC00"',
    "reversed pair": b'{"ip":"\\udc00\\ud800"}',
    "surrogate in a key": b'{"\\ud800":1}',
    "surrogate in a cursor": b'{"result":[],"_metadata":{"next_params":{"after_key":"\\ud800"}}}',
    "raw NUL": b'{"errors":[{"message":"\x00"}]}',
    "NUL first": b"\x00{}",
    "only NULs": b"\x00" * 1_000,
    "half a BOM": b"\xef\xbb",
}
STATUSES = [200, 201, 202, 400, 401, 404, 409, 429, 500, 502, 503]


def read(status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    return _wire.read_reply(status, headers or {}, body, lambda: NOW)


def outcome(status: int, body: bytes) -> Any:
    """What read_reply gives: the value, or the SendGridError it raised (others propagate)."""
    try:
        return read(status, body)
    except SendGridError as exc:
        return exc


def assert_typed(status: int, body: bytes, *, details_empty: bool) -> None:
    """read_reply either returns JSON (2xx) or raises the typed error for the status."""
    result = outcome(status, body)
    if 200 <= status < 300:
        if isinstance(result, SendGridError):
            assert type(result) is DecodeError
            assert result.status == status
            assert result.body == body[:KEPT].decode("utf-8", "replace")
            assert f"HTTP {status}" in str(result)
        return
    assert type(result) is error_class_for(status)
    assert result.status == status
    assert len(result.body) <= KEPT
    assert all(isinstance(d.message, str) for d in result.errors)
    str(result).encode()  # printable: no lone surrogate reached the message
    if details_empty:
        assert result.errors == []


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_hostile_bodies_are_a_decode_error_or_the_status_error(status: int, body: bytes) -> None:
    with pytest.raises((DecodeError, APIError)) as info:
        read(status, body)
    if 200 <= status < 300:
        assert type(info.value) is DecodeError
    assert_typed(status, body, details_empty=True)


def test_the_raw_text_kept_is_a_bounded_prefix() -> None:
    body = b"[" * 1_000_000
    with pytest.raises(DecodeError) as decode:
        read(200, body)
    assert decode.value.body == "[" * KEPT
    assert len(str(decode.value)) < 3_000
    with pytest.raises(ServerError) as server:
        read(503, body)
    assert server.value.body == "[" * KEPT
    assert server.value.errors == []


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300), status=st.sampled_from(STATUSES))
def test_any_bytes_on_any_status(body: bytes, status: int) -> None:
    assert_typed(status, body, details_empty=False)


_JSON_PIECES = st.sampled_from([
    "[", "]", "{", "}", '"a":', ",", "1e999", "-1e400", "NaN", "Infinity", "1" * 5_000,
    '"\\ud800"', '"\\udfff"', '"\\ud83d\\ude00"', '"\x00"', "\\u0000", "null", "0", '"x"',
    '{"errors":[', '{"message":', '"error":', "\xff", "\ufeff", " ",
])


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(_JSON_PIECES, max_size=60),
    depth=st.sampled_from([0, 31, 32, 33, 2_000, 50_000]),
    status=st.sampled_from(STATUSES),
)
def test_hostile_json_like_text_on_any_status(pieces: list[str], depth: int, status: int) -> None:
    text = "[" * depth + "".join(pieces) + "]" * depth
    assert_typed(status, text.encode("utf-8", "surrogatepass"), details_empty=False)


# ---------------------------------------------------------------- what is still read


@pytest.mark.parametrize(
    ("body", "value"),
    [
        (b"[" * 32 + b"]" * 32, json.loads("[" * 32 + "]" * 32)),
        (b'{"name":"\\ud83d\\ude00"}', {"name": "\U0001f600"}),
        (b'{"name":"a\\\\ud800"}', {"name": "a\\ud800"}),  # an escaped backslash, not an escape
        ('{"ip":"192.0.2.1"}'.encode("utf-16"), {"ip": "192.0.2.1"}),
        (b'\xef\xbb\xbf{"ip":"192.0.2.1"}', {"ip": "192.0.2.1"}),
        (b' {"n": 1.5e3} ', {"n": 1500.0}),
        (b'{"n": 1e-400}', {"n": 0.0}),
        (b"9" * 4_300, int("9" * 4_300)),
        (json.dumps({"result": [{"ip": "192.0.2.1"}] * 200}).encode(),
         {"result": [{"ip": "192.0.2.1"}] * 200}),
    ],
    ids=["32 deep", "surrogate pair", "escaped backslash", "UTF-16", "BOM", "float",
         "underflow", "4300 digits", "a long page"],
)
def test_legitimate_json_is_still_read(body: bytes, value: Any) -> None:
    assert read(200, body) == value


def test_text_with_a_raw_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        _wire.load_json('{"message": "\ud800"}')
    assert _wire.parse_error_details('{"errors": [{"message": "a\udc80"}]}') == []


def test_error_details_of_a_readable_body_are_kept() -> None:
    assert _wire.parse_error_details(b'{"errors":[{"message":"\\ud83d\\ude00"}]}') == [
        ErrorDetail("\U0001f600")
    ]


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_parse_error_details_never_raises(body: bytes) -> None:
    assert _wire.parse_error_details(body) == []
    details = _wire.parse_error_details(body.decode("utf-8", "replace"))  # text: U+FFFD reads
    assert all(isinstance(d, ErrorDetail) for d in details)


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_load_json_raises_only_value_error(body: bytes) -> None:
    with pytest.raises(ValueError) as info:  # noqa: PT011 - the point: nothing but ValueError
        _wire.load_json(body)
    assert type(info.value) in (ValueError, json.JSONDecodeError, UnicodeDecodeError)


# ---------------------------------------------------------------- through the client

NESTED = "[" * 100_000
WRITES = {"AddAccountIps", "AddIp", "CreateIpPool"}


@pytest.mark.parametrize("status", [200, 400, 503])
@pytest.mark.parametrize("operation_id", list(OPS))
async def test_nested_json_on_every_operation_and_status_is_typed(
    client: SendGridIPAM, mocked: RecordingResponses, operation_id: str, status: int
) -> None:
    op = OPS[operation_id]
    serve_checks(mocked, operation_id)
    ok = 201 if operation_id in WRITES else 200
    mocked.add(op.url_pattern, method=op.method, status=ok if status == 200 else status,
               body=NESTED, repeat=True)
    with pytest.raises(SendGridError) as info:
        await op.invoke(client, retry=ONE_ATTEMPT)
    exc = info.value
    if status == 200:
        assert isinstance(exc, DecodeError | AmbiguousResultError)
    elif status == 400:
        assert type(exc) is BadRequestError
        assert exc.errors == []
    else:
        assert isinstance(exc, ServerError | AmbiguousResultError)
        if isinstance(exc, ServerError):
            assert exc.errors == []
