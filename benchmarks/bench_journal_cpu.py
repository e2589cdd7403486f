"""The journal's own CPU cost in a bulk run, without HTTP: ``run_bulk`` over a stub port.

A bulk run of N accounts (default 1,000 x 12 IPs, 32 at once) whose AddAccountIps returns at
once (after one turn of the event loop) with made-up IPs, run without a journal and with a
fresh SQLite journal, alternating. What is left between the two is the journal's work per
account: the claims, the records, the group commits, the thread hops (every thread's CPU,
``time.process_time``). It is the part of ``bench_bulk --journal``'s figure the journal
causes, without the noise of the HTTP work around it. ``--callgrind`` runs one scenario once
(for ``valgrind --tool=callgrind``; compare the totals of the two scenarios).

    .venv/bin/python -m benchmarks.bench_journal_cpu [--accounts 1000] [--ips-per-account 12]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Final, Literal

from benchmarks._common import median, text_table
from sendgrid_ipam import ProvisionRequest
from sendgrid_ipam.audit import Listing
from sendgrid_ipam.bulk import run_bulk
from sendgrid_ipam.coordination.base import Lease
from sendgrid_ipam.coordination.memory import MemoryCoordinator
from sendgrid_ipam.engine import CallTrace
from sendgrid_ipam.errors import SendGridError
from sendgrid_ipam.journal import SQLiteJournal
from sendgrid_ipam.models import AccountIps, Region

MODULE: Final = "benchmarks.bench_journal_cpu"


class StubPort:
    """A bulk run's provisioning port whose writes succeed at once (one event-loop turn)."""

    lease_ttl = 30.0

    def __init__(self) -> None:
        self.coordinator = MemoryCoordinator()
        self.wall_clock: Callable[[], float] = time.time
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
        self.addresses = (f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
                          for n in itertools.count(1))

    def claim(self, key: str) -> contextlib.AbstractAsyncContextManager[Lease]:
        return self.coordinator.lease(key, wait=0.0)

    def try_claim(self, key: str) -> Lease | None:
        return self.coordinator.try_lease(key)

    async def add(self, account_id: str, count: int, region: Region,
                  known: frozenset[str] | None, known_token: int | None, trace: CallTrace,
                  before_send: Callable[[frozenset[str]], Awaitable[None]]) -> AccountIps:
        await before_send(known if known is not None else frozenset())
        await asyncio.sleep(0)  # the request's round trip
        ips = tuple(itertools.islice(self.addresses, count))
        trace.attempts = 1
        return AccountIps(ips, region)

    async def above_marker(self, account_id: str, marker: frozenset[str],
                           regions: frozenset[str] | None) -> Listing:
        raise AssertionError("a fault-free run lists nothing")

    async def release(self, account_id: str, ips: tuple[str, ...]
                      ) -> tuple[tuple[str, ...], SendGridError | None]:
        raise AssertionError("a fault-free run releases nothing")

    def settled(self, account_id: str, audited_after: float) -> None:
        pass

    def found_excess(self, count: int) -> None:
        pass


SYNCHRONOUS: list[Literal["full", "normal"]] = ["full"]


async def one_run(accounts: int, ips: int, concurrency: int, path: Path | None
                  ) -> tuple[float, float]:
    """Wall and CPU seconds of one bulk run."""
    journal = None if path is None else SQLiteJournal(path, synchronous=SYNCHRONOUS[0])
    requests = [ProvisionRequest(f"acct-{n:05d}", ips, "us") for n in range(accounts)]
    port = StubPort()
    started, cpu = time.perf_counter(), time.process_time()
    result = await run_bulk(port, requests, concurrency=concurrency, on_progress=None,
                            options={}, journal=journal, audit_delay=0.0)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert not result.failed, result.failed[:1]
    assert result.ips_added == accounts * ips
    return elapsed, cpu


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--ips-per-account", type=int, default=12)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--synchronous", choices=("full", "normal"), default="full")
    parser.add_argument("--callgrind", choices=("without", "journal"),
                        help="one run of this scenario only, after one warm-up")
    args = parser.parse_args(argv)
    if min(args.accounts, args.ips_per_account, args.concurrency, args.runs) < 1:
        parser.error("--accounts, --ips-per-account, --concurrency and --runs must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    SYNCHRONOUS[0] = args.synchronous
    shape = (args.accounts, args.ips_per_account, args.concurrency)
    with tempfile.TemporaryDirectory(prefix="bench-journal-cpu-") as directory:
        paths = (Path(directory) / f"run-{n}.journal" for n in itertools.count())
        if args.callgrind:
            path = None if args.callgrind == "without" else next(paths)
            asyncio.run(one_run(*shape, None if path is None else next(paths)))
            wall, cpu = asyncio.run(one_run(*shape, path))
            print(f"{args.callgrind}: {wall:.3f} s, CPU {cpu:.3f} s")
            return 0
        asyncio.run(one_run(*shape, next(paths)))  # warm-up
        times: dict[str, list[tuple[float, float]]] = {"without": [], "journal": []}
        for run in range(args.runs):
            order = ["without", "journal"] if run % 2 == 0 else ["journal", "without"]
            for name in order:
                times[name].append(asyncio.run(one_run(
                    *shape, None if name == "without" else next(paths))))
    base = median([cpu for _, cpu in times["without"]])
    rows = []
    for name, pairs in times.items():
        wall, cpu = median([w for w, _ in pairs]), median([c for _, c in pairs])
        rows.append([name, f"{wall * 1000:,.0f}", f"{cpu * 1000:,.0f}",
                     f"{cpu / args.accounts * 1e6:,.1f}",
                     f"{(cpu - base) / args.accounts * 1e6:,.1f}"])
    print(text_table(["scenario", "wall ms", "CPU ms", "CPU µs/account",
                      "journal CPU µs/account"], rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
