"""What the Redis coordinator costs per call, against the in-process `MemoryCoordinator`.

The same calls as ``bench_client`` (``pools.get``, a GET; ``pools.create``, a POST that holds
a write lease on the pool's name) through `SendGridIPAM` against the loopback bench server,
once with the default coordinator and once with a `RedisCoordinator` on a local
``redis-server`` (started here on a free loopback port with ``--save ""``, stopped by its PID
at the end; or the one given with ``--redis-url``). Per call: wall time, this process's CPU,
Redis's own CPU, and Redis round trips (scripts run: every request the coordinator makes is
one script, counted from the server's ``INFO commandstats`` before and after),
at 1 call in flight (latency) and at 64 (throughput).

    .venv/bin/python -m benchmarks.bench_redis              # ~30 s; needs redis-server and the redis extra
    .venv/bin/python -m benchmarks.bench_redis --calls 400 --rounds 1 --concurrency 1
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from benchmarks._common import (
    BenchServer,
    ChildProcess,
    loopback_only,
    markdown_table,
    median,
    parse_int_list,
    print_header,
    run_calls,
    text_table,
)
from benchmarks._contenders import POOL_ID, POOL_IPS
from benchmarks.bench_client import pool_name

MODULE: Final = "benchmarks.bench_redis"
KEY: Final = "SG.bench-redis"
READY_WITHIN: Final = 10.0


class RedisProcess(ChildProcess):
    """``redis-server`` on a free loopback port, no persistence; stopped by its PID."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server), "
                             "or pass --redis-url")
        self._process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )

    def _wait_ready(self) -> None:
        until = time.monotonic() + READY_WITHIN
        while time.monotonic() < until:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(5)


async def _redis_counters(url: str) -> tuple[int, float]:
    """Requests Redis has answered (scripts, not the commands inside them) and the CPU
    seconds it has used."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
        cpu = await client.info("cpu")
    finally:
        await client.aclose()
    calls = sum(int(stats[name]["calls"]) for name in ("cmdstat_evalsha", "cmdstat_eval")
                if name in stats)
    return calls, float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"])


async def _measure(
    kind: str, method: str, concurrency: int, calls: int, base_url: str, redis_url: str
) -> dict[str, float]:
    from sendgrid_ipam import SendGridIPAM
    from sendgrid_ipam.redis import RedisCoordinator

    coordinator = (RedisCoordinator.from_url(redis_url, namespace=f"bench-{uuid.uuid4().hex}")
                   if kind == "redis" else None)
    run = uuid.uuid4().hex[:6]
    try:
        async with SendGridIPAM(KEY, base_url=base_url, coordinator=coordinator) as sg:
            call: Callable[[int], Awaitable[Any]]
            if method == "get":
                call = lambda _n: sg.pools.get(POOL_ID)  # noqa: E731
            else:
                call = lambda n: sg.pools.create(f"{run}{pool_name(n)}", ips=list(POOL_IPS))  # noqa: E731
            await run_calls(call, min(50, calls), concurrency)  # warm-up (and scripts loaded)
            commands, redis_cpu = await _redis_counters(redis_url)
            cpu, wall = time.process_time(), time.perf_counter()
            await run_calls(call, calls, concurrency)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            commands_after, redis_cpu_after = await _redis_counters(redis_url)
    finally:
        if coordinator is not None:
            await coordinator.aclose()
    return {
        "wall_us": wall / calls * 1e6,
        "cpu_us": cpu / calls * 1e6,
        "redis_cpu_us": (redis_cpu_after - redis_cpu) / calls * 1e6,
        "round_trips": (commands_after - commands) / calls,
        "calls_per_s": calls / wall,
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (the median is shown)")
    parser.add_argument("--concurrency", type=parse_int_list, default=[1, 64])
    parser.add_argument("--redis-url", help="an existing Redis (default: start redis-server)")
    parser.add_argument("--markdown", action="store_true")
    options = parser.parse_args(argv)
    loopback_only()
    header = print_header("Redis coordinator vs in-process, per call", MODULE,
                          {"calls per round": options.calls, "rounds": options.rounds})
    del header
    rows = []
    redis = None if options.redis_url else RedisProcess()
    with BenchServer() as server:
        if redis is not None:
            redis.__enter__()
        try:
            url = options.redis_url or (redis.url if redis else "")
            for method in ("get", "post"):
                for concurrency in options.concurrency:
                    figures = {}
                    for kind in ("memory", "redis"):
                        rounds = [asyncio.run(_measure(kind, method, concurrency, options.calls,
                                                       server.base_url, url))
                                  for _ in range(options.rounds)]
                        figures[kind] = {k: median([r[k] for r in rounds]) for k in rounds[0]}
                    base = figures["memory"]
                    for kind, f in figures.items():
                        rows.append([
                            "GET pools.get" if method == "get" else "POST pools.create",
                            str(concurrency), kind, f"{f['wall_us']:.0f}",
                            f"{f['cpu_us']:.0f}", f"{f['redis_cpu_us']:.0f}",
                            f"{f['round_trips']:.2f}", f"{f['calls_per_s']:.0f}",
                            f"{f['cpu_us'] / base['cpu_us']:.2f}x",
                        ])
        finally:
            if redis is not None:
                redis.stop()
    headers = ["call", "in flight", "coordinator", "wall µs/call", "client CPU µs/call",
               "Redis CPU µs/call", "Redis round trips/call", "calls/s", "client CPU vs memory"]
    print(markdown_table(headers, rows) if options.markdown else text_table(headers, rows))


if __name__ == "__main__":
    main()
