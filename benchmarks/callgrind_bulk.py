"""One fault-free bulk run against the fake in its own process, for ``valgrind --tool=callgrind``.

Instruction counts are exact and unaffected by the machine's load, unlike times. Run it under
callgrind twice per scenario, with two sizes, and divide the difference by the difference in
accounts: what is left is the client's instructions per account, start-up and imports gone
(the fake runs untraced, in its own process). ``benchmarks/callgrind_bulk.sh`` does all of it:

    benchmarks/callgrind_bulk.sh [SMALL] [LARGE]      # default 300 and 1300 accounts

Run it alone:  .venv/bin/python -m benchmarks.callgrind_bulk ACCOUNTS {without,journal,normal}
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from benchmarks._fake_process import FakeProcess
from benchmarks.bench_bulk import Scenario, Workload, provision
from sendgrid_ipam.journal import SQLiteJournal


async def one_run(accounts: int, mode: str) -> None:
    workload = Workload(accounts, 12, "us", 32)
    settings = Scenario(mode).settings(tuple(workload.account_ids()), 1)
    with tempfile.TemporaryDirectory(prefix="callgrind-bulk-") as directory, \
            FakeProcess(settings) as served:
        journal = None if mode == "without" else SQLiteJournal(
            Path(directory) / "run.journal", synchronous="normal" if mode == "normal" else "full")
        (seconds, cpu), result = await provision(served.url, 1, workload, journal)
    assert not result.failed
    print(f"{mode}: {accounts} accounts, {seconds:.3f} s, CPU {cpu:.3f} s")


def main(argv: list[str]) -> int:
    accounts, mode = int(argv[0]), argv[1]
    if mode not in ("without", "journal", "normal") or accounts < 1:
        print(__doc__, file=sys.stderr)
        return 2
    asyncio.run(one_run(accounts, mode))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
