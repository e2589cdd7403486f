"""Memory is bounded whatever a reply holds: a body past ``max_reply_size``, an endless
stream, a compression bomb or an unknown encoding is a typed error, fast, and an error's
``.body`` is a bounded prefix. Memory is measured (tracemalloc). End to end over loopback,
on a session the client owns and on one the user passes in."""

from __future__ import annotations

import asyncio
import gzip
import json
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from sendgrid_ipam import (
    AmbiguousResultError,
    DecodeError,
    IpPool,
    RetryPolicy,
    SendGridError,
    SendGridIPAM,
    ServerError,
)

from .hostile_servers import RawServer, never, serve_app

KEY = "SG.memory-test-key"
LIMIT = 256 * 1024
ERROR_PREFIX = 64 * 1024  # what an error's .body keeps at most
MiB = 1024 * 1024
POOL = json.dumps({"id": "7", "name": "pool", "ips_preview": ["192.0.2.7"]}).encode()
BOMB = b"\0" * (10 * MiB)
ONCE = RetryPolicy(max_attempts=1)


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


ENCODINGS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip": ("gzip", gzip.compress),
    "x-gzip": ("x-gzip", gzip.compress),
    "deflate (zlib)": ("deflate", zlib.compress),
    "deflate (raw)": ("deflate", _raw_deflate),
}


# Compressed once here: the server runs in the test's process, and tracemalloc sees it too.
PACKED = {name: (encoding, pack(POOL), pack(BOMB)) for name, (encoding, pack) in ENCODINGS.items()}
SPACES, EXES = b" " * (64 * 1024), b"x" * (64 * 1024)


