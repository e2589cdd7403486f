"""The journal's cost in a bulk run's shape: SQLiteJournal, 1,000 accounts from 32 tasks.

Each account writes what a bulk run of 2 chunks would: begin_account, record_marker, then
record_intent and record_outcome for each chunk, and finish_account (7 records, each awaited,
each durable before its call returns). Prints the wall time per run, per account and per
record, and how long a call waits for its commit (p50/p99): an intent's wait delays its POST.
A serial scenario (one task) shows the cost of a commit alone, which the group commit shares
among the tasks writing at once.

No network, no fake: only the journal. Run from the project root:

    .venv/bin/python -m benchmarks.bench_journal [--accounts 1000] [--concurrency 32]

Compare the per-run time with a fault-free ``benchmarks.bench_bulk`` run of the same size.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Literal

from benchmarks._common import median, print_header, text_table
from sendgrid_ipam.journal import Journal, SQLiteJournal

MODULE: Final = "benchmarks.bench_journal"
RECORDS_PER_ACCOUNT: Final = 7
CHUNKS: Final = 2


async def _account(journal: Journal, run_id: str, index: int, waits: list[float]) -> None:
    name = f"acct-{index:05d}"
    clock = time.perf_counter

    async def timed(call: object) -> None:
        started = clock()
        await call  # type: ignore[misc]
        waits.append(clock() - started)

    await timed(journal.begin_account(run_id, name, region="us", count=12))
    await timed(journal.record_marker(run_id, name, None))
    obtained: list[str] = []
    for chunk in range(CHUNKS):
        ips = [f"198.18.{index % 250}.{chunk * 10 + n + 1}" for n in range(10 - chunk * 8)]
        await timed(journal.record_intent(run_id, name, chunk, len(ips)))
        await timed(journal.record_outcome(run_id, name, chunk, ips))
        obtained += ips
    await timed(journal.finish_account(run_id, name, obtained))


async def one_run(
    path: Path, accounts: int, concurrency: int, synchronous: Literal["full", "normal"]
) -> tuple[float, list[float]]:
    """Seconds for the whole run (open to close), and every call's wait."""
    waits: list[float] = []
    pending = iter(range(accounts))
    started = time.perf_counter()
    async with SQLiteJournal(path, synchronous=synchronous) as journal:

        async def worker() -> None:
            for index in pending:
                await _account(journal, "bench", index, waits)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, waits


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serial-accounts", type=int, default=30,
                        help="accounts of the one-task scenario (0 skips it)")
    parser.add_argument("--synchronous", choices=("full", "normal", "both"), default="both",
                        help="SQLiteJournal's synchronous setting (default: both, in turn)")
    parser.add_argument("--dir", type=Path, help="where the journal files go (default: a "
                        "temporary directory; put it on the disk you will run on)")
    args = parser.parse_args(argv)
    if min(args.accounts, args.concurrency, args.runs) < 1 or args.serial_accounts < 0:
        parser.error("--accounts, --concurrency and --runs must be >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print_header("sendgrid-ipam journal benchmark", MODULE, {"settings": {
        "accounts": args.accounts, "concurrency": args.concurrency, "runs": args.runs,
        "records_per_account": RECORDS_PER_ACCOUNT}})
    modes: list[Literal["full", "normal"]] = (
        ["full", "normal"] if args.synchronous == "both" else [args.synchronous]
    )
    scenarios = []
    for mode in modes:
        scenarios.append((f"{mode}, {args.concurrency} tasks", mode, args.accounts,
                          args.concurrency, args.runs))
        if args.serial_accounts:
            scenarios.append((f"{mode}, 1 task", mode, args.serial_accounts, 1, 1))
    rows = []
    with tempfile.TemporaryDirectory(dir=args.dir) as directory:
        for label, mode, accounts, concurrency, runs in scenarios:
            times, waits = [], []
            for run in range(runs):
                path = Path(directory) / f"{mode}-{concurrency}-{run}.journal"
                seconds, run_waits = asyncio.run(one_run(path, accounts, concurrency, mode))
                times.append(seconds)
                waits += run_waits
            run_time = median(times)
            quantiles = statistics.quantiles(waits, n=100)
            rows.append([
                label, str(accounts), f"{run_time:.3f}", _ms(run_time / accounts),
                f"{accounts * RECORDS_PER_ACCOUNT / run_time:,.0f}",
                _ms(quantiles[49]), _ms(quantiles[98]),
            ])
    print(text_table(
        ["scenario", "accounts", "run s (median)", "ms/account", "records/s",
         "wait p50 ms", "wait p99 ms"], rows))
    print(f"\n{RECORDS_PER_ACCOUNT} records per account (begin, marker, {CHUNKS} x intent + "
          "outcome, finish), each committed before its call returns: 'full' fsyncs each commit "
          "(survives a machine crash), 'normal' does not (survives the process's death).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
