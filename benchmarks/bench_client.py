"""Throughput and client CPU per call: sendgrid_ipam against raw aiohttp, httpx and the official
library, over a separate-process loopback server, at several concurrencies, GET and POST.

Run from the project root:  .venv/bin/python -m benchmarks.bench_client --quick
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import math
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from benchmarks._common import (
    BenchServer,
    Ratio,
    RunResult,
    loopback_only,
    markdown_table,
    median,
    parse_choices,
    parse_int_list,
    pinned_to,
    print_header,
    run_calls,
    server_stats,
    stop_on_sigterm,
    text_table,
    write_json,
)
from benchmarks._contenders import (
    BASELINE,
    CONTENDERS,
    EXPECTED_GET_NAME,
    POOL_ID,
    Calls,
    ClientConfig,
    SessionFactory,
)

MODULE: Final = "benchmarks.bench_client"
METHODS: Final = ("get", "post")
METHOD_LABELS: Final = {"get": "GET pools.get", "post": "POST pools.create"}
DEFAULTS: Final = {"calls": 5000, "rounds": 5, "max_round_seconds": 5.0}
QUICK: Final = {"calls": 500, "rounds": 2, "max_round_seconds": 0.25}
# Calls still in flight this long after the start of a round are cancelled ("cut"): a safety
# valve for a client that stalls, not meant to trigger (httpx needs ~4 s for 256 in flight).
ABANDON_FACTOR: Final = 10.0
ABANDON_MIN_SECONDS: Final = 10.0
WARMUP_CONCURRENCY: Final = 16
ROUND_TIMEOUT: Final = 300.0  # last-resort bound on one round
SERVER_MIN_LIFETIME: Final = 900.0
CLIENT_CPU: Final = 0
SERVER_CPU: Final = 1


@dataclass(frozen=True, slots=True)
class Options:
    methods: list[str]
    concurrency: list[int]
    contenders: list[str]
    contenders_explicit: bool
    calls: int
    rounds: int
    max_round_seconds: float
    max_connections: int
    pin: bool
    markdown: bool
    json_path: str | None


@dataclass(frozen=True, slots=True)
class RoundSpec:
    key: str
    method: str
    concurrency: int
    round_no: int  # -1 for the warm-up


@dataclass(frozen=True, slots=True)
class Sample:
    contender: str
    method: str
    concurrency: int
    round: int
    calls: int
    wall_s: float
    cpu_s: float
    server_cpu_s: float
    connections_opened: int
    abandoned: int

    @property
    def rps(self) -> float:
        return self.calls / self.wall_s

    @property
    def cpu_us(self) -> float:
        return self.cpu_s / self.calls * 1e6 if self.calls else math.inf

    @property
    def client_busy(self) -> float:
        return self.cpu_s / self.wall_s

    @property
    def server_busy(self) -> float:
        return self.server_cpu_s / self.wall_s


def abandon_after(options: Options) -> float:
    return max(options.max_round_seconds * ABANDON_FACTOR, ABANDON_MIN_SECONDS)


def server_lifetime(options: Options) -> float:
    """A generous upper bound on the run's length: the server's last-resort lifetime."""
    rounds = len(options.methods) * len(options.concurrency) * (options.rounds + 1)
    per_round = 2 * options.max_round_seconds + abandon_after(options) / 4 + 2
    return max(SERVER_MIN_LIFETIME, rounds * len(options.contenders) * per_round)


def pool_name(number: int) -> str:
    return f"pool_{number:06d}"


def make_call(method: str, calls: Calls) -> Callable[[int], Awaitable[object]]:
    """Call number -> one API call of the given method."""
    if method == "get":
        get = calls.get
        return lambda _number: get(POOL_ID)
    create = calls.create
    return lambda number: create(pool_name(number))


async def preflight(key: str, factory: SessionFactory, config: ClientConfig, method: str) -> None:
    """One call, checked, so a contender that answers wrongly fails loudly before timing."""
    async with factory(config) as calls:
        reply = await make_call(method, calls)(0)
        name = calls.name_of(reply)
    expected = EXPECTED_GET_NAME if method == "get" else pool_name(0)
    if name != expected:
        raise RuntimeError(f"{key} {method}: reply name {name!r}, expected {expected!r}")


class Runner:
    """Runs the checks, warm-ups and timed rounds of every contender against the server."""

    def __init__(self, options: Options, server: BenchServer) -> None:
        self._options = options
        self._server = server
        self._config = ClientConfig(base_url=server.base_url,
                                    max_connections=options.max_connections)

    async def _run(self, call: Callable[[int], Awaitable[object]], count: int,
                   concurrency: int) -> RunResult:
        limit = self._options.max_round_seconds
        async with asyncio.timeout(ROUND_TIMEOUT):
            return await run_calls(call, count, concurrency, stop_after=limit,
                                   abandon_after=abandon_after(self._options))

    async def measure(self, factory: SessionFactory, spec: RoundSpec) -> Sample:
        """One round on a fresh client: prime its connections untimed, then time the calls."""
        options, server = self._options, self._server
        before = await server_stats(server.port)
        async with factory(self._config) as calls:
            call = make_call(spec.method, calls)
            priming = max(4, min(spec.concurrency, options.max_connections))
            await self._run(call, priming, spec.concurrency)
            gc.collect()
            server0 = await server_stats(server.port)
            cpu0 = time.process_time()
            wall0 = time.perf_counter()
            result = await self._run(call, options.calls, spec.concurrency)
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0
            server_cpu = (await server_stats(server.port))["cpu_s"] - server0["cpu_s"]
        after = await server_stats(server.port)
        opened = int(after["connections"] - before["connections"]) - 3  # our 3 stats calls
        return Sample(spec.key, spec.method, spec.concurrency, spec.round_no, result.completed,
                      wall, cpu, server_cpu, opened, result.abandoned)

    async def run(self, factories: dict[str, SessionFactory]) -> list[Sample]:
        samples: list[Sample] = []
        for method in self._options.methods:
            for key, factory in factories.items():  # check, then warm up (untimed)
                await preflight(key, factory, self._config, method)
                await self.measure(factory, RoundSpec(key, method, WARMUP_CONCURRENCY, -1))
            for concurrency in self._options.concurrency:
                for round_no in range(self._options.rounds):
                    batch = [
                        await self.measure(factory,
                                           RoundSpec(key, method, concurrency, round_no))
                        for key, factory in factories.items()
                    ]
                    progress(batch)
                    samples += batch
        return samples


def load_contenders(options: Options) -> dict[str, SessionFactory]:
    loaded: dict[str, SessionFactory] = {}
    for key in options.contenders:
        try:
            loaded[key] = CONTENDERS[key].load()
        except (ImportError, AttributeError) as exc:
            if options.contenders_explicit:
                raise SystemExit(f"contender {key} is not available: {exc}") from exc
            print(f"skipping {key}: not available yet ({type(exc).__name__}: {exc})",
                  file=sys.stderr)
    if BASELINE not in loaded:
        print(f"note: {BASELINE} not selected; ratios will read n/a", file=sys.stderr)
    return loaded


def progress(samples: Sequence[Sample]) -> None:
    first = samples[0]
    parts = [f"{CONTENDERS[s.contender].label} {s.rps:,.0f}/s {s.cpu_us:,.0f}us" for s in samples]
    print(f"  {first.method} c={first.concurrency} round {first.round}: " + " | ".join(parts),
          file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------
# Reporting


@dataclass(frozen=True, slots=True)
class Summary:
    contender: str
    method: str
    concurrency: int
    rounds: int
    calls: float
    rps: float
    rps_min: float
    rps_max: float
    cpu_us: float
    client_busy: float
    server_busy: float
    connections: float
    abandoned: float
    ratio: Ratio
    cpu_ratio: Ratio  # raw aiohttp's CPU per call / this client's: >1 means cheaper than it


def summarise(samples: Sequence[Sample]) -> list[Summary]:
    groups: dict[tuple[str, int, str], list[Sample]] = {}
    for sample in samples:
        groups.setdefault((sample.method, sample.concurrency, sample.contender), []).append(sample)
    rates = {k: median([s.rps for s in v]) for k, v in groups.items()}
    costs = {k: median([s.cpu_us for s in v]) for k, v in groups.items()}
    summaries = []
    for (method, concurrency, key), group in groups.items():
        rps = rates[(method, concurrency, key)]
        summaries.append(Summary(
            contender=key, method=method, concurrency=concurrency, rounds=len(group),
            calls=median([s.calls for s in group]), rps=rps,
            rps_min=min(s.rps for s in group), rps_max=max(s.rps for s in group),
            cpu_us=costs[(method, concurrency, key)],
            client_busy=median([s.client_busy for s in group]),
            server_busy=median([s.server_busy for s in group]),
            connections=median([s.connections_opened for s in group]),
            abandoned=median([s.abandoned for s in group]),
            ratio=Ratio.of(rps, rates.get((method, concurrency, BASELINE), 0.0)),
            cpu_ratio=Ratio.of(costs.get((method, concurrency, BASELINE), 0.0),
                               costs[(method, concurrency, key)]),
        ))
    return summaries


HEADERS: Final = (
    "method", "in flight", "client", "req/s (median)", "vs raw aiohttp", "client CPU µs/call",
    "CPU vs raw aiohttp", "req/s min-max", "calls/round", "conns/round", "client CPU",
    "server CPU",
)


def row(summary: Summary) -> list[str]:
    contender = CONTENDERS[summary.contender]
    cut = f" (+{summary.abandoned:,.0f} cut)" if summary.abandoned else ""
    return [
        METHOD_LABELS[summary.method], str(summary.concurrency),
        f"{contender.label} {contender.marker}".strip(),
        f"{summary.rps:,.0f}", str(summary.ratio), f"{summary.cpu_us:,.0f}",
        str(summary.cpu_ratio),
        f"{summary.rps_min:,.0f}-{summary.rps_max:,.0f}",
        f"{summary.calls:,.0f}{cut}",
        f"{summary.connections:,.0f}", f"{summary.client_busy:.0%}",
        f"{summary.server_busy:.0%}",
    ]


def footnotes(options: Options) -> list[str]:
    notes = [
        f"Each round: up to {options.calls:,} calls on a fresh client after untimed priming; "
        f"{options.rounds} rounds alternating between clients; medians shown. A slow client makes "
        f"fewer calls (calls/round): none starts after {options.max_round_seconds:g} s, and "
        f"those still in flight at {abandon_after(options):g} s are cancelled (cut), not "
        "counted, their CPU charged to the completed calls.",
        f"aiohttp, httpx and sendgrid_ipam are all limited to {options.max_connections} "
        "connections (TCPConnector(limit=...) / httpx.Limits(max_connections=...) / "
        "max_connections=...).",
        "client CPU µs/call = CPU time (user+system, all threads) of the client process / "
        "calls; it is steadier than req/s on a busy machine. CPU vs raw aiohttp = raw "
        "aiohttp's CPU per call / this client's (like the req/s ratio, higher is better).",
        "client CPU, server CPU = each process's CPU time / wall time. A pooled client at 16+ "
        "in flight should be near 100% (one core); well under it means the machine took the "
        "core away (noise) or the client waited. Server near 100% would mean the server, not "
        "the client, is the limit.",
    ]
    notes += [f"{c.marker} {c.label}: {c.note}; it has no concurrency of its own, so calls in "
              "flight beyond its threads wait for one." for key in options.contenders
              if (c := CONTENDERS[key]).marker]
    if "httpx" in options.contenders:
        sniffio = "installed" if importlib.util.find_spec("sniffio") else "NOT installed"
        notes.append(f"httpx: sniffio {sniffio} (without it httpcore 1.0.x retries a failed "
                     "`import sniffio` on every request: encode/httpcore#1103).")
    if options.pin:
        notes.append(f"client pinned to CPU {CLIENT_CPU}, server to CPU {SERVER_CPU}.")
    return notes


def report(options: Options, samples: Sequence[Sample]) -> list[Summary]:
    summaries = summarise(samples)
    rows = [row(s) for s in summaries]
    print()
    if options.markdown:
        print(markdown_table(HEADERS, rows))
        print()
        print("\n".join(f"- {note}" for note in footnotes(options)))
    else:
        print(text_table(HEADERS, rows))
        print()
        print("\n".join(footnotes(options)))
    return summaries


# --------------------------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> Options:
    parser = argparse.ArgumentParser(
        prog=f"python -m {MODULE}", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"small run, under a minute: {QUICK}")
    parser.add_argument("--calls", type=int,
                        help=f"calls per round (default {DEFAULTS['calls']})")
    parser.add_argument("--rounds", type=int,
                        help=f"timed rounds per cell (default {DEFAULTS['rounds']})")
    parser.add_argument("--max-round-seconds", type=float,
                        help="start no new call after this long in a round "
                             f"(default {DEFAULTS['max_round_seconds']})")
    parser.add_argument("--concurrency", default="1,16,64,256", help="calls in flight")
    parser.add_argument("--methods", default="get,post", help="get,post")
    parser.add_argument("--contenders", help=f"default: all of {','.join(CONTENDERS)}")
    parser.add_argument("--max-connections", type=int, default=100,
                        help="connection limit given to every pooled client")
    parser.add_argument("--pin", action="store_true",
                        help=f"pin the client to CPU {CLIENT_CPU} and the server to CPU "
                             f"{SERVER_CPU}")
    parser.add_argument("--json", dest="json_path", metavar="PATH", help="write results here")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table")
    args = parser.parse_args(argv)
    base = QUICK if args.quick else DEFAULTS

    def pick(name: str) -> Any:
        value = getattr(args, name)
        return base[name] if value is None else value

    try:
        options = Options(
            methods=parse_choices(args.methods, METHODS),
            concurrency=parse_int_list(args.concurrency),
            contenders=parse_choices(args.contenders or ",".join(CONTENDERS), list(CONTENDERS)),
            contenders_explicit=args.contenders is not None,
            calls=int(pick("calls")), rounds=int(pick("rounds")),
            max_round_seconds=float(pick("max_round_seconds")),
            max_connections=args.max_connections, pin=args.pin, markdown=args.markdown,
            json_path=args.json_path,
        )
    except ValueError as exc:
        parser.error(str(exc))
    if min(options.calls, options.rounds, options.max_connections) < 1:
        parser.error("--calls, --rounds and --max-connections must be at least 1")
    if options.max_round_seconds <= 0:
        parser.error("--max-round-seconds must be positive")
    return options


def main(argv: Sequence[str] | None = None) -> None:
    options = parse_args(argv)
    loopback_only()
    stop_on_sigterm()
    started = time.perf_counter()
    settings = {k: v for k, v in asdict(options).items() if k not in ("json_path", "markdown")}
    header = print_header("sendgrid-ipam client benchmark", MODULE, {"settings": settings})
    factories = load_contenders(options)
    with (
        pinned_to(CLIENT_CPU if options.pin else None),
        BenchServer(cpu=SERVER_CPU if options.pin else None,
                    max_lifetime=server_lifetime(options)) as server,
    ):
        samples = asyncio.run(Runner(options, server).run(factories))
    summaries = report(options, samples)
    elapsed = time.perf_counter() - started
    print(f"\ntotal time {elapsed:.1f}s")
    write_json(options.json_path, {
        **header,
        "elapsed_s": round(elapsed, 2),
        "footnotes": footnotes(options),
        "samples": [asdict(s) | {"rps": s.rps, "cpu_us": s.cpu_us, "client_busy": s.client_busy}
                    for s in samples],
        "summary": [asdict(s) | {"ratio": s.ratio.value, "cpu_ratio": s.cpu_ratio.value}
                    for s in summaries],
    })


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        print("\ninterrupted; the server process was stopped", file=sys.stderr)
        sys.exit(130)