async def _stream(
    request: web.Request, status: int, first: bytes, chunk: bytes
) -> web.StreamResponse:
    """A chunked body of ``first`` and then ``chunk`` for 256 MiB: endless, to a client
    that would read it all (the server reuses one chunk: it allocates next to nothing)."""
    response = web.StreamResponse(status=status, headers={"Content-Type": "application/json"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    await response.write(first)
    for _ in range(4096):
        await response.write(chunk)
    return response


def _app() -> web.Application:
    """GetIpPool answers by pool id: each id is one kind of reply."""

    def answer(status: int, body: bytes, **headers: str) -> web.Response:
        return web.Response(status=status, body=body, headers={
            "Content-Type": "application/json", **headers})

    replies: dict[str, Callable[[], web.Response]] = {
        "ok": lambda: answer(200, POOL),
        "big": lambda: answer(200, POOL + b" " * (2 * LIMIT)),
        "at-limit": lambda: answer(200, POOL + b" " * (LIMIT - len(POOL))),
        "past-limit": lambda: answer(200, POOL + b" " * (LIMIT - len(POOL) + 1)),
    }
    for name, (encoding, pool, bomb) in PACKED.items():
        replies[f"{name}-ok"] = lambda e=encoding, b=pool: answer(  # type: ignore[misc]
            200, b, **{"Content-Encoding": e})
        replies[f"{name}-bomb"] = lambda e=encoding, b=bomb: answer(  # type: ignore[misc]
            200, b, **{"Content-Encoding": e})
        replies[f"{name}-bomb-500"] = lambda e=encoding, b=bomb: answer(  # type: ignore[misc]
            500, b, **{"Content-Encoding": e})
    for encoding in ("br", "zstd", "garbage", "gzip, gzip", "compress"):
        replies[f"enc-{encoding}"] = lambda e=encoding: answer(  # type: ignore[misc]
            200, POOL, **{"Content-Encoding": e})
    replies["corrupt-gzip"] = lambda: answer(200, b"\x1f\x8b" + b"not gzip" * 10,
                                             **{"Content-Encoding": "gzip"})
    replies["truncated-gzip"] = lambda: answer(200, gzip.compress(POOL)[:-12],
                                               **{"Content-Encoding": "gzip"})

    async def get_pool(request: web.Request) -> web.StreamResponse:
        pool_id = request.match_info["pool_id"]
        if pool_id == "stream":
            return await _stream(request, 200, POOL, SPACES)
        if pool_id == "huge-500":
            return await _stream(request, 500, b'{"errors": [{"message": "', EXES)
        return replies[pool_id]()

    app = web.Application()
    app.router.add_get("/v3/send_ips/pools/{pool_id}", get_pool)
    return app


@pytest.fixture(params=["own session", "user session"])
async def connect(
    request: pytest.FixtureRequest,
) -> AsyncIterator[Callable[..., SendGridIPAM]]:
    """Builds clients for a server: on their own session, or on one the user passes in."""
    session = aiohttp.ClientSession() if request.param == "user session" else None

    def make(url: str, **settings: Any) -> SendGridIPAM:
        settings = {"max_reply_size": LIMIT, "retry": ONCE, "timeout": 5} | settings
        return SendGridIPAM(KEY, base_url=url, session=session, **settings)

    yield make
    if session is not None:
        await session.close()


@pytest.fixture
async def url() -> AsyncIterator[str]:
    async with serve_app(_app()) as base:
        yield base


async def _measured(call: Awaitable[Any]) -> tuple[BaseException | None, float, int]:
    """What ``call`` raised, how long it took and the peak memory it allocated."""
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        started = time.monotonic()
        error: BaseException | None = None
        try:
            await asyncio.wait_for(call, timeout=10)
        except SendGridError as exc:
            error = exc
        elapsed = time.monotonic() - started
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    return error, elapsed, peak


async def _get_measured(
    connect: Callable[..., SendGridIPAM], url: str, pool_id: str
) -> BaseException | None:
    """GetIpPool ``pool_id``, measured: bounded in time and memory; what it raised."""
    async with connect(url) as sg:
        await sg.pools.get("ok")  # the session and connection exist before measuring
        error, elapsed, peak = await _measured(sg.pools.get(pool_id))
        assert (await sg.pools.get("ok")).name == "pool", "the client still works after"
    assert elapsed < 3.0  # (a loaded machine's slack; waiting out the 5 s timeout: >= 5 s)
    assert peak < 4 * LIMIT, f"peak {peak / MiB:.1f} MiB"
    if isinstance(error, DecodeError | ServerError):
        assert len(error.body) <= ERROR_PREFIX
    return error


async def test_a_reply_within_the_limit_decodes(
    connect: Callable[..., SendGridIPAM], url: str
) -> None:
    async with connect(url) as sg:
        assert (await sg.pools.get("at-limit")).name == "pool"
        with pytest.raises(DecodeError) as caught:
            await sg.pools.get("past-limit")
    assert "max_reply_size" in str(caught.value)
    assert caught.value.status == 200


async def test_the_default_limit_is_16_mib(url: str) -> None:
    limit = 16 * MiB
    app = web.Application()

    async def padded(request: web.Request) -> web.Response:
        size = limit + int(request.match_info["pool_id"])
        return web.Response(body=POOL + b" " * (size - len(POOL)),
                            content_type="application/json")

    app.router.add_get("/v3/send_ips/pools/{pool_id}", padded)
    async with serve_app(app) as base, SendGridIPAM(KEY, base_url=base, retry=ONCE) as sg:
        assert (await sg.pools.get("0")).name == "pool"
        with pytest.raises(DecodeError, match="max_reply_size"):
            await sg.pools.get("1")


async def test_a_reply_past_the_limit_is_cut_short_with_bounded_memory(
    connect: Callable[..., SendGridIPAM], url: str
) -> None:
    error = await _get_measured(connect, url, "stream")
    assert isinstance(error, DecodeError), repr(error)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_compressed_reply_is_inflated(
    connect: Callable[..., SendGridIPAM], url: str, encoding: str
) -> None:
    async with connect(url) as sg:
        pool = await sg.pools.get(f"{encoding}-ok")
    assert pool == IpPool(id="7", name="pool", ips_preview=("192.0.2.7",))


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_compression_bomb_stops_at_the_limit(
    connect: Callable[..., SendGridIPAM], url: str, encoding: str
) -> None:
    error = await _get_measured(connect, url, f"{encoding}-bomb")
    assert isinstance(error, DecodeError), repr(error)
    assert "max_reply_size" in str(error)


@pytest.mark.parametrize("encoding", ENCODINGS)
async def test_a_compression_bomb_in_an_error_reply_keeps_a_bounded_prefix(
    connect: Callable[..., SendGridIPAM], url: str, encoding: str
) -> None:
    error = await _get_measured(connect, url, f"{encoding}-bomb-500")
    assert isinstance(error, ServerError), repr(error)
    assert error.status == 500
    assert error.body.startswith("\0\0\0")


async def test_an_error_reply_with_a_huge_body_keeps_a_bounded_prefix(
    connect: Callable[..., SendGridIPAM], url: str
) -> None:
    error = await _get_measured(connect, url, "huge-500")
    assert isinstance(error, ServerError), repr(error)
    assert error.body.startswith('{"errors": [{"message": "xxx')
    assert len(str(error)) < 4096


@pytest.mark.parametrize(
    "reply", ["enc-br", "enc-zstd", "enc-garbage", "enc-gzip, gzip", "enc-compress",
              "corrupt-gzip", "truncated-gzip"])
async def test_a_body_the_client_cannot_inflate_is_a_decode_error(
    connect: Callable[..., SendGridIPAM], url: str, reply: str
) -> None:
    async with connect(url) as sg:
        with pytest.raises(DecodeError) as caught:
            await sg.pools.get(reply)
    assert caught.value.status == 200


async def test_a_content_length_past_the_limit_is_refused_without_reading(
    connect: Callable[..., SendGridIPAM],
) -> None:
    async def promise_a_gigabyte(_: Any, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000000000\r\n\r\n" + POOL)
        await never(_, writer)  # and never sends the rest

    async with RawServer(promise_a_gigabyte) as server, connect(server.url) as sg:
        started = time.monotonic()
        with pytest.raises(DecodeError, match="max_reply_size"):
            await sg.pools.get("1")
    assert time.monotonic() - started < 3.0, "it did not wait for the body (timeout 5 s)"


async def test_an_ambiguous_write_whose_reply_is_too_large_is_reconciled(
    connect: Callable[..., SendGridIPAM],
) -> None:
    """A 201 past the limit may have landed: the client checks, and finds the IPs."""
    account: list[str] = ["198.51.100.1"]
    posts: list[int] = []

    async def list_ips(request: web.Request) -> web.Response:
        limit = int(request.query["limit"])
        return web.json_response({"result": [{"ip": ip, "region": "us"}
                                             for ip in account[:limit]], "pages": {}})

    async def add_ips(request: web.Request) -> web.Response:
        posts.append(1)
        new = [f"192.0.2.{len(account) + n}" for n in range(2)]
        account[:0] = reversed(new)
        return web.json_response({"ips": new, "padding": "x" * (2 * LIMIT)}, status=201)

    app = web.Application()
    app.router.add_get("/v3/partners/accounts/acct-1/ips", list_ips)
    app.router.add_post("/v3/partners/accounts/acct-1/ips", add_ips)
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.02, settle=0.01)
    async with serve_app(app) as base, connect(base, retry=policy) as sg:
        added = await sg.provisioning.add_ips("acct-1", count=2, region="us")
    assert added.reconciled
    assert sorted(added.ips) == sorted(account[:2])
    assert posts == [1], "not resent"


async def test_an_ambiguous_write_whose_reply_is_too_large_and_unchecked_is_ambiguous(
    connect: Callable[..., SendGridIPAM],
) -> None:
    """The same, when the check's reads are too large as well: never a plain success."""
    async def too_big(request: web.Request) -> web.Response:
        return web.json_response({"result": [], "pad": "x" * 2 * LIMIT},
                                 status=201 if request.method == "POST" else 200)

    app = web.Application()
    app.router.add_route("*", "/v3/send_ips/pools", too_big)
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.02, settle=0.01)
    async with serve_app(app) as base, connect(base, retry=policy) as sg:
        with pytest.raises(AmbiguousResultError):
            await sg.pools.create("p1")
