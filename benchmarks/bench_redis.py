"""What the Redis coordinator costs per call, against the in-process `MemoryCoordinator`.

The same calls as ``bench_client`` (``pools.get``, a GET; ``pools.create``, a POST that holds
a write lease on the pool's name) through `SendGridIPAM` against the loopback bench server,
once with the default coordinator and once with a `RedisCoordinator` on a local
``redis-server`` (started here on a free loopback port with ``--save ""``, stopped by its PID
at the end; or the one given with ``--redis-url``). Per call: wall time, this process's CPU,
Redis's own CPU, and Redis round trips (scripts run: every request the coordinator makes is
one script, counted from the server's ``INFO commandstats`` before and after), of which the
call awaited (the rest, a lease's release that no later call's script carried within
``release_linger``, runs in the coordinator's background tasks: counted in this process by
wrapping the coordinator's ``evalsha``), at 1 call in flight (latency) and at 64
(throughput). The releases of the warm-up are sent before counting starts, and those of the
last calls are counted.

    .venv/bin/python -m benchmarks.bench_redis    # ~15 s; needs redis-server and the redis extra
    .venv/bin/python -m benchmarks.bench_redis --calls 400 --rounds 1 --concurrency 1
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from benchmarks._common import (
    BenchServer,
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


class _Awaited:
    """Counts the scripts a coordinator runs in its callers' tasks (not in its own)."""

    def __init__(self, coordinator: Any) -> None:
        self.count = 0
        client = coordinator.client
        evalsha = client.evalsha  # what each of its scripts calls (not its pipelines)

        def counted(*args: Any, **kwargs: Any) -> Any:
            current = asyncio.current_task()
            if current not in coordinator._tasks and current not in coordinator._renewers:
                self.count += 1
            return evalsha(*args, **kwargs)

        client.evalsha = counted


async def _measure(
    kind: str, method: str, concurrency: int, calls: int, base_url: str, redis_url: str,
    linger: float | None = None,
) -> dict[str, float]:
    from sendgrid_ipam import SendGridIPAM
    from sendgrid_ipam.redis import RedisCoordinator

    options = {} if linger is None else {"release_linger": linger}
    coordinator = (RedisCoordinator.from_url(redis_url, namespace=f"bench-{uuid.uuid4().hex}",
                                             **options)
                   if kind == "redis" else None)
    awaited = None if coordinator is None else _Awaited(coordinator)
    run = uuid.uuid4().hex[:6]
    try:
        async with SendGridIPAM(KEY, base_url=base_url, coordinator=coordinator) as sg:
            call: Callable[[int], Awaitable[Any]]
            if method == "get":
                call = lambda _n: sg.pools.get(POOL_ID)  # noqa: E731
            else:
                call = lambda n: sg.pools.create(f"{run}{pool_name(n)}", ips=list(POOL_IPS))  # noqa: E731
            await run_calls(call, min(50, calls), concurrency)  # warm-up (and scripts loaded)
            if coordinator is not None:  # the warm-up's releases are not the calls'
                coordinator._hurry()
                await asyncio.gather(*coordinator._tasks)
            commands, redis_cpu = await _redis_counters(redis_url)
            waited_for = 0 if awaited is None else awaited.count
            cpu, wall = time.process_time(), time.perf_counter()
            await run_calls(call, calls, concurrency)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            waited_for = (0 if awaited is None else awaited.count) - waited_for
            if coordinator is not None:  # its releases still under way count too
                coordinator._hurry()
                await asyncio.gather(*coordinator._tasks)
            commands_after, redis_cpu_after = await _redis_counters(redis_url)
    finally:
        if coordinator is not None:
            await coordinator.aclose()
    return {
        "wall_us": wall / calls * 1e6,
        "cpu_us": cpu / calls * 1e6,
        "redis_cpu_us": (redis_cpu_after - redis_cpu) / calls * 1e6,
        "round_trips": (commands_after - commands) / calls,
        "awaited": waited_for / calls,
        "calls_per_s": calls / wall,
    }


def _compare(method: str, concurrency: int, options: argparse.Namespace, base_url: str,
             redis_url: str) -> list[list[str]]:
    """The table's rows for one call and concurrency: in-process, then Redis."""
    figures = {}
    for kind in ("memory", "redis"):
        rounds = [asyncio.run(_measure(kind, method, concurrency, options.calls, base_url,
                                       redis_url, options.release_linger))
                  for _ in range(options.rounds)]
        figures[kind] = {k: median([r[k] for r in rounds]) for k in rounds[0]}
    base = figures["memory"]
    return [[
        "GET pools.get" if method == "get" else "POST pools.create",
        str(concurrency), kind, f"{f['wall_us']:.0f}", f"{f['cpu_us']:.0f}",
        f"{f['redis_cpu_us']:.0f}", f"{f['round_trips']:.2f}", f"{f['awaited']:.2f}",
        f"{f['calls_per_s']:.0f}",
        f"{f['cpu_us'] / base['cpu_us']:.2f}x",
    ] for kind, f in figures.items()]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (the median is shown)")
    parser.add_argument("--concurrency", type=parse_int_list, default=[1, 64])
    parser.add_argument("--redis-url", help="an existing Redis (default: start redis-server)")
    parser.add_argument("--release-linger", type=float,
                        help="the coordinator's release_linger (default: its default)")
    parser.add_argument("--markdown", action="store_true")
    options = parser.parse_args(argv)
    loopback_only()
    print_header("Redis coordinator vs in-process, per call", MODULE,
                 {"calls per round": options.calls, "rounds": options.rounds})
    redis = None
    if not options.redis_url:
        from sendgrid_ipam.redis._local import LocalRedis

        try:
            redis = LocalRedis()
        except FileNotFoundError as exc:
            parser.error(f"{exc}, or pass --redis-url")
    try:
        if redis is not None:
            redis.start()
        url = options.redis_url or (redis.url if redis else "")
        with BenchServer() as server:
            rows = [row for method in ("get", "post") for concurrency in options.concurrency
                    for row in _compare(method, concurrency, options, server.base_url, url)]
    finally:
        if redis is not None:
            redis.stop()
    headers = ["call", "in flight", "coordinator", "wall µs/call", "client CPU µs/call",
               "Redis CPU µs/call", "Redis round trips/call", "of which awaited", "calls/s",
               "client CPU vs memory"]
    print(markdown_table(headers, rows) if options.markdown else text_table(headers, rows))


if __name__ == "__main__":
    main()
