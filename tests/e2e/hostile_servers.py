"""Hostile servers on 127.0.0.1 for the hardening tests: raw bytes over TCP, and small
aiohttp.web apps for replies the fake SendGrid cannot give (huge, endless, compressed)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import attrs
from aiohttp import web
from multidict import CIMultiDict


@attrs.frozen
class RawRequest:
    """One request as the server read it off the wire."""

    method: str
    path: str
    headers: CIMultiDict[str]
    body: bytes


Responder = Callable[[RawRequest, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """Reads each request and hands it to ``respond``, which writes whatever bytes it likes.

    The connection is closed once ``respond`` returns (replies should say
    ``Connection: close``). ``respond`` may also never return: the server cancels it on close.
    """

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.requests: list[RawRequest] = []
        self.arrived = asyncio.Event()  # set once a request has been read
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            request = await _read_request(reader)
            if request is not None:
                self.requests.append(request)
                self.arrived.set()
                await self.respond(request, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> RawRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    first, *lines = head.decode("latin-1").split("\r\n")
    method, target, _ = first.split(" ", 2)
    headers: CIMultiDict[str] = CIMultiDict(
        line.split(":", 1) for line in lines if line)  # type: ignore[misc]
    headers = CIMultiDict((name, value.strip()) for name, value in headers.items())
    length = int(headers.get("Content-Length", "0"))
    body = await reader.readexactly(length) if length else b""
    return RawRequest(method, target, headers, body)


def reply(status_line: bytes, headers: dict[str, str], body: bytes = b"") -> bytes:
    """A whole reply as bytes, with Content-Length and Connection: close added."""
    head = [status_line, f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    head += [f"{name}: {value}".encode() for name, value in headers.items()]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def never(_: RawRequest, __: asyncio.StreamWriter) -> None:
    """Reads the request and never answers."""
    await asyncio.Event().wait()


def reset(writer: asyncio.StreamWriter) -> None:
    """Close the connection with a TCP reset (RST), not an orderly FIN."""
    sock: socket.socket = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Run ``app`` on 127.0.0.1; yields its base URL."""
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()
