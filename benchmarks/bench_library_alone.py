"""What the library alone costs per call, in instructions: no socket, no event loop turns.

A client is opened as usual, then its aiohttp session is swapped for an in-process fake
that answers at once with the reply the benchmark server sends (same headers, same body);
each call's coroutine is driven by hand (one ``send(None)``: nothing ever suspends). Run
under callgrind twice, with few and with many calls, the difference per call is what
``sendgrid_ipam`` does around aiohttp, and with ``PYTHONHASHSEED=0`` it repeats to the
instruction, where ``bench_instructions`` moves by a few percent with how replies batch up.
It does not count aiohttp's own work, so it guides changes; ``bench_instructions`` judges.

    .venv/bin/python -m benchmarks.bench_library_alone              # GET and POST, ~1 min
    .venv/bin/python -m benchmarks.bench_library_alone --methods post
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Coroutine, Sequence
from typing import Any

from benchmarks._common import loopback_only
from benchmarks._contenders import POOL_ID, POOL_IPS
from benchmarks._server import GET_POOL_BODY

COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
METHODS = ("get", "post")
CREATE_BODY = b'{"name":"pool_000001","id":"12345","ips":["127.0.0.1"]}'


class _Reply:
    """The fake response: what `Attempt.send` reads of aiohttp's."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, body: bytes) -> None:
        from multidict import CIMultiDict, CIMultiDictProxy

        self.status = status
        self.body = body
        self.headers = CIMultiDictProxy(CIMultiDict({
            "Server": "nginx", "Date": "Sat, 28 Nov 2026 04:00:00 GMT",
            "Content-Type": "application/json", "Content-Length": str(len(body)),
            "Strict-Transport-Security": "max-age=600; includeSubDomains",
            "X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "599",
            "X-RateLimit-Reset": "1795838460",
        }))

    async def read(self) -> bytes:
        return self.body

    async def __aenter__(self) -> _Reply:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


class _Session:
    """Answers every request at once: GET the pool, POST the created pool."""

    closed = False

    def __init__(self) -> None:
        self.replies = {"GET": _Reply(200, GET_POOL_BODY), "POST": _Reply(201, CREATE_BODY)}

    def request(self, method: str, url: object, **kwargs: object) -> _Reply:
        return self.replies[method]


def _drive(coroutine: Coroutine[Any, Any, Any]) -> Any:
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("a call suspended: the fake session should never let it")


async def _child(method: str, count: int) -> None:
    from sendgrid_ipam import SendGridIPAM

    async with SendGridIPAM(api_key="SG.bench", base_url="http://127.0.0.1:9") as sg:
        engine = sg._engine  # type: ignore[attr-defined]
        real, engine.session = engine.session, _Session()
        try:
            ips = list(POOL_IPS)
            for number in range(count):
                if method == "get":
                    pool = _drive(sg.pools.get(POOL_ID))
                else:
                    pool = _drive(sg.pools.create(f"pool_{number:06d}", ips=ips))
                if not pool.id:
                    raise RuntimeError(f"{method}: an empty reply")
        finally:
            engine.session = real


def instructions(method: str, count: int) -> int:
    """Instructions callgrind counts for a child process that makes ``count`` calls."""
    command = [
        "valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
        sys.executable, "-m", "benchmarks.bench_library_alone", "--child", method, str(count),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True,
                          env=env)
    found = COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"no callgrind total for {method}:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=2, metavar=("METHOD", "CALLS"), help=argparse.SUPPRESS)
    parser.add_argument("--few", type=int, default=200, help="calls in the short run")
    parser.add_argument("--many", type=int, default=1200, help="calls in the long run")
    parser.add_argument("--methods", default=",".join(METHODS), help="of get, post")
    options = parser.parse_args(argv)
    loopback_only()
    if options.child:
        method, count = options.child
        asyncio.run(_child(method, int(count)))
        return
    if shutil.which("valgrind") is None:
        parser.error("valgrind is not installed (apt-get install valgrind)")
    methods = options.methods.split(",")
    if unknown := set(methods) - set(METHODS):
        parser.error(f"unknown methods: {', '.join(sorted(unknown))}")
    for method in methods:
        many = instructions(method, options.many)
        few = instructions(method, options.few)
        per_call = (many - few) / (options.many - options.few)
        print(f"{method.upper()} library alone: {per_call:,.0f} instructions per call")


if __name__ == "__main__":
    main()
