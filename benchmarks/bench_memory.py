"""Peak memory of 10,000 gathered calls: sendgrid_ipam against raw aiohttp.

Each measurement runs in a fresh child process (``--child``), so imports and the peak are
measured independently of the parent and of each other. The child reads its resident set size
at start, after importing the client library, and its high-water mark after
``asyncio.gather`` of N ``pools.get`` coroutines at once (all replies kept until the peak is
read) against the separate-process loopback server.

Run from the project root:  .venv/bin/python -m benchmarks.bench_memory
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final

from benchmarks._common import (
    ROOT,
    BenchServer,
    Ratio,
    loopback_only,
    markdown_table,
    median,
    parse_choices,
    print_header,
    stop_on_sigterm,
    text_table,
    write_json,
)
from benchmarks._contenders import (
    BASELINE,
    CONTENDERS,
    EXPECTED_GET_NAME,
    POOL_ID,
    ClientConfig,
)

MODULE: Final = "benchmarks.bench_memory"
MEMORY_CONTENDERS: Final = ("sendgrid_ipam", "aiohttp")
CHILD_TIMEOUT: Final = 180.0
CALLS_TIMEOUT: Final = 150.0
MIB: Final = 1024 * 1024


def rss_now_and_peak() -> tuple[int, int]:
    """(current RSS, peak RSS) of this process in bytes.

    /proc's VmHWM is this address space's own high-water mark. ``ru_maxrss`` is only the
    fallback: Linux carries it across execve, so a child spawned with vfork/posix_spawn can
    report the parent's peak instead of its own.
    """
    values: dict[str, int] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                values[name] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    if len(values) == 2:
        return values["VmRSS"], values["VmHWM"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return peak, peak


# --------------------------------------------------------------------------------------------
# The child


@dataclass(frozen=True, slots=True)
class ChildResult:
    contender: str
    calls: int
    rss_start: int
    rss_imported: int
    peak: int
    rss_end: int
    seconds: float

    @property
    def calls_cost(self) -> int:
        """What the calls themselves cost: the peak over the RSS after imports."""
        return self.peak - self.rss_imported


async def gather_calls(key: str, base_url: str, calls: int, max_connections: int) -> int:
    """Gather ``calls`` GETs at once on one client; return the peak RSS while replies live."""
    factory = CONTENDERS[key].load()
    async with factory(ClientConfig(base_url=base_url, max_connections=max_connections)) as api:
        async with asyncio.timeout(CALLS_TIMEOUT):
            replies = await asyncio.gather(*(api.get(POOL_ID) for _ in range(calls)))
        peak = rss_now_and_peak()[1]
        names = {api.name_of(reply) for reply in replies}
    if len(replies) != calls or names != {EXPECTED_GET_NAME}:
        raise RuntimeError(f"{key}: {len(replies)} replies, names {names}")
    return peak


def child(key: str, port: int, calls: int, max_connections: int) -> None:
    rss_start = rss_now_and_peak()[0]
    CONTENDERS[key].load()  # the imports, measured on their own
    rss_imported = rss_now_and_peak()[0]
    started = time.perf_counter()
    peak = asyncio.run(gather_calls(key, f"http://127.0.0.1:{port}", calls, max_connections))
    result = ChildResult(key, calls, rss_start, rss_imported, peak, rss_now_and_peak()[0],
                         time.perf_counter() - started)
    print(json.dumps(asdict(result)), flush=True)


# --------------------------------------------------------------------------------------------
# The parent


def run_child(key: str, port: int, calls: int, max_connections: int) -> ChildResult:
    command = [sys.executable, "-m", MODULE, "--child", key, "--port", str(port),
               "--calls", str(calls), "--max-connections", str(max_connections)]
    completed = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                               timeout=CHILD_TIMEOUT, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"{key} child failed ({completed.returncode}):\n{completed.stderr}")
    if completed.stderr.strip():  # warnings are not ignored: show them
        print(f"{key} child stderr:\n{completed.stderr}", file=sys.stderr)
    return ChildResult(**json.loads(completed.stdout.strip().splitlines()[-1]))


@dataclass(frozen=True, slots=True)
class MemorySummary:
    contender: str
    rss_start: float
    rss_imported: float
    peak: float
    calls_cost: float
    seconds: float


def summarise(results: Sequence[ChildResult], keys: Sequence[str]) -> list[MemorySummary]:
    summaries = []
    for key in keys:
        mine = [r for r in results if r.contender == key]
        summaries.append(MemorySummary(
            contender=key,
            rss_start=median([r.rss_start for r in mine]),
            rss_imported=median([r.rss_imported for r in mine]),
            peak=median([r.peak for r in mine]),
            calls_cost=median([r.calls_cost for r in mine]),
            seconds=median([r.seconds for r in mine]),
        ))
    return summaries


HEADERS: Final = ("client", "RSS at start", "after imports", "peak", "peak - after imports",
                  "peak vs raw aiohttp", "calls' cost vs raw aiohttp", "time")


def rows(summaries: Sequence[MemorySummary]) -> list[list[str]]:
    base = next((s for s in summaries if s.contender == BASELINE), None)

    def mib(value: float) -> str:
        return f"{value / MIB:.1f} MiB"

    return [
        [CONTENDERS[s.contender].label, mib(s.rss_start), mib(s.rss_imported), mib(s.peak),
         mib(s.calls_cost), str(Ratio.of(s.peak, base.peak if base else 0)),
         str(Ratio.of(s.calls_cost, base.calls_cost if base else 0)), f"{s.seconds:.2f} s"]
        for s in summaries
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=10_000, help="calls gathered at once")
    parser.add_argument("--repeats", type=int, default=3,
                        help="fresh children per client (alternating); medians shown")
    parser.add_argument("--contenders", default=",".join(MEMORY_CONTENDERS))
    parser.add_argument("--max-connections", type=int, default=100)
    parser.add_argument("--json", dest="json_path", metavar="PATH")
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--child", choices=MEMORY_CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.calls, args.repeats, args.max_connections) < 1:
        parser.error("--calls, --repeats and --max-connections must be at least 1")
    try:
        args.contenders = parse_choices(args.contenders, MEMORY_CONTENDERS)
    except ValueError as exc:
        parser.error(str(exc))
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    loopback_only()
    stop_on_sigterm()
    if args.child:
        child(args.child, args.port, args.calls, args.max_connections)
        return
    started = time.perf_counter()
    header = print_header("sendgrid-ipam memory benchmark", MODULE, {
        "settings": {"calls": args.calls, "repeats": args.repeats,
                     "contenders": args.contenders, "max_connections": args.max_connections},
    })
    results: list[ChildResult] = []
    with BenchServer() as server:
        for repeat in range(args.repeats):
            for key in args.contenders:
                result = run_child(key, server.port, args.calls, args.max_connections)
                print(f"  repeat {repeat}: {CONTENDERS[key].label} peak "
                      f"{result.peak / MIB:.1f} MiB", file=sys.stderr, flush=True)
                results.append(result)
    summaries = summarise(results, args.contenders)
    table = markdown_table if args.markdown else text_table
    print(table(HEADERS, rows(summaries)))
    print(f"\n{args.calls:,} GET calls gathered at once on one client limited to "
          f"{args.max_connections} connections, all replies kept until the peak is read; "
          f"each figure the median of {args.repeats} fresh child processes (RSS from "
          "/proc/self/status: VmRSS, peak VmHWM). 'RSS at start' is the interpreter and the "
          "harness (stdlib only).")
    elapsed = time.perf_counter() - started
    print(f"\ntotal time {elapsed:.1f}s")
    write_json(args.json_path, {**header, "elapsed_s": round(elapsed, 2),
                                "runs": [asdict(r) for r in results],
                                "summary": [asdict(s) for s in summaries]})


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; the server process was stopped", file=sys.stderr)
        sys.exit(130)
