"""A hostile server on loopback, through aiohttp's own parser: raw bytes in headers and bodies.

aiohttp hands header bytes that are not UTF-8 over as lone surrogates (surrogateescape);
those, dates that cannot exist and bodies nested 100,000 deep must all end as a result or
a typed error. Each server answers at once: no test waits for real.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from sendgrid_ipam import (
    BadRequestError,
    DecodeError,
    IpPool,
    RateLimitError,
    RetryPolicy,
    SendGridIPAM,
    ServerError,
)

KEY = "SG.e2e-hostile"
ONE_ATTEMPT = RetryPolicy(max_attempts=1)
Reply = Callable[[], bytes]


def reply(status: int, headers: list[bytes], body: bytes) -> bytes:
    head = [f"HTTP/1.1 {status} X".encode(), *headers,
            f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


@pytest.fixture
async def server() -> AsyncIterator[tuple[list[bytes], str]]:
    """A server answering each request with the next scripted reply; (script, base URL)."""
    script: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(script.pop(0))
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    srv = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield script, f"http://127.0.0.1:{port}"
    finally:
        srv.close()
        await srv.wait_closed()


POOL = b'{"id":"1","name":"pp"}'
OVERFLOW = b"Mon, 01 Jan 99999999999999999999 00:00:00 GMT"
HEADER_SETS = {
    "overflowing dates": [b"Retry-After: " + OVERFLOW, b"Date: " + OVERFLOW],
    "bytes not UTF-8": [b"Retry-After: \xff\xfe", b"Date: \xff", b"X-RateLimit-Reset: \xc3("],
    "huge numbers": [b"Retry-After: 1e400", b"X-RateLimit-Reset: " + b"9" * 4_000,
                     b"X-RateLimit-Limit: " + b"9" * 4_000],
    "nan and inf": [b"Retry-After: nan", b"X-RateLimit-Reset: inf", b"X-RateLimit-Limit: -1"],
}


@pytest.mark.parametrize("headers", HEADER_SETS.values(), ids=HEADER_SETS.keys())
async def test_a_success_with_unreadable_headers_is_a_success(
    server: tuple[list[bytes], str], headers: list[bytes]
) -> None:
    script, url = server
    script.append(reply(200, [*headers, b"X-RateLimit-Remaining: 0"], POOL))
    async with SendGridIPAM(KEY, base_url=url, retry=ONE_ATTEMPT) as sg:
        assert await sg.pools.get("1") == IpPool(id="1", name="pp")
        assert sg.coordinator.held_for("GetIpPool") <= 1.0  # the unknown-window default at most


async def test_a_429_asking_for_years_closes_the_gate_for_at_most_a_minute(
    server: tuple[list[bytes], str],
) -> None:
    script, url = server
    script.append(reply(429, [b"Retry-After: 1e12", b"X-RateLimit-Reset: 1e12"], b""))
    async with SendGridIPAM(KEY, base_url=url, retry=ONE_ATTEMPT) as sg:
        with pytest.raises(RateLimitError) as info:
            await sg.pools.get("1")
        assert 0 < sg.coordinator.held_for("GetIpPool") <= 60.0
    assert info.value.retry_at is not None
    assert info.value.retry_at > 1e12


@pytest.mark.parametrize(
    ("status", "error"), [(200, DecodeError), (400, BadRequestError), (503, ServerError)]
)
async def test_a_body_nested_100000_deep_is_a_typed_error(
    server: tuple[list[bytes], str], status: int, error: type[Exception]
) -> None:
    script, url = server
    script.append(reply(status, [b"Content-Type: application/json"], b"[" * 100_000))
    async with SendGridIPAM(KEY, base_url=url, retry=ONE_ATTEMPT) as sg:
        with pytest.raises(error) as info:
            await sg.pools.get("1")
    assert getattr(info.value, "status", None) == status
    assert getattr(info.value, "errors", []) == []
