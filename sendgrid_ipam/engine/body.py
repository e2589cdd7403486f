"""Reading a reply's body within a size limit, and inflating it within the same limit.

A hostile or broken server can answer a body of any size, an endless stream, or a small
compressed body that inflates to gigabytes. The engine reads at most ``max_reply_size``
bytes of body *after* decompression, inflating gzip/deflate itself in bounded steps
(aiohttp's own decompression is turned off for the client's requests), so memory and time
stay bounded whatever arrives.
"""

from __future__ import annotations

import zlib

import aiohttp

__all__ = ["DEFAULT_MAX_REPLY_SIZE", "ERROR_BODY_LIMIT", "BodyTooLarge", "inflate", "read_body"]

DEFAULT_MAX_REPLY_SIZE = 16 * 1024 * 1024
"""16 MiB: some 80 times the largest legitimate reply (a 5,000-item ListAccountIps page)."""
ERROR_BODY_LIMIT = 64 * 1024
"""How much of an error reply's body is read and kept (a real one is a few hundred bytes)."""
_CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The body exceeded the limit; ``prefix`` holds what was read of it."""

    def __init__(self, prefix: bytes, limit: int) -> None:
        super().__init__(f"the reply's body exceeds {limit} bytes")
        self.prefix = prefix
        self.limit = limit


async def read_body(resp: aiohttp.ClientResponse, limit: int) -> bytes:
    """The body, as sent (still encoded), if it is at most ``limit`` bytes.

    Raises:
        BodyTooLarge: with the first ``limit`` bytes, as soon as the body proves longer.
    """
    length = resp.content_length
    if length is not None and length <= limit:
        return await resp.read()  # the common case: aiohttp reads exactly that much
    content = resp.content
    buffer = bytearray()
    while chunk := await content.read(_CHUNK):
        buffer += chunk
        if len(buffer) > limit:
            raise BodyTooLarge(bytes(buffer[:limit]), limit)
    return bytes(buffer)


def inflate(body: bytes, encoding: str, limit: int) -> bytes:
    """``body`` decoded from its Content-Encoding, never past ``limit`` bytes.

    Raises:
        BodyTooLarge: the decoded body would exceed ``limit``.
        ValueError: an encoding the client did not ask for, or a corrupt stream.
    """
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ValueError(f"the reply uses a Content-Encoding the client did not ask for "
                         f"({encoding[:40]!r})")
    # 47: zlib or gzip header, detected; a raw deflate stream (no header) is tried after.
    for wbits in (47, -15) if encoding == "deflate" else (31,):
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit or inflater.unconsumed_tail:
            raise BodyTooLarge(out[:limit], limit)
        return out
    raise ValueError(f"the reply's {encoding} body is corrupt")
