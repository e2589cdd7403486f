"""Provisioning IPs for many accounts at once: ``sg.provisioning.bulk_add_ips(...)``.

Each account's count is split into AddAccountIps requests of at most 10, sent one after another
for that account. Each chunk holds the account's write lease, as a single call does, so a bulk
run and single calls on the same account interleave safely. Each chunk's reply tells the next
chunk which IPs are the account's newest — valid as long as nobody else held the lease in
between (its token says so) — so usually only the first chunk costs a marker GET; that first
marker (the account's newest IP before the run's first write) is the account's *marker*.
Accounts run in parallel, up to ``concurrency`` at once.

Nothing is lost: the run never raises for one account's failure. Every account gets an
`AccountResult` with the IPs it obtained (also when it failed part-way, and every IP of an
`AmbiguousResultError`'s ``.found``), the error if any, the attempts made and whether
reconciliation was used. A chunk that ends in `AmbiguousResultError` does not end its account:
once the audit delay has passed, the account is listed down to its marker, what is there counts
as obtained, and only the remainder is bought (twice at most per account).

**Journal.** With ``journal=``, the run records, durably before each write, the account's target
and marker and each chunk's intent, and each outcome after it (see ``_bulk_journal``). Run the
same requests again with the same journal and the run resumes: finished accounts are taken from
the journal untouched; unfinished ones are listed down to their marker, the IPs above it in the
region count as obtained, and only the remainder is bought.

**Shared runs.** With a journal, each account is provisioned under a *claim*: the coordinator's
lease on ``bulk:RUN:ACCOUNT``, taken without waiting, held (and renewed) from before the account's
journal state is read until the account is final and its records are durable, and confirmed
before every POST. Several runs of the same requests on one journal — worker processes sharing
a `RedisJournal` and a `RedisCoordinator`, or tasks of one client — thus split the accounts:
each takes those it can claim, then waits for the others' and takes over any whose claim frees
(its worker died: its lease ran out), resuming it from the journal as a rerun would. Its
`BulkResult` leaves out the accounts another worker finished meanwhile (``elsewhere``).

**Audit.** A write that failed ambiguously may land after every check made (a gateway answered
504 while the backend finished). Before it returns, the run lists each account that met such a
failure once ``audit_delay`` has passed since the last one: IPs above the marker that were not
reported are added to the account's ``ips``, and IPs beyond what was asked are its ``excess``
(removed again with ``release_excess=True``).

If the awaiting task is cancelled, no new write starts, the writes already in flight are allowed
to finish, every IP they obtained is reported through ``on_progress``, and the cancellation then
propagates.

``ProgressCallback`` is the type of ``on_progress``: a plain function taking a `BulkProgress`.
An exception it raises is logged and the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from . import _bulk_journal, _turns
from ._turns import Turn
from .audit import Listing, check_delay, wait_until
from .coordination.base import CoordinatorUnavailableError, Lease, LeaseLostError
from .engine import CallTrace, RequestOptions, check_options
from .errors import (
    AmbiguousResultError,
    BulkProvisioningError,
    RequestTimeoutError,
    SendGridError,
    ValidationError,
)
from .journal.base import Ambiguous, Excess, Finish, Outcome, Released
from .models import AccountIps, ProvisionRequest, Region

if TYPE_CHECKING:
    from .journal import AccountState, Journal

__all__ = ["AccountResult", "BulkProgress", "BulkResult", "ProgressCallback"]

CHUNK = 10
"""The most IPs one AddAccountIps request may ask for."""
MAX_RESYNCS = 2
UNDER_WAY = 2
"""Accounts under way at once, as a multiple of ``concurrency``: those at work and, as many
again, those waiting (a backoff, a settle, a pace) whose turns others use meanwhile."""
"""How often an account is listed again after an `AmbiguousResultError` before it fails."""

logger: logging.Logger = logging.getLogger("sendgrid_ipam")


@attrs.frozen
class AccountResult:
    """One account's outcome in a bulk run.

    ``ips`` are every IP the account obtained in this run, also when it failed part-way
    (including IPs an ambiguous failure was found to have added, and IPs a late write added
    that the run's audit found). ``excess`` are those of them beyond what was asked (bought
    twice by a write that landed late); ``released`` those of the excess removed again.
    ``attempts`` counts the HTTP attempts of its AddAccountIps requests, ``requests`` the
    requests themselves; ``reconciled`` how many of those were settled by reconciliation.
    ``from_journal`` is True when the account was finished in the journal before this run
    came to it (its IPs are the journal's; nothing was sent for it); ``resumed`` when the
    journal held writes of an unfinished attempt at it (a crashed run, or a worker of a
    shared run that died), which this run took up.
    """

    account_id: str
    region: str
    requested: int
    ips: tuple[str, ...] = ()
    error: BaseException | None = None
    attempts: int = 0
    requests: int = 0
    reconciled: int = 0
    excess: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    from_journal: bool = False
    resumed: bool = False

    @property
    def ok(self) -> bool:
        """True when the account obtained every IP asked for (excess aside), without error."""
        return self.error is None and len(self.ips) - len(self.excess) == self.requested

    @property
    def held(self) -> tuple[str, ...]:
        """The IPs obtained and not released again: what the run left on the account."""
        released = set(self.released)
        return tuple(ip for ip in self.ips if ip not in released)


@attrs.frozen
class BulkProgress:
    """What one step of a bulk run obtained: ``new_ips`` for ``account_id`` just now.

    ``result`` is set when the account is final (done or failed). ``found`` is True when
    the IPs were not a request's reply but found otherwise: read from the journal (a resumed
    run), or found by listing the account (a resumed account, an audit).
    """

    account_id: str
    new_ips: tuple[str, ...]
    result: AccountResult | None = None
    found: bool = False


ProgressCallback = Callable[[BulkProgress], None]


class Provisioner(Protocol):
    """What a bulk run needs of the provisioning resource (bound to the call's options)."""

    wall_clock: Callable[[], float]
    sleep: Callable[[float], Awaitable[None]]
    lease_ttl: float  # of the coordinator's leases: how soon a dead worker's claim frees

    def claim(self, key: str) -> AbstractAsyncContextManager[Lease]:
        """The coordinator's lease on `key` if it is free now (else `RequestTimeoutError`)."""

    def try_claim(self, key: str) -> Lease | None:
        """The coordinator's lease on `key` at once if it is free and can be taken without a
        round trip (`Coordinator.try_lease`; released with ``release_now``), else None."""

    def add(
        self,
        account_id: str,
        count: int,
        region: Region,
        known: frozenset[str] | None,
        known_token: int | None,
        trace: CallTrace,
        before_send: Callable[[frozenset[str]], Awaitable[None]],
    ) -> Awaitable[AccountIps]:
        """AddAccountIps for one chunk; `before_send(marker)` runs under the lease first."""

    async def above_marker(
        self, account_id: str, marker: frozenset[str], regions: frozenset[str] | None
    ) -> Listing:
        """The account listed down to `marker`, under its write lease."""

    async def release(
        self, account_id: str, ips: tuple[str, ...]
    ) -> tuple[tuple[str, ...], SendGridError | None]:
        """Remove `ips`; returns those removed and the error that stopped it, if any."""

    def settled(self, account_id: str, audited_after: float) -> None:
        """The run audited the account."""

    def found_excess(self, count: int) -> None:
        """The run's audit found ``count`` IPs beyond what was asked (for telemetry)."""


@attrs.frozen
class BulkResult:
    """Every account's outcome, in the order the requests were given, and totals.

    ``run_id`` is the run's id in its journal (None without a journal). In a run shared by
    several workers, ``results`` leave out the accounts another worker finished while this
    one ran; ``elsewhere`` names them (in request order).
    """

    results: tuple[AccountResult, ...]
    run_id: str | None = None
    elsewhere: tuple[str, ...] = ()

    @property
    def failed(self) -> tuple[AccountResult, ...]:
        """The accounts that did not obtain every IP asked for."""
        return tuple(r for r in self.results if not r.ok)

    @property
    def ips_requested(self) -> int:
        """IPs asked for, over all accounts."""
        return sum(r.requested for r in self.results)

    @property
    def ips_added(self) -> int:
        """IPs obtained, over all accounts (excess included)."""
        return sum(len(r.ips) for r in self.results)

    @property
    def excess(self) -> dict[str, tuple[str, ...]]:
        """The excess IPs of each account that has any (see `AccountResult.excess`)."""
        return {r.account_id: r.excess for r in self.results if r.excess}

    @property
    def ips_excess(self) -> int:
        """Excess IPs, over all accounts."""
        return sum(len(r.excess) for r in self.results)

    @property
    def ips_released(self) -> int:
        """Excess IPs removed again, over all accounts."""
        return sum(len(r.released) for r in self.results)

    @property
    def retries(self) -> int:
        """Attempts beyond the first of each request, over all accounts."""
        return sum(r.attempts - r.requests for r in self.results)

    @property
    def reconciled(self) -> int:
        """Requests settled by reconciliation instead of a reply."""
        return sum(r.reconciled for r in self.results)

    def raise_for_failures(self) -> None:
        """Raise `BulkProvisioningError` if any account failed."""
        if failed := self.failed:
            raise BulkProvisioningError(failed)


@attrs.define
class _AccountRun:
    request: ProvisionRequest
    ips: list[str] = attrs.Factory(list)
    excess: list[str] = attrs.Factory(list)
    released: list[str] = attrs.Factory(list)
    error: BaseException | None = None
    attempts: int = 0
    requests: int = 0
    reconciled: int = 0
    known: frozenset[str] | None = None
    known_token: int | None = None
    marker: frozenset[str] | None = None  # the newest IPs before the run's first write
    next_chunk: int = 0
    ambiguous_at: float | None = None  # the last ambiguous failure (Unix seconds)
    finished: bool = False  # taken from the journal, untouched
    recover: bool = False  # a resumed account: list it down to its marker first
    resumed: bool = False  # the journal held writes of an unfinished attempt
    resyncs: int = 0
    planned: dict[int, int] = attrs.Factory(dict)  # chunk -> size of intents made durable
    claim: Lease | None = None  # this worker's claim on the account in a shared run
    claimed: bool = False  # this worker claimed it (once at most)
    elsewhere: bool = False  # another worker finished it while this one ran
    final: asyncio.Event | None = None  # set once the account is final (made if waited for)
    over: bool = False  # the account is final

    @property
    def account_id(self) -> str:
        return self.request.account_id

    @property
    def short(self) -> int:
        """IPs still to obtain."""
        return self.request.count - (len(self.ips) - len(self.excess))

    def end(self) -> None:
        """The account is final."""
        self.over = True
        if self.final is not None:
            self.final.set()

    def result(self) -> AccountResult:
        r = self.request
        return AccountResult(r.account_id, r.region, r.count, tuple(self.ips), self.error,
                             self.attempts, self.requests, self.reconciled,
                             tuple(self.excess), tuple(self.released), self.finished,
                             self.resumed)

    def resume(self, state: AccountState, now: float) -> None:
        """Take up what the journal holds of the account."""
        self.excess = list(state.excess)
        self.released = list(state.released)
        if state.finished:
            self.finished = True
            self.ips = list(state.final_ips)
            return
        self.ips = list(dict.fromkeys((*state.obtained, *state.excess)))
        self.next_chunk = 1 + max((c.number for c in state.chunks), default=-1)
        self.ambiguous_at = state.last_ambiguous_at
        if state.marker_known:
            self.marker = frozenset() if state.marker is None else frozenset({state.marker})
            self.recover = self.resumed = True
            if state.open_chunks:  # a write of unknown outcome: it may still land
                self.ambiguous_at = max(self.ambiguous_at or now, now)

    def absorb(
        self, call: asyncio.Future[Any], trace: CallTrace, now: float
    ) -> tuple[tuple[str, ...], bool]:
        """Record a finished chunk: the IPs it obtained (new to the account), and whether it
        met an ambiguous failure."""
        self.requests += 1
        self.attempts += trace.attempts or 1
        exc = call.exception()
        if exc is None:
            ips = tuple(getattr(call.result(), "ips", ()))
            self.known = frozenset(ips)
            self.known_token = trace.lease_token
            self.reconciled += trace.reconciled
        else:
            self.error = exc
            ips = tuple(exc.found) if isinstance(exc, AmbiguousResultError) else ()
        ambiguous = trace.ambiguous or isinstance(exc, AmbiguousResultError)
        if ambiguous:
            self.ambiguous_at = now
        new = tuple(ip for ip in dict.fromkeys(ips) if ip not in self.ips)
        self.ips.extend(new)
        return new, ambiguous


def _handed_over(error: BaseException | None) -> bool:
    """Whether a claimed account's error says its claim (or its write lease) was lost to
    another holder, rather than that the coordinator could not be reached."""
    return isinstance(error, LeaseLostError) and not isinstance(
        error, CoordinatorUnavailableError)


def claim_key(run_id: str, account_id: str) -> str:
    """The key of a worker's claim on an account of a shared run (a coordinator lease)."""
    return f"bulk:{len(run_id)}:{run_id}:{account_id}"


def _plan(first: int, count: int) -> list[tuple[int, int]]:
    """(chunk number, size) of the requests that obtain `count` IPs, from chunk `first` on."""
    sizes = [CHUNK] * (count // CHUNK) + ([count % CHUNK] if count % CHUNK else [])
    return list(enumerate(sizes, first))


def _validated(requests: Iterable[ProvisionRequest]) -> list[ProvisionRequest]:
    items = list(requests)
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, ProvisionRequest):
            raise ValidationError(f"requests[{index}]",
                                  f"must be a ProvisionRequest, not {type(item).__name__}")
        if item.account_id in seen:
            raise ValidationError(f"requests[{index}].account_id",
                                  f"{item.account_id!r} appears twice; give each account once")
        seen.add(item.account_id)
    return items


def _check_journal(journal: object, run_id: object, release_excess: object) -> str | None:
    from .journal import Journal

    if journal is not None and not isinstance(journal, str | os.PathLike | Journal):
        raise ValidationError("journal", f"must be a path or a Journal, not {journal!r}")
    if not isinstance(release_excess, bool):
        raise ValidationError("release_excess", f"must be True or False, not {release_excess!r}")
    if run_id is None:
        return None
    if journal is None:
        raise ValidationError("run_id", "names a run in a journal: give journal= as well")
    return Journal.check_run_id(run_id)


async def run_bulk(
    port: Provisioner,
    requests: Iterable[ProvisionRequest],
    *,
    concurrency: int,
    on_progress: ProgressCallback | None,
    options: RequestOptions,
    journal: str | os.PathLike[str] | Journal | None = None,
    run_id: str | None = None,
    audit_delay: float,
    release_excess: bool = False,
) -> BulkResult:
    """Run a bulk provisioning (see the module docstring)."""
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValidationError("concurrency", f"must be an integer of at least 1: {concurrency!r}")
    if options:
        check_options(options)  # a bad option is the caller's error, not every account's
    delay = check_delay(audit_delay)
    run_id = _check_journal(journal, run_id, release_excess)
    items = _validated(requests)
    bulk = _Bulk(port, items, concurrency, on_progress, delay, release_excess)
    if journal is None:
        return await bulk.run(None, None, {})
    run_id = run_id or _bulk_journal.run_digest(items)
    async with _bulk_journal.opened(journal) as opened:
        states = await _bulk_journal.preflight(opened, run_id, items)  # before any write
        return await bulk.run(opened, run_id, states)


class _Bulk:
    """One bulk run: its accounts, workers, audits and journal."""

    def __init__(
        self,
        port: Provisioner,
        requests: list[ProvisionRequest],
        concurrency: int,
        on_progress: ProgressCallback | None,
        audit_delay: float,
        release_excess: bool,
    ) -> None:
        self.port = port
        self.runs = [_AccountRun(r) for r in requests]
        self.concurrency = concurrency
        self.on_progress = on_progress
        self.audit_delay = audit_delay
        self.release_excess = release_excess
        self.stop = asyncio.Event()
        self.recorder = _bulk_journal.Recorder(None, None, self.stop)
        self.listings = asyncio.Semaphore(concurrency)  # audits list at most this many at once
        self.turns = asyncio.Semaphore(concurrency)  # accounts at work (not waiting) at once

    async def run(
        self, journal: Journal | None, run_id: str | None, states: Mapping[str, AccountState]
    ) -> BulkResult:
        self.recorder = _bulk_journal.Recorder(journal, run_id, self.stop)
        self.states = states
        now = self.port.wall_clock()
        for run in self.runs:
            if (state := states.get(run.account_id)) is not None and state.finished:
                run.resume(state, now)  # the others are resumed under their claim
        try:
            await self.pass_over(self.runs)
            if journal is not None:
                await self.sweep(journal)
        finally:
            await self.recorder.flush()  # the run is not over before its records are durable
        for account_id, failure in self.recorder.failures.items():
            run = next(r for r in self.runs if r.account_id == account_id)
            run.error = run.error or failure
        if (unsynced := self.recorder.sync_failure) is not None:
            for run in self.runs:  # their last records may not have reached the disk
                run.error = run.error or unsynced
        return BulkResult(tuple(run.result() for run in self.runs if not run.elsewhere), run_id,
                          tuple(run.account_id for run in self.runs if run.elsewhere))

    async def pass_over(self, runs: list[_AccountRun]) -> None:
        """Take up each of `runs` once: ``concurrency`` at work at a time, and as many
        again under way while some wait (see ``_turns``)."""
        pending = iter(runs)
        async with asyncio.TaskGroup() as group:

            async def worker() -> None:
                for run in pending:  # shared by all workers: each run is taken once
                    if self.stop.is_set():
                        return
                    async with Turn(self.turns) as turn:
                        _turns.CURRENT.set(turn)  # (this worker's context: its calls see it)
                        await self.take(run, group)
                    _turns.CURRENT.set(None)

            for _ in range(min(UNDER_WAY * self.concurrency, len(runs))):
                group.create_task(worker())

    async def sweep(self, journal: Journal) -> None:
        """A shared run: until every account of the run is finished, wait for those other
        workers hold and take over any whose claim frees (its worker died, or gave up)."""
        poll = min(max(self.port.lease_ttl / 4, 0.05), 1.0)
        while not self.stop.is_set():
            waiting = [run for run in self.runs if not (run.claimed or run.finished
                                                        or run.elsewhere)]
            if not waiting:
                return
            await self.port.sleep(poll)
            try:
                states = await journal.load(self.recorder.run_id)
            except SendGridError as exc:
                self.fail(waiting, exc)
                return
            for run in waiting:
                state = states.get(run.account_id)
                run.elsewhere = state is not None and state.finished
            await self.pass_over([run for run in waiting if not run.elsewhere])

    def fail(self, runs: list[_AccountRun], exc: BaseException) -> None:
        """The run cannot go on (the journal or the coordinator failed): stop it, and give
        `exc` to the accounts it never took up."""
        self.stop.set()
        for run in runs:
            run.error = run.error or exc

    async def take(self, run: _AccountRun, group: asyncio.TaskGroup) -> None:
        """Provision one account: with a journal, under this worker's claim on it in the run
        (so that workers sharing the run split the accounts), from its state in the journal
        as it is once claimed; the claim is held until the account is final and recorded."""
        journal = self.recorder.journal
        if journal is None or (run.finished and not self.release_excess):
            await self.provision(run, group)
            return
        key = claim_key(self.recorder.run_id, run.account_id)
        try:
            quick = self.port.try_claim(key)  # uncontended, in process: no await, no coroutine
            if quick is not None:
                try:
                    run.claimed = True
                    await self.provision_claimed(run, quick, journal, group)
                finally:
                    # held until its records are stored, as below, without waiting for it:
                    # released as the journal answers (at once if nothing is pending)
                    self.recorder.when_settled(run.account_id, quick.release_now)
            else:
                async with self.port.claim(key) as held:
                    run.claimed = True
                    await self.provision_claimed(run, held, journal, group)
                    _turns.over()  # another account works while this one's records are stored
                    await self.recorder.settle(run.account_id)  # durable before another may
                    # claim it
        except RequestTimeoutError:
            if run.claimed:
                raise
            return  # another worker holds it: the sweep comes back to it
        except LeaseLostError as exc:  # the coordinator is unavailable: no write may go
            if run.claimed:
                raise
            self.fail([run], exc)
            return
        if run.error is not None and _handed_over(run.error) and not self.stop.is_set():
            # this worker paused past its claim and another took the account over: not a
            # failure of the run; the sweep waits for it like any account another holds
            index = next(n for n, other in enumerate(self.runs) if other is run)
            self.runs[index] = _AccountRun(run.request)

    async def provision_claimed(
        self, run: _AccountRun, held: Lease, journal: Journal, group: asyncio.TaskGroup
    ) -> None:
        state = self.states.get(run.account_id)
        if held.token != 1 and not run.finished:
            # claimed before (by another worker, or an earlier one of ours): what it did is
            # in the journal. The first holding ever finds what the preflight read.
            r = run.request
            try:
                state = await journal.begin_account(self.recorder.run_id, r.account_id,
                                                    region=r.region, count=r.count)
            except SendGridError as exc:
                self.fail([run], exc)
                return
            if state.finished:
                run.elsewhere = True
                return
        if state is not None and not run.finished:
            run.resume(state, self.port.wall_clock())
        run.claim = held
        await self.provision(run, group)
        if not run.over:  # its audit runs: the claim is held until it is final
            run.final = asyncio.Event()
            await run.final.wait()

    def report(self, event: BulkProgress) -> None:
        if self.on_progress is None:
            return
        try:
            self.on_progress(event)
        except Exception:  # the caller's callback must not lose the run's results
            logger.exception("on_progress raised; the bulk run goes on",
                             extra={"sendgrid_ipam_event": "progress_error"})

    # ---------------------------------------------------------------- one account

    async def provision(self, run: _AccountRun, group: asyncio.TaskGroup) -> None:
        if run.finished:
            self.report(BulkProgress(run.account_id, tuple(run.ips), run.result(), found=True))
            if self.release_excess and set(run.excess) - set(run.released):
                group.create_task(self.audit(run))
            else:
                run.end()
            return
        if run.ips:
            self.report(BulkProgress(run.account_id, tuple(run.ips), found=True))
        if run.recover and not await self.resync(run):
            self.finish(run)
            return
        new: tuple[str, ...] = ()
        while run.error is None and run.short > 0 and not self.stop.is_set():
            if new:
                self.report(BulkProgress(run.account_id, new))
            new = await self.write(run)
            if (isinstance(run.error, AmbiguousResultError) and run.resyncs < MAX_RESYNCS
                    and not self.stop.is_set()):
                self.report(BulkProgress(run.account_id, new))
                new = ()
                run.resyncs += 1
                assert run.ambiguous_at is not None
                async with _turns.idle():
                    await wait_until(run.ambiguous_at + self.audit_delay, self.port.wall_clock,
                                     self.port.sleep)
                error, run.error = run.error, None
                if not await self.resync(run):
                    run.error = error
        if run.ambiguous_at is not None and run.marker is not None and not self.stop.is_set():
            if new:
                self.report(BulkProgress(run.account_id, new))
            self.recorder.later(run.account_id)  # durable while the audit waits
            group.create_task(self.audit(run))
        else:
            self.finish(run, new)

    async def write(self, run: _AccountRun) -> tuple[str, ...]:
        """One chunk: its intent durable first (under the lease), then its POST; returns
        the IPs it obtained."""
        request = run.request
        size = min(CHUNK, run.short)
        if run.planned and run.planned.get(run.next_chunk) != size:
            # the plan went astray (a resync found other IPs): the planned intents stay
            # unsent, and the chunks go on with numbers after them, an intent each
            run.next_chunk = max(run.planned) + 1
            run.planned.clear()
        chunk = run.next_chunk
        run.next_chunk += 1
        recorded = False

        async def before_send(known: frozenset[str]) -> None:
            nonlocal recorded
            if run.claim is not None and run.claim.losable:
                await run.claim.check()  # this worker's claim still holds: nobody took over
            if run.marker is None:
                run.marker = known
                # the intents of every chunk the account should need, with the marker: one
                # durable step before the first POST, none before the others (an intent
                # never sent only makes a rerun list the account, as it does anyway)
                plan = _plan(chunk, run.short)
                await self.recorder.first_write(run.account_id, next(iter(known), None), plan)
                run.planned = dict(plan)
            elif run.planned.pop(chunk, None) is None:
                await self.recorder.before_write(run.account_id, chunk, size)
            recorded = True

        # The account's last chunk leaves a resend's VERIFY to the account's audit: nothing
        # is bought after it. An earlier chunk verifies: what it finds counts towards the rest.
        trace = CallTrace(audited=size == run.short)
        call = asyncio.ensure_future(self.port.add(
            run.account_id, size, request.region, run.known, run.known_token, trace,
            before_send))
        try:
            await asyncio.wait([call])  # shields the write: cancelling us does not abandon it
        except asyncio.CancelledError:
            self.stop.set()
            while not call.done():  # however often we are cancelled, see the write through
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait([call])
            self.finish(run, self.absorb(run, call, trace, chunk, recorded))  # no write follows
            raise
        return self.absorb(run, call, trace, chunk, recorded)

    def absorb(self, run: _AccountRun, call: asyncio.Future[Any], trace: CallTrace,
               chunk: int, recorded: bool) -> tuple[str, ...]:
        """Take in a finished chunk and record it behind the run; returns its new IPs."""
        now = self.port.wall_clock()
        new, ambiguous = run.absorb(call, trace, now)
        if _bulk_journal.journal_failure(run.error):
            self.stop.set()  # the journal failed before a POST: no write may go without it
        if recorded:
            self.recorder.defer(run.account_id, Outcome(chunk, new))
        if ambiguous:  # written at once: a rerun must know to audit the account
            self.recorder.later(run.account_id, Ambiguous(now))
        return new

    async def resync(self, run: _AccountRun) -> bool:
        """List the account down to its marker: what is above it is obtained. False: failed."""
        assert run.marker is not None
        try:
            listing = await self.port.above_marker(
                run.account_id, run.marker, frozenset({run.request.region}))
        except SendGridError as exc:
            run.error = exc
            return False
        run.recover = False
        new = tuple(ip for ip in reversed(listing.held) if ip not in run.ips)  # oldest first
        run.ips.extend(new)
        run.known, run.known_token = listing.newest, listing.token
        if new:
            self.report(BulkProgress(run.account_id, new, found=True))
        return True

    async def audit(self, run: _AccountRun) -> None:
        """List the account for late writes once the delay has passed; then finish it."""
        port, account_id = self.port, run.account_id
        last = run.ambiguous_at
        if last is not None and run.marker is not None:
            await wait_until(last + self.audit_delay, port.wall_clock, port.sleep)
            async with self.listings:
                try:
                    listing = await port.above_marker(
                        account_id, run.marker, frozenset({run.request.region}))
                except SendGridError as exc:
                    run.error = run.error or exc
                    self.finish(run)
                    return
            self.count_excess(run, listing.held)
            port.settled(account_id, last)
        if self.release_excess:
            await self.release(run)
        self.finish(run)

    def count_excess(self, run: _AccountRun, held: tuple[str, ...]) -> None:
        """Report what the listing found unreported, and mark what is beyond the count."""
        reported = set(run.ips)
        unreported = tuple(ip for ip in held if ip not in reported)  # newest first
        run.ips.extend(reversed(unreported))
        over = len(run.ips) - run.request.count - len(run.excess)
        if over > 0:
            marked = set(run.excess)
            # the unreported ones first (late writes), then the newest reported ones
            candidates = [*unreported, *(ip for ip in held if ip in reported)]
            new = [ip for ip in candidates if ip not in marked][:over]
            run.excess.extend(new)
            self.port.found_excess(len(new))
            self.recorder.later(run.account_id, Excess(tuple(new)))
        if unreported:
            self.report(BulkProgress(run.account_id, tuple(reversed(unreported)), found=True))

    async def release(self, run: _AccountRun) -> None:
        """Remove the account's excess IPs (those not released yet)."""
        todo = tuple(ip for ip in run.excess if ip not in set(run.released))
        if not todo:
            return
        removed, error = await self.port.release(run.account_id, todo)
        run.released.extend(removed)
        if removed:
            self.recorder.later(run.account_id, Released(removed))
        if error is not None:
            run.error = run.error or error

    def finish(self, run: _AccountRun, new: tuple[str, ...] = ()) -> None:
        """The account is final: report it (with `new`, the IPs its last write obtained),
        and record it finished if it got its count."""
        if run.error is not None and run.claim is not None and _handed_over(run.error):
            # another worker took the account over (this one paused past its claim): the
            # account's journal is the taker's now, and it lists the account for whatever
            # this worker's last write bought (its intent is durable): nothing more of ours
            self.recorder.drop(run.account_id)
            if new:
                self.report(BulkProgress(run.account_id, new))
            run.end()
            return
        if run.error is None and run.short <= 0 and not run.finished:
            self.recorder.later(run.account_id, Finish(tuple(run.ips)))
        else:
            self.recorder.later(run.account_id)
        if not run.finished:
            self.report(BulkProgress(run.account_id, new, run.result()))
        run.end()
