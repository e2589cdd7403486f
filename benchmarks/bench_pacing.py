"""Pacing against a rate limit: ``bulk_add_ips`` beside a naive raw aiohttp loop.

A loopback server (the fake SendGrid, in this process, behind a middleware) answers with
~20 ms of latency (10 ms each way) and limits GET and POST of the account-IPs route
(``/v3/partners/accounts/{id}/ips``) separately, in one of two shapes:

- ``bucket``: a token bucket of 150/s with a burst of 40; ``X-RateLimit-Remaining`` is the
  whole tokens left, ``X-RateLimit-Reset`` the Unix time (ms) the next token is back.
- ``fixed``: fixed windows of 300 requests per 2 s aligned on the Unix clock, as SendGrid
  documents them; Reset is the window's end in whole seconds.

Every reply of those routes carries Limit, Remaining and Reset; a refused one is a 429 with
the API's body. Contenders, each on a fresh server:

- ``sendgrid_ipam``: ``sg.provisioning.bulk_add_ips`` (ListAccountIps marker GET, then
  AddAccountIps of <= 10 per request), concurrency 32, default retry policy;
- ``naive``: 32 raw aiohttp workers doing the same requests per account (a GET, then the
  POSTs), each sleeping 0.5 s on a 429 and sending again.

Figures: wall time / ideal and the 429s the server answered. *Ideal* is the issue's figure:
for each limited endpoint, (its requests - the first free budget) / the sustained rate, the
largest over the endpoints. For the ``fixed`` shape no client can beat the window
arithmetic, so the *bound* is also shown: the start of the window in which the endpoint's
last request can first be admitted, from the run's start, plus one round trip.

The fixed windows are aligned on the Unix clock, so a run's time depends on where in its
first window it starts (the *phase*): started just after a window opened, the first window
lasts the whole 2 s; started just before it closes, almost nothing. The runs of the
``fixed`` shape therefore start at evenly spaced phases, run ``n`` of ``N`` at
``(n + 0.5) / N`` of the window (the midpoints, so that the mean over the runs is the mean
over all phases), and the table shows the mean and the worst ratio over the runs besides
the median time. (The bucket has no phase; its runs start when they come.)

Run from the project root:  .venv/bin/python -m benchmarks.bench_pacing
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

import aiohttp
from aiohttp import web

from benchmarks._common import (
    Ratio,
    loopback_only,
    markdown_table,
    median,
    print_header,
    stop_on_sigterm,
    text_table,
    write_json,
)
from sendgrid_ipam import ProvisionRequest, SendGridIPAM
from sendgrid_ipam.testing import FakeSendGrid

MODULE: Final = "benchmarks.bench_pacing"
API_KEY: Final = "SG.bench"
ONE_WAY: Final = 0.010  # seconds each way: ~20 ms per request
ROUTE: Final = re.compile(r"/v3/partners/accounts/[^/]+/ips")
CHUNK: Final = 10
NAIVE_PAUSE: Final = 0.5
RUN_TIMEOUT: Final = 300.0
TOO_MANY = json.dumps({"errors": [{"field": None, "message": "too many requests"}]}).encode()


# --------------------------------------------------------------------------------------------
# Limiters: take(now) -> (allowed, limit, remaining, reset header)


class Bucket:
    """A token bucket; Reset is when the next whole token is back (ms)."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.at: float | None = None

    def take(self, now: float) -> tuple[bool, int, int, str]:
        if self.at is not None:
            self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        allowed = self.tokens >= 1.0
        if allowed:
            self.tokens -= 1.0
        missing = 1.0 - (self.tokens % 1.0)
        return allowed, self.burst, int(self.tokens), f"{now + missing / self.rate:.3f}"

    def free(self) -> int:
        return self.burst

    def sustained(self) -> float:
        return self.rate


