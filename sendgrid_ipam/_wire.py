"""The protocol without I/O: building requests and reading replies.

Everything here is a pure function of its arguments, so it is tested without a network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from ._version import __version__
from .errors import (
    DecodeError,
    ErrorDetail,
    ValidationError,
    error_class_for,
)
from .ratelimit import RateLimit

__all__ = [
    "USER_AGENT",
    "base_headers",
    "dump_json",
    "encode_query",
    "encode_segment",
    "parse_error_details",
    "read_reply",
]

USER_AGENT = f"sendgrid-ipam/{__version__}"
_DOT_SEGMENTS = frozenset({".", ".."})
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


def encode_segment(name: str, value: object) -> str:
    """Percent-encode one path segment so that no value can change which endpoint is called.

    '/', '?', '#', '%' and every other reserved character are encoded; the dot-segments
    '.' and '..' are refused, since URL normalisation may resolve them even when encoded.
    """
    if type(value) is str and _UNRESERVED.fullmatch(value) and value not in _DOT_SEGMENTS:
        return value  # the common case (ids, IPs): nothing to encode
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(name, f"must be a string, not {type(value).__name__}")
    text = str(value)
    if not text:
        raise ValidationError(name, "must not be empty")
    if text in _DOT_SEGMENTS:
        # Even percent-encoded, URL normalisation (RFC 3986, WHATWG) may resolve them.
        raise ValidationError(name, f"must not be {text!r}, which names no resource")
    return quote(text, safe="")


def _query_value(value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def encode_query(params: Mapping[str, object]) -> str:
    """The query string (without '?') for the parameters that are not None."""
    return "&".join(
        f"{quote(key, safe='')}={quote(_query_value(value), safe='')}"
        for key, value in params.items()
        if value is not None
    )


def base_headers(api_key: str, user_agent: str | None = None) -> dict[str, str]:
    """The headers every request carries."""
    return {
        "Authorization": f"Bearer {api_key}",
        "User-Agent": user_agent or USER_AGENT,
        "Accept": "application/json",
    }


# json.dumps and json.loads wrap C code in some twenty lines of Python each (encoder set-up,
# encoding detection, whitespace checks); on a request path of a hundred lines that shows.
# The C encoder and scanner are called directly, with the full functions as the fallback.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
_C_ENCODER = (
    None if json.encoder.c_make_encoder is None  # type: ignore[attr-defined]
    else json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        None, _ENCODER.default, json.encoder.encode_basestring, None, ":", ",", False, False,
        True,
    )
)
_SCAN = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def dump_json(body: Any) -> bytes:
    """A request body as compact JSON bytes (tuples become arrays)."""
    if _C_ENCODER is not None:
        return "".join(_C_ENCODER(body, 0)).encode()
    return _ENCODER.encode(body).encode()


def load_json(body: bytes) -> Any:
    """The JSON value of a reply body; raises ValueError when it is not JSON."""
    try:
        text = body.decode()
        value, end = _SCAN(text, 0)
    except (UnicodeDecodeError, StopIteration):
        return json.loads(body)  # other encodings, leading space, or the error to raise
    if end != len(text):
        return json.loads(text)  # trailing space is fine; trailing data raises
    return value


def read_reply(
    status: int, headers: Mapping[str, str], body: bytes, wall_clock: Callable[[], float]
) -> Any:
    """The decoded JSON of a successful reply (None when empty), or raise the right error.

    A 2xx whose body is not JSON raises `DecodeError`; an error status raises the
    `APIError` subclass for it, with the details parsed leniently and the raw text kept.
    """
    if 200 <= status < 300:
        if not body:
            return None
        try:
            return load_json(body)
        except ValueError:
            raise DecodeError(
                "reply is not valid JSON", status=status, body=_text(body)
            ) from None
    text = _text(body)
    raise error_class_for(status)(
        status,
        parse_error_details(text),
        text,
        headers,
        RateLimit.from_headers(headers, now=wall_clock()),
    )


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def parse_error_details(text: str) -> list[ErrorDetail]:
    """The error details of an error reply, whatever its shape; never raises.

    Understands IP Address Management's ``{"errors": [{"field", "message"}]}``, IP
    Provisioning's ``{"errors": [{"message", "field", "error_id"}]}`` and the
    ``{"error": "..."}`` some endpoints answer; anything else (HTML, empty) gives [].
    """
    try:
        data = json.loads(text)
    except ValueError:
        return []
    if not isinstance(data, dict):
        return []
    errors = data.get("errors")
    if isinstance(errors, list):
        return [_detail(item) for item in errors if isinstance(item, dict | str)]
    for key in ("error", "message"):
        if isinstance(data.get(key), str):
            return [ErrorDetail(message=data[key])]
    return []


def _detail(item: dict[str, Any] | str) -> ErrorDetail:
    if isinstance(item, str):
        return ErrorDetail(message=item)
    field, error_id, message = item.get("field"), item.get("error_id"), item.get("message")
    return ErrorDetail(
        message="" if message is None else str(message),
        field=None if field is None else str(field),
        error_id=None if error_id is None else str(error_id),
    )

