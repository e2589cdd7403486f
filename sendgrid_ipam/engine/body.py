"""Reading a reply's body within a size limit, inflating it within the same limit, and
redacting the API key from what is kept of it.

A hostile or broken server can answer a body of any size, an endless stream, or a small
compressed body that inflates to gigabytes. The engine reads at most ``max_reply_size``
bytes of body *after* decompression, inflating gzip/deflate itself in bounded steps
(aiohttp's own decompression is turned off for the client's requests), so memory and time
stay bounded whatever arrives. Of an error reply, or of a body that cannot be read, only a
prefix of `ERROR_BODY_LIMIT` bytes is read or kept.
"""

from __future__ import annotations

import zlib
from typing import AnyStr

import aiohttp

__all__ = [
    "DEFAULT_MAX_REPLY_SIZE", "ERROR_BODY_LIMIT", "BodyTooLarge", "Secret", "inflate",
    "read_body", "read_prefix", "redact",
]

DEFAULT_MAX_REPLY_SIZE = 16 * 1024 * 1024
"""16 MiB: some 80 times the largest legitimate reply (a 5,000-item ListAccountIps page)."""
ERROR_BODY_LIMIT = 64 * 1024
"""How much of an error reply's body is read and kept (a real one is a few hundred bytes)."""
_CHUNK = 64 * 1024
_REDACTED = b"<redacted>"


class BodyTooLarge(Exception):
    """The body exceeded ``limit``; ``prefix`` holds at most `ERROR_BODY_LIMIT` bytes of it
    (all that an error keeps), ``declared`` the Content-Length when that alone gave it away."""

    def __init__(self, prefix: bytes, limit: int, declared: int | None = None) -> None:
        super().__init__(f"the reply's body exceeds {limit} bytes")
        self.prefix = prefix
        self.limit = limit
        self.declared = declared


def _compressed(resp: aiohttp.ClientResponse) -> bool:
    return resp.headers.get("Content-Encoding", "identity").strip().lower() != "identity"


async def _read_at_most(content: aiohttp.StreamReader, size: int) -> bytearray:
    """Up to ``size`` bytes of the stream: never a byte more is held."""
    buffer = bytearray()
    while (room := size - len(buffer)) > 0 and (chunk := await content.read(min(_CHUNK, room))):
        buffer += chunk
    return buffer


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, as sent (still encoded), if it is at most ``limit`` bytes.

    Raises:
        BodyTooLarge: at once if the Content-Length says so (nothing is read: a server that
            promises a gigabyte and stalls cannot hold the attempt), else as soon as the
            body proves longer.
    """
    length = resp.content_length
    if length is not None and length > limit:
        raise BodyTooLarge(b"", limit, length)
    if length is not None and not _compressed(resp):
        # The common case: aiohttp reads exactly that much. (Not when aiohttp inflates, on a
        # session of the user's: then the length is the compressed one.)
        return await resp.read()
    buffer = await _read_at_most(resp.content, limit + 1)
    if len(buffer) > limit:
        del buffer[ERROR_BODY_LIMIT:]
        raise BodyTooLarge(bytes(buffer), limit)
    return bytes(buffer)


async def read_prefix(resp: aiohttp.ClientResponse, limit: int = ERROR_BODY_LIMIT
                      ) -> tuple[bytes, bool]:
    """At most ``limit`` bytes of the body, and whether there was more (an error reply)."""
    buffer = await _read_at_most(resp.content, limit + 1)
    cut = len(buffer) > limit
    if cut:
        del buffer[limit:]
    return bytes(buffer), cut


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded from its Content-Encoding, never past ``limit`` bytes.

    Raises:
        BodyTooLarge: the decoded body would exceed ``limit``.
        ValueError: an encoding the client did not ask for, or a corrupt, truncated or
            trailing stream.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ValueError(f"the reply uses a Content-Encoding the client did not ask for "
                         f"({encoding[:40]!r})")
    # 47: zlib or gzip header, detected; a raw deflate stream (no header) is tried after,
    # as some servers send one for "deflate".
    for wbits in (47, -15) if encoding == "deflate" else (31,):
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit or inflater.unconsumed_tail:
            raise BodyTooLarge(out[:ERROR_BODY_LIMIT], limit)
        if not inflater.eof or inflater.unused_data.strip():
            break  # cut short, or followed by something else: not a body to trust
        return out
    raise ValueError(f"the reply's {encoding} body is corrupt")


class Secret(str):
    """A header value that holds the API key: sent as it is, shown as ``'<redacted>'`` by
    ``repr``, so no dict, multidict or traceback's locals that hold it can show it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "'<redacted>'"


def redact(data: AnyStr, secret: AnyStr, *, cut: bool = False, piece: int = 6) -> AnyStr:
    """``data`` (a body, a header value, an error message) with no trace of ``secret``.

    The secret is replaced wherever it appears whole, and so is every run of at least
    ``piece`` of its characters in a row: a proxy or a parser that cut the echoed key short
    (aiohttp shows 100 bytes of a bad header line, then "...") leaves only pieces of it.
    If ``data`` was itself ``cut`` short, a start of the secret at its very end is dropped.
    """
    marker: AnyStr = _REDACTED if isinstance(secret, bytes) else _REDACTED.decode()
    size = len(data)
    if cut:
        for end in range(min(len(secret) - 1, size), 0, -1):
            if data.endswith(secret[:end]):
                data = data[:-end]
                break
    if secret in data:
        data = data.replace(secret, marker)
    pieces = pieces_of(secret, piece)
    if any(p in data for p in pieces):  # rare: only then the slower scan
        data = _redact_pieces(data, pieces, min(piece, len(secret)), marker)
    # A prefix stays within its bound, even if a marker is longer than what it replaced.
    return data[:size] if cut else data


def pieces_of(secret: AnyStr, piece: int = 6) -> frozenset[AnyStr]:
    """Every run of ``piece`` characters of ``secret`` (the whole of a shorter one): text
    holding none of them holds nothing `redact` would replace."""
    piece = min(piece, len(secret))
    return frozenset(secret[i:i + piece] for i in range(len(secret) - piece + 1))


def _redact_pieces(data: AnyStr, pieces: frozenset[AnyStr], size: int,
                   marker: AnyStr) -> AnyStr:
    """``data`` with each run of overlapping ``pieces`` replaced by ``marker``."""
    out: list[AnyStr] = []
    kept = 0  # data[:kept] is dealt with
    run_end = -1
    for start in range(len(data) - size + 1):
        if data[start:start + size] in pieces:
            if start > run_end:  # a new run: keep what came before it
                out.append(data[kept:start])
                out.append(marker)
            run_end = start + size
            kept = run_end
    out.append(data[kept:])
    return data[:0].join(out)
