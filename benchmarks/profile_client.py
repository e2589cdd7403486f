"""Where a client's CPU goes per call: cProfile of one contender's calls over the loopback server.

A helper for tuning the request path, not a benchmark: profiling slows everything down, so
compare contenders with bench_client and use this to see which functions account for the
difference (``--contenders sendgrid_ipam,aiohttp`` profiles both, one after the other).

Run from the project root:
    .venv/bin/python -m benchmarks.profile_client --contenders sendgrid_ipam,aiohttp
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time
from collections.abc import Sequence
from typing import Final

from benchmarks._common import (
    BenchServer,
    loopback_only,
    parse_choices,
    run_calls,
    stop_on_sigterm,
)
from benchmarks._contenders import CONTENDERS, ClientConfig
from benchmarks.bench_client import make_call

MODULE: Final = "benchmarks.profile_client"
PROFILE_TIMEOUT: Final = 120.0
SORTS: Final = ("tottime", "cumulative")


async def profile(key: str, base_url: str, args: argparse.Namespace) -> pstats.Stats:
    factory = CONTENDERS[key].load()
    config = ClientConfig(base_url=base_url, max_connections=args.max_connections)
    async with factory(config) as calls:
        call = make_call(args.method, calls)
        async with asyncio.timeout(PROFILE_TIMEOUT):
            await run_calls(call, max(args.concurrency, 200), args.concurrency)  # warm up
            profiler = cProfile.Profile()
            started = time.perf_counter()
            profiler.enable()
            await run_calls(call, args.calls, args.concurrency)
            profiler.disable()
        seconds = time.perf_counter() - started
    print(f"\n## {CONTENDERS[key].label}: {args.calls:,} {args.method} calls, "
          f"{args.concurrency} in flight, {seconds / args.calls * 1e6:,.0f} µs/call under "
          "the profiler")
    return pstats.Stats(profiler)


def show(stats: pstats.Stats, sort: str, limit: int) -> None:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats(sort).print_stats(limit)
    print(out.getvalue().split("\n", 4)[-1].rstrip())


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--contenders", default="sendgrid_ipam,aiohttp")
    parser.add_argument("--method", choices=("get", "post"), default="get")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--max-connections", type=int, default=100)
    parser.add_argument("--sort", choices=SORTS, default="tottime")
    parser.add_argument("--limit", type=int, default=30, help="rows per profile")
    args = parser.parse_args(argv)
    try:
        keys = parse_choices(args.contenders, list(CONTENDERS))
    except ValueError as exc:
        parser.error(str(exc))
    loopback_only()
    stop_on_sigterm()
    with BenchServer() as server:
        for key in keys:
            stats = asyncio.run(profile(key, server.base_url, args))
            show(stats, args.sort, args.limit)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; the server process was stopped", file=sys.stderr)
        sys.exit(130)
