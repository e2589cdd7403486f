"""A bulk run's use of its journal: what is awaited before a write, what is written behind it.

Durable before each POST (awaited, under the account's write lease): the marker with the first
chunk's intent, and each later chunk's intent. Written behind the run (not awaited by the next
write, but awaited before the run returns): outcomes, ambiguous failures, excess, releases and
finishes. Losing one of those to a crash loses nothing: a rerun lists every unfinished account
down to its marker, and IPs it finds there count as obtained.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
from collections.abc import AsyncIterator, Callable, Iterable, Mapping

from . import _turns
from .journal import AccountState, Journal, JournalError, JournalMismatchError, open_journal
from .journal.base import Intent, Marker, Record
from .models import ProvisionRequest

__all__ = ["Recorder", "opened", "preflight", "run_digest"]

_SHOWN = 5  # accounts named in an error message


def run_digest(requests: Iterable[ProvisionRequest]) -> str:
    """The default run id: a digest of the requests (their order does not matter)."""
    digest = hashlib.sha256()
    for r in sorted(requests, key=lambda r: r.account_id):
        digest.update(f"{r.account_id}\0{r.region}\0{r.count}\n".encode())
    return "run-" + digest.hexdigest()[:24]


@contextlib.asynccontextmanager
async def opened(target: str | os.PathLike[str] | Journal) -> AsyncIterator[Journal]:
    """The journal, open for the block; closed after it only if it was opened here."""
    journal = open_journal(target)
    if journal.is_open:
        yield journal
        return
    async with journal:
        yield journal


def _names(accounts: list[str]) -> str:
    more = f" and {len(accounts) - _SHOWN} more" if len(accounts) > _SHOWN else ""
    return ", ".join(accounts[:_SHOWN]) + more


async def preflight(
    journal: Journal, run_id: str, requests: list[ProvisionRequest]
) -> Mapping[str, AccountState]:
    """Check every account against the journal and begin the new ones; before any write.

    Returns the states of the accounts the journal already held for this run.

    Raises:
        JournalMismatchError: the run recorded another target for an account, or another run
            began an account of the requests and did not finish it.
        JournalError: the journal cannot be read or written.
    """
    states = await journal.load(run_id)
    differ = [r for r in requests if (s := states.get(r.account_id)) is not None
              and (s.region, s.count) != (r.region, r.count)]
    if differ:
        first = states[differ[0].account_id]
        raise JournalMismatchError(
            f"the journal's run {run_id!r} asked other counts or regions for "
            f"{len(differ)} account(s): {_names([r.account_id for r in differ])} (it asked "
            f"{first.count} IPs in {first.region!r} for {first.account_id!r}, this asks "
            f"{differ[0].count} in {differ[0].region!r}); nothing was bought. Rerun with the "
            "requests of that run to finish it, or use another journal or run id"
        )
    others = await journal.unfinished_elsewhere(run_id, [r.account_id for r in requests])
    if others:
        accounts = list(others)
        raise JournalMismatchError(
            f"the journal holds an unfinished run ({others[accounts[0]]!r}) for "
            f"{len(accounts)} account(s) of these requests: {_names(accounts)}; running "
            "them again under another run could buy their IPs twice, so nothing was bought. "
            "Rerun that run's requests (the same CSV) to finish it, or use another journal"
        )
    await journal.begin_accounts(run_id, [(r.account_id, r.region, r.count)
                                          for r in requests if r.account_id not in states])
    return states


class Recorder:
    """The run's journal records (all of them do nothing without a journal).

    Each step costs the event loop's thread and the journal's some CPU, whatever the disk:
    so an account's records go in as few steps as its safety allows — two, usually. Before
    the first POST (awaited, durable): the marker and the intents of every chunk planned.
    Behind the run (not awaited; ``durable=False``, as nothing waits for them): the outcomes
    with the finish (or with the next step the account takes). An ambiguous failure is
    written at once, behind the run. Every step queued in one turn of the event loop goes to
    the journal as one batch (`Journal.submit_many`); only an awaited step has a future of
    its own.
    """

    def __init__(self, journal: Journal | None, run_id: str | None, stop: asyncio.Event) -> None:
        self.journal = journal
        self.run_id = run_id or ""
        self.stop = stop
        self.failures: dict[str, BaseException] = {}
        self.deferred: dict[str, list[Record]] = {}
        self.batch: list[tuple[str, list[Record]]] = []  # the batch of this turn
        self.waiters: dict[int, asyncio.Future[None]] = {}  # its awaited steps, by index
        self.durable = False  # whether it holds an awaited step
        self.number = 0  # the batch's number
        self.sent: dict[int, asyncio.Future[None]] = {}  # batches not answered, by number
        self.last: dict[str, int] = {}  # the number of each account's last batch
        self.settling: list[tuple[int, Callable[[], object]]] = []  # (batch, what then)
        self.behind = False  # a batch went with durable=False: `flush` syncs the journal
        self.sync_failure: BaseException | None = None  # that sync failed: nothing is sure

    def defer(self, account_id: str, record: Record) -> None:
        """Record `record` with the account's next step (no write is sent before it)."""
        if self.journal is not None:
            self.deferred.setdefault(account_id, []).append(record)

    def drop(self, account_id: str) -> None:
        """Forget the account's deferred records (another worker took the account over)."""
        self.deferred.pop(account_id, None)

    async def first_write(
        self, account_id: str, marker: str | None, plan: list[tuple[int, int]]
    ) -> None:
        """Durable before the account's first POST: its marker and its chunks' intents."""
        if self.journal is not None:
            records: list[Record] = [Intent(chunk, size) for chunk, size in plan]
            records.insert(0, Marker(marker))
            # others send meanwhile, and their steps share the fsync this one waits for
            await _turns.without_turn(self._step(account_id, records, wait=True))

    async def before_write(self, account_id: str, chunk: int, size: int) -> None:
        """Durable before a POST that was not planned: its intent."""
        if self.journal is not None:
            await _turns.without_turn(self._step(account_id, [Intent(chunk, size)], wait=True))

    def later(self, account_id: str, *records: Record) -> None:
        """Write the account's deferred records and `records` behind the run: `flush` awaits
        them; a failure stops the run."""
        if self.journal is not None and (records or self.deferred.get(account_id)):
            self._step(account_id, list(records), wait=False)

    def _step(self, account_id: str, records: list[Record], *, wait: bool
              ) -> asyncio.Future[None]:
        """Queue one step of the account (its deferred records first) in this turn's batch;
        the future of its answer if `wait` (else a failure stops the run)."""
        deferred = self.deferred.pop(account_id, None)
        index = len(self.batch)
        self.batch.append((account_id, deferred + records if deferred else records))
        loop = asyncio.get_running_loop()
        if index == 0:
            self.sent[self.number] = loop.create_future()
            loop.call_soon(self._send)
        self.last[account_id] = self.number
        if not wait:
            return self.sent[self.number]
        self.durable = True
        future: asyncio.Future[None] = loop.create_future()
        self.waiters[index] = future
        return future

    def _send(self) -> None:
        assert self.journal is not None
        batch, self.batch = self.batch, []
        waiters, self.waiters = self.waiters, {}
        durable, self.durable = self.durable, False
        number, self.number = self.number, self.number + 1
        self.behind = self.behind or not durable
        try:
            sent = self.journal.submit_many(self.run_id, batch, durable=durable)
        except Exception as exc:  # the answer of every step of the batch
            sent = asyncio.get_running_loop().create_future()
            sent.set_exception(exc)

        def answer(done: asyncio.Future[list[BaseException | None]]) -> None:
            failure = asyncio.CancelledError() if done.cancelled() else done.exception()
            errors = [failure] * len(batch) if failure is not None else done.result()
            for index, ((account_id, _), error) in enumerate(zip(batch, errors, strict=True)):
                waiter = waiters.get(index)
                if waiter is not None:
                    if waiter.done():
                        continue
                    if error is None:
                        waiter.set_result(None)
                    else:
                        waiter.set_exception(error)
                elif error is not None:
                    self.failures.setdefault(account_id, error)
                    self.stop.set()  # no write may follow a record that is not durable
            self.sent.pop(number).set_result(None)
            if self.settling:  # wake each settle whose batches are all answered now
                first = min(self.sent, default=self.number)
                still = []
                for last, then in self.settling:
                    if last >= first:
                        still.append((last, then))
                    else:
                        then()
                self.settling = still

        sent.add_done_callback(answer)

    async def settle(self, account_id: str) -> None:
        """Wait until every record of the account written so far is stored (or failed)."""
        # a waiter of its own: cancelling this task must not cancel a batch's future
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not waiter.done():
                waiter.set_result(None)

        self.when_settled(account_id, wake)
        await waiter

    def when_settled(self, account_id: str, then: Callable[[], object]) -> None:
        """Call `then` once every record of the account written so far is stored (or
        failed): now, if they are."""
        last = self.last.pop(account_id, None)
        if last is None or min(self.sent, default=last + 1) > last:
            then()  # every batch up to its last one is answered
        else:
            self.settling.append((last, then))

    async def flush(self) -> None:
        """Wait until every record written behind the run is stored (or has failed).

        Cancelling the caller does not abandon them: they are waited for all the same.
        """
        cancelled = False
        while self.sent:
            try:
                await asyncio.wait(list(self.sent.values()))
            except asyncio.CancelledError:
                cancelled = True
        if self.behind and self.journal is not None:
            self.behind = False
            syncing = asyncio.ensure_future(self.journal.sync())
            while not syncing.done():
                try:
                    await asyncio.wait([syncing])
                except asyncio.CancelledError:
                    cancelled = True
            if not syncing.cancelled():
                self.sync_failure = syncing.exception()
        if cancelled:
            raise asyncio.CancelledError


def journal_failure(exc: BaseException | None) -> bool:
    """Whether `exc` says the journal failed (the run must stop)."""
    return isinstance(exc, JournalError)