class FixedWindows:
    """Fixed windows aligned on the Unix clock; Reset is the window's end (whole seconds)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.ends = 0.0
        self.used = 0

    def take(self, now: float) -> tuple[bool, int, int, str]:
        if now >= self.ends:
            self.ends = (math.floor(now / self.window) + 1) * self.window
            self.used = 0
        allowed = self.used < self.limit
        self.used += allowed
        return allowed, self.limit, self.limit - self.used, str(math.ceil(self.ends))

    def free(self) -> int:
        return self.limit

    def sustained(self) -> float:
        return self.limit / self.window


SHAPES: Final[dict[str, Callable[[], Bucket | FixedWindows]]] = {
    "bucket": lambda: Bucket(150.0, 40),
    "fixed": lambda: FixedWindows(300, 2.0),
}


# --------------------------------------------------------------------------------------------
# The server


@dataclass
class Served:
    url: str
    counts: Counter[str]  # "GET 200", "POST 429", ...


def limiting(shape: str, counts: Counter[str]) -> Any:
    limiters = {"GET": SHAPES[shape](), "POST": SHAPES[shape]()}

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        limiter = limiters.get(request.method) if ROUTE.fullmatch(request.path) else None
        if limiter is None:
            return await handler(request)  # type: ignore[no-any-return]
        await asyncio.sleep(ONE_WAY)
        allowed, limit, remaining, reset = limiter.take(time.time())
        headers = {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
                   "X-RateLimit-Reset": reset}
        if allowed:
            response = await handler(request)
            response.headers.update(headers)
        else:
            await request.read()
            response = web.Response(status=429, body=TOO_MANY, headers=headers,
                                    content_type="application/json")
        counts[f"{request.method} {response.status}"] += 1
        await asyncio.sleep(ONE_WAY)
        return response  # type: ignore[no-any-return]

    return middleware


# --------------------------------------------------------------------------------------------
# Contenders: run(url, accounts, ips, concurrency) -> accounts that failed


async def library(url: str, accounts: list[str], ips: int, concurrency: int) -> int:
    requests = [ProvisionRequest(a, ips, "us") for a in accounts]
    async with SendGridIPAM(api_key=API_KEY, base_url=url) as sg:
        result = await sg.provisioning.bulk_add_ips(requests, concurrency=concurrency)
    return len(result.failed)


async def naive(url: str, accounts: list[str], ips: int, concurrency: int) -> int:
    headers = {"Authorization": f"Bearer {API_KEY}"}
    queue = list(reversed(accounts))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(url, headers=headers, connector=connector) as session:

        async def send(method: str, path: str, **kwargs: Any) -> None:
            while True:
                async with session.request(method, path, **kwargs) as resp:
                    await resp.read()
                    if resp.status != 429:
                        resp.raise_for_status()
                        return
                await asyncio.sleep(NAIVE_PAUSE)

        async def worker() -> None:
            while queue:
                path = f"/v3/partners/accounts/{queue.pop()}/ips"
                await send("GET", path, params={"limit": "10"})
                for left in range(ips, 0, -CHUNK):
                    await send("POST", path, json={"count": min(CHUNK, left), "region": "us"})

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return 0


CONTENDERS: Final[dict[str, Callable[[str, list[str], int, int], Awaitable[int]]]] = {
    "sendgrid_ipam": library,
    "naive": naive,
}


# --------------------------------------------------------------------------------------------
# Runs


@dataclass(frozen=True, slots=True)
class Run:
    shape: str
    contender: str
    seconds: float
    ideal: float
    bound: float
    requests: int
    limited: int
    failed_accounts: int
    counts: dict[str, int]
    phase: float | None = None  # where in its first window the run started (fixed shape)


def ideal_and_bound(shape: str, needed: dict[str, int], started: float) -> tuple[float, float]:
    limiter = SHAPES[shape]()
    ideal = max(max(0, n - limiter.free()) / limiter.sustained() for n in needed.values())
    if isinstance(limiter, Bucket):
        return ideal, ideal + 2 * ONE_WAY
    first_end = (math.floor(started / limiter.window) + 1) * limiter.window - started
    later = max(math.ceil(n / limiter.limit) - 1 for n in needed.values())
    bound = 0.0 if later == 0 else first_end + (later - 1) * limiter.window
    return ideal, bound + 2 * ONE_WAY


async def at_phase(shape: str, phase: float | None) -> None:
    """Wait until the wall clock is at ``phase`` (0 to 1) of a fixed window (None: now)."""
    limiter = SHAPES[shape]()
    if phase is None or not isinstance(limiter, FixedWindows):
        return
    now = time.time()
    target = math.floor(now / limiter.window) * limiter.window + phase * limiter.window
    if target < now + 0.05:  # too close to start there on time: the next window's
        target += limiter.window
    await asyncio.sleep(target - time.time())


async def run_once(shape: str, contender: str, accounts: int, ips: int,
                   concurrency: int, phase: float | None = None) -> Run:
    ids = [f"acct-{n:04d}" for n in range(accounts)]
    counts: Counter[str] = Counter()
    fake = FakeSendGrid(api_key=API_KEY, accounts=ids)
    fake.app.middlewares.append(limiting(shape, counts))
    async with fake:
        await at_phase(shape, phase)
        started_wall = time.time()
        started = time.perf_counter()
        async with asyncio.timeout(RUN_TIMEOUT):
            failed = await CONTENDERS[contender](fake.url, ids, ips, concurrency)
        seconds = time.perf_counter() - started
    needed = {"GET": accounts, "POST": accounts * math.ceil(ips / CHUNK)}
    ideal, bound = ideal_and_bound(shape, needed, started_wall)
    limited = sum(v for k, v in counts.items() if k.endswith(" 429"))
    window = getattr(SHAPES[shape](), "window", None)
    return Run(shape, contender, seconds, ideal, bound, sum(counts.values()), limited, failed,
               dict(counts), None if window is None else (started_wall % window) / window)


async def run_all(shapes: Sequence[str], contenders: Sequence[str], runs: int, accounts: int,
                  ips: int, concurrency: int) -> list[Run]:
    results = []
    for n in range(runs):
        for shape in shapes:
            order = contenders if n % 2 == 0 else list(reversed(contenders))
            for contender in order:
                run = await run_once(shape, contender, accounts, ips, concurrency,
                                     (n + 0.5) / runs)
                phase = "" if run.phase is None else f" phase {run.phase:.2f},"
                print(f"  run {n} {shape} {contender}:{phase} {run.seconds:.2f} s (ideal "
                      f"{run.ideal:.2f}, bound {run.bound:.2f}), {run.requests} requests, "
                      f"{run.limited} 429s, {run.failed_accounts} accounts failed",
                      file=sys.stderr, flush=True)
                results.append(run)
    return results


HEADERS: Final = ("shape", "contender", "runs", "time (median)", "vs ideal: mean",
                  "worst", "vs bound: mean", "worst", "requests", "429s", "429 share",
                  "failed accounts")


def ratios(seconds: Sequence[float], ideals: Sequence[float]) -> tuple[Ratio, Ratio]:
    """The mean and the worst of the runs' ratios ("n/a" when the work fits in the free
    budget)."""
    values = [s / i for s, i in zip(seconds, ideals, strict=True) if i > 0]
    if not values:
        return Ratio(None), Ratio(None)
    return Ratio(statistics.fmean(values)), Ratio(max(values))


def rows(results: Sequence[Run], shapes: Sequence[str],
         contenders: Sequence[str]) -> list[list[str]]:
    table = []
    for shape in shapes:
        for contender in contenders:
            mine = [r for r in results if r.shape == shape and r.contender == contender]
            seconds = [r.seconds for r in mine]
            requests = median([r.requests for r in mine])
            limited = median([r.limited for r in mine])
            table.append([
                shape, contender, str(len(mine)), f"{median(seconds):.2f} s",
                *map(str, ratios(seconds, [r.ideal for r in mine])),
                *map(str, ratios(seconds, [r.bound for r in mine])),
                f"{requests:,.0f}", f"{limited:,.0f}", f"{limited / requests:.1%}",
                str(sum(r.failed_accounts for r in mine)),
            ])
    return table


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=8,
                        help="runs per shape and contender (fixed windows: at this many "
                             "evenly spaced phases)")
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--ips-per-account", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--shapes", default="bucket,fixed")
    parser.add_argument("--contenders", default="sendgrid_ipam,naive")
    parser.add_argument("--json", dest="json_path", metavar="PATH")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args(argv)
    args.shapes = [s for s in args.shapes.split(",") if s]
    args.contenders = [c for c in args.contenders.split(",") if c]
    if set(args.shapes) - set(SHAPES) or set(args.contenders) - set(CONTENDERS):
        parser.error(f"shapes: {', '.join(SHAPES)}; contenders: {', '.join(CONTENDERS)}")
    if min(args.runs, args.accounts, args.ips_per_account, args.concurrency) < 1:
        parser.error("--runs, --accounts, --ips-per-account and --concurrency must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    loopback_only()
    stop_on_sigterm()
    started = time.perf_counter()
    settings = {"accounts": args.accounts, "ips_per_account": args.ips_per_account,
                "concurrency": args.concurrency, "runs": args.runs}
    header = print_header("sendgrid-ipam pacing benchmark", MODULE, {"settings": settings})
    results = asyncio.run(run_all(args.shapes, args.contenders, args.runs, args.accounts,
                                  args.ips_per_account, args.concurrency))
    table = markdown_table if args.markdown else text_table
    print(table(HEADERS, rows(results, args.shapes, args.contenders)))
    print(f"\ntotal time {time.perf_counter() - started:.1f}s")
    write_json(args.json_path, {**header, "runs": [asdict(r) for r in results]})
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
