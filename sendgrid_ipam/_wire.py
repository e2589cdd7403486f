"""The protocol without I/O: building requests and reading replies.

Everything here is a pure function of its arguments, so it is tested without a network.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from itertools import accumulate
from typing import Any
from urllib.parse import quote

from ._text import shown
from ._version import __version__
from .errors import (
    DecodeError,
    ErrorDetail,
    ValidationError,
    error_class_for,
)
from .ratelimit import RateLimit

__all__ = [
    "FAST_LOADS",
    "USER_AGENT",
    "base_headers",
    "deeper_than",
    "dump_json",
    "encode_query",
    "encode_segment",
    "load_json",
    "parse_error_details",
    "read_reply",
    "reply_text",
]

USER_AGENT = f"sendgrid-ipam/{__version__}"
_DOT_SEGMENTS = frozenset({".", ".."})
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


def _quoted(name: str, text: str) -> str:
    """``text`` percent-encoded as UTF-8, or `ValidationError` naming the field.

    The one place user text becomes URL bytes: a lone surrogate ("\\ud800") has no UTF-8
    form, and would otherwise escape as UnicodeEncodeError.
    """
    try:
        return quote(text, safe="")
    except UnicodeError:
        raise ValidationError(
            name, "must be valid Unicode text (it holds a lone surrogate)"
        ) from None


def _as_text(name: str, value: object) -> str:
    """A str, or an int as its decimal digits (bool and others are the caller's to refuse)."""
    if type(value) is str:
        return value
    try:
        return str(value)
    except ValueError:  # int -> str beyond sys.get_int_max_str_digits()
        raise ValidationError(name, f"is too large a number to send: {shown(value)}") from None


def encode_segment(name: str, value: object) -> str:
    """Percent-encode one path segment so that no value can change which endpoint is called.

    '/', '?', '#', '%' and every other reserved character are encoded; the dot-segments
    '.' and '..' are refused, since URL normalisation may resolve them even when encoded.

    Raises:
        ValidationError: a value that is not a str or an int, is empty or a dot-segment,
            holds a lone surrogate, or is an int too large to write out.
    """
    if type(value) is str and _UNRESERVED.fullmatch(value) and value not in _DOT_SEGMENTS:
        return value  # the common case (ids, IPs): nothing to encode
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValidationError(name, f"must be a string, not {type(value).__name__}")
    text = _as_text(name, value)
    if not text:
        raise ValidationError(name, "must not be empty")
    if text in _DOT_SEGMENTS:
        # Even percent-encoded, URL normalisation (RFC 3986, WHATWG) may resolve them.
        raise ValidationError(name, f"must not be {text!r}, which names no resource")
    return _quoted(name, text)


def _query_value(name: str, value: object) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    return _quoted(name, _as_text(name, value))


def encode_query(params: Mapping[str, object]) -> str:
    """The query string (without '?') for the parameters that are not None.

    Raises:
        ValidationError: naming the parameter, for a value holding a lone surrogate or an
            int too large to write out.
    """
    return "&".join(
        f"{quote(key, safe='')}={_query_value(key, value)}"
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


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 reads as inf: no reply means that
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # Python's json takes NaN and Infinity by default


# What orjson must refuse for its pages to read as the standard library's do here (a
# version that reads any of them is not used): a lone surrogate, NaN, an out-of-range
# number, a BOM, bytes that are not UTF-8, nesting past any bound.
_ORJSON_REFUSES = (b'"\\ud800"', b'"\\udc00"', b"NaN", b"Infinity", b"1e400", b"\xef\xbb\xbf{}",
                   b'"\xff"', b'"\xed\xa0\x80"', b"[" * 2000 + b"]" * 2000)


def _orjson_loads() -> Callable[[bytes], Any] | None:
    try:
        import orjson  # optional: pip install "sendgrid-ipam[speed]"
    except ImportError:
        return None
    loads: Callable[[bytes], Any] = orjson.loads
    for text in _ORJSON_REFUSES:
        try:
            loads(text)
        except ValueError:
            continue
        return None
    if loads(b'{"a":[1,-0,"\\u00e9",true,null,18446744073709551615]}') != {
            "a": [1, 0, "\u00e9", True, None, 2**64 - 1]}:
        return None
    return loads


FAST_LOADS: Callable[[bytes], Any] | None = _orjson_loads()
"""orjson's decoder when it is installed (the ``speed`` extra), else None.

It decodes a list page at some 2x the standard library's speed, and refuses all the
standard library is made to refuse here (lone surrogates, NaN, out-of-range numbers,
a BOM, bytes that are not UTF-8), but reads an int beyond 64 bits as a float: so it is
used only where every value kept is checked to be exactly of its type (a list page's
exact reader), and anything else is decoded again by `load_json`."""

_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_no_constant)
_SCAN = _DECODER.scan_once  # type: ignore[attr-defined]

# SendGrid's replies nest four levels deep; 32 leaves room for any change of the beta API,
# while a value that deep can still be repr'd, compared or structured without recursing
# anywhere near Python's limit.
MAX_DEPTH = 32
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # D800-DFFF, high or low
_RAW_BODY_LIMIT = 64 * 1024  # bytes of a bad reply's body kept on its exception


def dump_json(body: Any) -> bytes:
    """A request body as compact JSON bytes (tuples become arrays).

    Raises:
        ValidationError: a body holding text with no UTF-8 form or an int too large to
            write (the request models refuse both first, naming the field).
    """
    try:
        if _C_ENCODER is not None:
            return "".join(_C_ENCODER(body, 0)).encode()
        return _ENCODER.encode(body).encode()
    except ValueError as exc:  # UnicodeEncodeError, or int -> str beyond the digit limit
        raise ValidationError("body", f"cannot be sent as JSON: {exc}") from None


def load_json(body: bytes | str, *, bound_depth: bool = True) -> Any:
    """The JSON value of a reply body; raises ValueError, and only ValueError, if unreadable.

    Refused besides malformed JSON: bytes that are not UTF-8 (or UTF-16/32), nesting deeper
    than `MAX_DEPTH` (unless ``bound_depth`` is false: for a caller that bounds the depth of
    the value itself, as a list page's reader does at no cost), numbers out of range
    (``1e999``, ``NaN``, ``Infinity``, ints beyond Python's digit limit) and strings
    holding a lone surrogate (``"\\ud800"``), which no caller could print or send back.
    Whatever the input, nothing else escapes: recursion, overflow or memory errors of the
    decoder become ValueError too.
    """
    try:
        if isinstance(body, bytes):
            try:
                text = body.decode()
            except UnicodeDecodeError:
                text = body.decode(json.detect_encoding(body))  # JSON's UTF-16 and UTF-32
        else:
            text = body
            if not text.isascii():
                text.encode()  # text given as str may hold a raw lone surrogate: refuse it
        try:
            value, end = _SCAN(text, 0)
        except StopIteration:  # leading space, a BOM, or the error to raise
            value, end = _DECODER.decode(text.removeprefix("\ufeff")), len(text)
        if end != len(text):
            value = _DECODER.decode(text)  # trailing space is fine; trailing data raises
    except ValueError:
        raise
    except (RecursionError, MemoryError, OverflowError, TypeError) as exc:
        raise ValueError(f"not readable as JSON ({type(exc).__name__})") from None
    # Deeper than MAX_DEPTH takes that many '[' or '{': most replies are ruled out by a count.
    if bound_depth and len(text) > 2 * MAX_DEPTH and (
        text.count("[") + text.count("{") > MAX_DEPTH and _depth(text) > MAX_DEPTH
    ):
        raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep")
    # (A backslash is found by memchr; "\\u" by a slower search, ~900 instructions per
    # list item: made only in a text that holds escapes at all.)
    if "\\" in text and "\\u" in text and _SURROGATE_ESCAPE.search(text):
        try:
            dump_json(value)  # only a lone surrogate makes it fail; a pair is a character
        except ValidationError:
            raise ValueError("a JSON string holds a lone surrogate") from None
    return value


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # (unrolled: no step per character)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_BYTE_STEP = {ord(k): v for k, v in _STEP.items()}
_NOT_BRACKET_BYTES = bytes(c for c in range(256) if c not in _BYTE_STEP)


def _depth(text: str) -> int:
    """How deep the JSON ``text`` (already decoded, so well formed) nests.

    All in C. First a bound: the running count of every bracket byte, strings included,
    which can only overstate the depth; only a text that the bound does not clear (rare: it
    takes a string full of brackets, or real nesting) has its strings emptied, by a regular
    expression, and is counted again exactly. (Walking the decoded value instead cost some
    12,000 instructions per item of a list page.)
    """
    raw = text.encode("utf-8", "surrogatepass").translate(None, _NOT_BRACKET_BYTES)
    if max(accumulate(map(_BYTE_STEP.__getitem__, raw)), default=0) <= MAX_DEPTH:
        return 0  # within the bound: not deeper than allowed, whatever the exact depth
    brackets = _NOT_BRACKET.sub("", _STRING.sub('""', text))
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def deeper_than(value: Any, levels: int) -> bool:
    """Whether a decoded JSON value nests more than ``levels`` deep (``[[]]`` is 2 deep).

    Recurses at most ``levels`` deep, whatever the value; meant for small values or rare
    ones (a walk costs some 12,000 instructions per item of a list page).
    """
    if type(value) is dict:
        children: Any = value.values()
    elif type(value) is list:
        children = value
    else:
        return False
    if levels < 1:
        return True
    return any(deeper_than(child, levels - 1) for child in children
               if type(child) is dict or type(child) is list)


def read_reply(
    status: int, headers: Mapping[str, str], body: bytes, wall_clock: Callable[[], float],
    bound_depth: bool = True,
) -> Any:
    """The decoded JSON of a successful reply (None when empty), or raise the right error.

    ``bound_depth=False`` leaves the depth bound of a 2xx's JSON to the caller (`load_json`).

    A 2xx whose body `load_json` cannot read raises `DecodeError`; an error status raises
    the `APIError` subclass for it, with the details parsed leniently (none when the body
    cannot be read) and the start of the raw text kept (see `reply_text`). Whatever the
    body and headers, no other exception escapes.
    """
    if 200 <= status < 300:
        if not body:
            return None
        try:
            return load_json(body, bound_depth=bound_depth)
        except ValueError as exc:
            raise DecodeError(
                f"reply is not valid JSON ({exc})", status=status, body=reply_text(body)
            ) from None
    raise error_class_for(status)(
        status,
        parse_error_details(body),
        reply_text(body),
        headers,
        RateLimit.from_headers(headers, now=wall_clock()),
    )


def reply_text(body: bytes) -> str:
    """The first 64 KiB of a reply body as text, for an exception's ``.body``.

    Bytes that are not UTF-8 become U+FFFD, so the text can always be printed.
    """
    return body[:_RAW_BODY_LIMIT].decode("utf-8", errors="replace")


def parse_error_details(body: str | bytes) -> list[ErrorDetail]:
    """The error details of an error reply, whatever its shape; never raises.

    Understands IP Address Management's ``{"errors": [{"field", "message"}]}``, IP
    Provisioning's ``{"errors": [{"message", "field", "error_id"}]}`` and the
    ``{"error": "..."}`` some endpoints answer; anything else (HTML, empty, JSON that
    `load_json` refuses) gives [].
    """
    try:
        data = load_json(body)
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

