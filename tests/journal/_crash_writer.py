"""The child of the crash test: writes a run to a journal, one line on stdout per record.

    python tests/journal/_crash_writer.py PATH RUN_ID ACCOUNTS SYNCHRONOUS

Each of 8 tasks takes accounts in turn and, resuming from what the journal holds, records
its target, marker, one chunk's intent and outcome, and its finish (odd accounts: the
outcome and the finish in one step with ``durable=False``, as a bulk run writes them). A
line ``<account> <step>`` is printed (and flushed) only after the call that wrote the record
returned, so every line the parent reads names a record that must survive a SIGKILL. Exits 0
when every account is finished.
"""

from __future__ import annotations

import asyncio
import sys

from sendgrid_ipam.journal import Finish, Journal, Outcome, SQLiteJournal

TASKS = 8


def ips_of(index: int) -> list[str]:
    """The IPs the child "buys" for account number `index`."""
    return [f"198.18.{index // 200}.{index % 200 + 1}", f"198.19.{index // 200}.{index % 200 + 1}"]


def marker_of(index: int) -> str | None:
    """The marker the child records for account number `index`."""
    return None if index % 3 == 0 else f"192.0.2.{index % 250 + 1}"


def say(*words: object) -> None:
    print(*words, flush=True)


async def account(journal: Journal, run_id: str, index: int) -> None:
    name = f"acct-{index}"
    state = await journal.begin_account(run_id, name, region="us", count=2)
    say(name, "begin")
    if state.finished:
        return
    if not state.marker_known:
        await journal.record_marker(run_id, name, marker_of(index))
        say(name, "marker")
    if state.chunk(0) is None:
        await journal.record_intent(run_id, name, 0, 2)
        say(name, "intent")
    if index % 2:  # as a bulk run writes them: one step, not waiting for the disk
        await journal.record_many(run_id, [(name, [Outcome(0, tuple(ips_of(index))),
                                                   Finish(tuple(ips_of(index)))])],
                                  durable=False)
        say(name, "outcome")
        say(name, "finish")
        return
    await journal.record_outcome(run_id, name, 0, ips_of(index))
    say(name, "outcome")
    await journal.finish_account(run_id, name, ips_of(index))
    say(name, "finish")


async def main(path: str, run_id: str, accounts: int, synchronous: str) -> None:
    queue = iter(range(accounts))

    async def worker(journal: Journal) -> None:
        for index in queue:
            await account(journal, run_id, index)

    assert synchronous in ("full", "normal")
    async with SQLiteJournal(path, synchronous=synchronous) as journal:
        say("open")
        await asyncio.gather(*(worker(journal) for _ in range(TASKS)))
    say("done")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
