"""A minimal HTTP/1.1 keep-alive server that answers like SendGrid's /v3/send_ips/pools.

Run in its own process by ``benchmarks._common.BenchServer``; not meant for anything else.

* Binds 127.0.0.1 on a free port and prints ``PORT <n>`` on stdout once it listens.
* Hand-parsed request line, headers and Content-Length on an ``asyncio.Protocol``: a reply costs
  the server about a quarter of the CPU the fastest client spends on the call, so the client
  is what the benchmark measures.
* Canned bodies from the spec examples; every reply carries Content-Type and SendGrid's
  X-RateLimit-* headers, so a client that parses them pays for it.
* Stops by itself: on SIGTERM/SIGINT, when its stdin reaches EOF (the parent is gone), or after
  ``--max-lifetime`` seconds.

Routes:
  GET  /v3/send_ips/pools/{id}  -> 200 GetIpPool example
  GET  /v3/send_ips/ips?...     -> 200 a page of 100 IPs of the LIST workload (`_list.py`)
  POST /v3/send_ips/pools       -> 201 CreateIpPool example, echoing the requested name
  GET  /_bench/stats            -> 200 {"requests", "connections", "open", "cpu_s"}
                                   (not counted; cpu_s is the server's CPU time so far)
  anything else                 -> 404 with an IPAM error body
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from email.utils import formatdate
from typing import Final

from benchmarks._list import LIST_PATH, page_body

HOST: Final = "127.0.0.1"
POOL_PATH: Final = b"/v3/send_ips/pools"
POOL_ITEM_PREFIX: Final = b"/v3/send_ips/pools/"
STATS_PATH: Final = b"/_bench/stats"
LIST_PAGE_PATH: Final = LIST_PATH.encode()
MAX_HEAD: Final = 64 * 1024
MAX_BODY: Final = 1024 * 1024

GET_POOL_BODY: Final = json.dumps(
    {
        "name": "marketing_pool",
        "id": "12345",
        "ips_preview": ["127.0.0.1", "127.0.0.2"],
        "total_ip_count": 2,
    },
    separators=(",", ":"),
).encode()

REASONS: Final = {
    200: b"OK",
    201: b"Created",
    400: b"Bad Request",
    404: b"Not Found",
    411: b"Length Required",
    413: b"Payload Too Large",
}


def _error_body(message: str, field: str = "") -> bytes:
    return json.dumps({"errors": [{"field": field, "message": message}]}).encode()


class Stats:
    """Counters shared by all connections, plus the per-second header block."""

    def __init__(self) -> None:
        self.requests = 0
        self.connections = 0
        self.transports: set[asyncio.Transport] = set()
        self._second = -1
        self._headers = b""

    def common_headers(self) -> bytes:
        """Headers every reply carries; rebuilt once a second (Date and the rate-limit reset)."""
        now = int(time.time())
        if now != self._second:
            self._second = now
            self._headers = (
                b"Server: nginx\r\n"
                b"Date: " + formatdate(now, usegmt=True).encode() + b"\r\n"
                b"Content-Type: application/json\r\n"
                b"Strict-Transport-Security: max-age=600; includeSubDomains\r\n"
                b"X-RateLimit-Limit: 600\r\n"
                b"X-RateLimit-Remaining: 599\r\n"
                b"X-RateLimit-Reset: " + str(now + 60).encode() + b"\r\n"
            )
        return self._headers


def _create_pool_body(body: bytes) -> tuple[int, bytes]:
    try:
        request = json.loads(body)
    except ValueError:
        return 400, _error_body("invalid JSON")
    if not isinstance(request, dict) or not isinstance(request.get("name"), str):
        return 400, _error_body("name is required", "name")
    ips = request.get("ips", [])
    reply = {"name": request["name"], "id": "12345", "ips": ips}
    return 201, json.dumps(reply, separators=(",", ":")).encode()


def route(stats: Stats, method: bytes, target: bytes, body: bytes) -> tuple[int, bytes]:
    """Status and body for one request."""
    path, _, query = target.partition(b"?")
    if method == b"GET" and path.startswith(POOL_ITEM_PREFIX) and len(path) > len(
        POOL_ITEM_PREFIX
    ):
        stats.requests += 1
        return 200, GET_POOL_BODY
    if method == b"GET" and path == LIST_PAGE_PATH:
        page = page_body(query)
        if page is not None:
            stats.requests += 1
            return 200, page
    if method == b"POST" and path == POOL_PATH:
        stats.requests += 1
        return _create_pool_body(body)
    if method == b"GET" and path == STATS_PATH:
        counters = {
            "requests": stats.requests,
            "connections": stats.connections,
            "open": len(stats.transports),
            "cpu_s": time.process_time(),
        }
        return 200, json.dumps(counters).encode()
    stats.requests += 1
    return 404, _error_body("resource not found")


class HTTPServerProtocol(asyncio.Protocol):
    """One keep-alive connection: parse requests as they arrive, answer each in order."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._stats.connections += 1
        self._stats.transports.add(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._stats.transports.discard(self._transport)
        self._transport = None

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while self._transport is not None and self._handle_one():
            pass

    def _handle_one(self) -> bool:
        """Answer the request at the head of the buffer; False if it is not complete yet."""
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            if len(buffer) > MAX_HEAD:
                self._reply(413, _error_body("headers too large"), close=True)
            return False
        lines = bytes(buffer[:end]).split(b"\r\n")
        try:
            method, target, version = lines[0].split(b" ", 2)
        except ValueError:
            self._reply(400, _error_body("bad request line"), close=True)
            return False
        length = 0
        close = version == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection":
                close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                self._reply(411, _error_body("send a Content-Length"), close=True)
                return False
        if length > MAX_BODY:
            self._reply(413, _error_body("body too large"), close=True)
            return False
        total = end + 4 + length
        if len(buffer) < total:
            return False
        body = bytes(buffer[end + 4 : total])
        del buffer[:total]
        status, payload = route(self._stats, method, target, body)
        self._reply(status, payload, close=close)
        return not close

    def _reply(self, status: int, payload: bytes, *, close: bool) -> None:
        transport = self._transport
        if transport is None:
            return
        transport.write(
            b"HTTP/1.1 %d %s\r\n%sContent-Length: %d\r\nConnection: %s\r\n\r\n%s"
            % (
                status,
                REASONS.get(status, b"Error"),
                self._stats.common_headers(),
                len(payload),
                b"close" if close else b"keep-alive",
                payload,
            )
        )
        if close:
            self._stats.transports.discard(transport)
            transport.close()
            self._transport = None


class _StdinWatcher(asyncio.Protocol):
    """Sets ``gone`` when the parent's end of our stdin closes (the parent exited)."""

    def __init__(self, gone: asyncio.Event) -> None:
        self._gone = gone

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone.set()

    def eof_received(self) -> bool | None:
        self._gone.set()
        return None


async def serve(port: int, max_lifetime: float, watch_stdin: bool) -> None:
    """Listen until a signal, stdin EOF or the lifetime cap, whichever comes first."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if watch_stdin:
        await loop.connect_read_pipe(lambda: _StdinWatcher(stop), sys.stdin)
    stats = Stats()
    server = await loop.create_server(
        lambda: HTTPServerProtocol(stats), HOST, port, backlog=4096, reuse_address=True
    )
    bound_port = server.sockets[0].getsockname()[1]
    print(f"PORT {bound_port}", flush=True)
    try:
        async with asyncio.timeout(max_lifetime):
            await stop.wait()
    except TimeoutError:
        print(f"bench server: max lifetime {max_lifetime:.0f}s reached, stopping",
              file=sys.stderr)
    finally:
        server.close()
        for transport in list(stats.transports):
            transport.abort()
        async with asyncio.timeout(5):
            await server.wait_closed()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--max-lifetime", type=float, default=900.0, help="seconds")
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    parser.add_argument("--no-stdin-watch", action="store_true",
                        help="do not stop when stdin closes (for running it by hand)")
    args = parser.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    asyncio.run(serve(args.port, args.max_lifetime, watch_stdin=not args.no_stdin_watch))


if __name__ == "__main__":
    main()
