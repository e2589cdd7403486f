"""Provisioning IPs for many accounts at once: ``sg.provisioning.bulk_add_ips(...)``.

Each account's count is split into AddAccountIps requests of at most 10, sent one after
another for that account. Each chunk holds the account's write lease, as a single call does,
so a bulk run and single calls on the same account interleave safely. Each chunk's reply
tells the next chunk which IPs are the account's newest — valid as long as nobody else held
the lease in between (its token says so) — so usually only the first chunk costs a marker
GET. Accounts run in parallel, up to ``concurrency`` at once.

Nothing is lost: the run never raises for one account's failure. Every account gets an
`AccountResult` with the IPs it obtained (also when it failed part-way), the error if any,
the attempts made and whether reconciliation was used. If the awaiting task is cancelled, no
new write starts, the writes already in flight are allowed to finish (an abandoned write may
still buy IPs, which would then be unreported), every IP they obtained is reported through
``on_progress``, and the cancellation then propagates.

``ProgressCallback`` is the type of ``on_progress``: a plain function taking a `BulkProgress`.
An exception it raises is logged and the run goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import attrs

from .engine import CallTrace, RequestOptions, check_options
from .errors import AmbiguousResultError, BulkProvisioningError, ValidationError
from .models import AccountIps, ProvisionRequest, Region

__all__ = ["AccountResult", "BulkProgress", "BulkResult", "ProgressCallback"]

CHUNK = 10
"""The most IPs one AddAccountIps request may ask for."""

logger = logging.getLogger("sendgrid_ipam")


@attrs.frozen
class AccountResult:
    """One account's outcome in a bulk run.

    ``ips`` are the IPs the account obtained in this run, also when it failed part-way
    (including IPs an ambiguous failure was found to have added). ``attempts`` counts the
    HTTP attempts of its AddAccountIps requests, ``requests`` the requests themselves;
    ``reconciled`` how many of those were settled by reconciliation.
    """

    account_id: str
    region: str
    requested: int
    ips: tuple[str, ...] = ()
    error: BaseException | None = None
    attempts: int = 0
    requests: int = 0
    reconciled: int = 0

    @property
    def ok(self) -> bool:
        """True when the account obtained every IP asked for."""
        return self.error is None and len(self.ips) == self.requested


@attrs.frozen
class BulkProgress:
    """What one step of a bulk run obtained: ``new_ips`` for ``account_id`` just now.

    ``result`` is set when the account is final (done or failed).
    """

    account_id: str
    new_ips: tuple[str, ...]
    result: AccountResult | None = None


ProgressCallback = Callable[[BulkProgress], None]


class AddIps(Protocol):
    """AddAccountIps for one chunk, as the provisioning resource runs it."""

    def __call__(
        self,
        account_id: str,
        count: int,
        region: Region,
        known: frozenset[str] | None,
        known_token: int | None,
        options: RequestOptions,
        trace: CallTrace | None,
    ) -> Awaitable[AccountIps]: ...


@attrs.frozen
class BulkResult:
    """Every account's outcome, in the order the requests were given, and totals."""

    results: tuple[AccountResult, ...]

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
        """IPs obtained, over all accounts."""
        return sum(len(r.ips) for r in self.results)

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
    error: BaseException | None = None
    attempts: int = 0
    requests: int = 0
    reconciled: int = 0
    known: frozenset[str] | None = None
    known_token: int | None = None

    def result(self) -> AccountResult:
        r = self.request
        return AccountResult(r.account_id, r.region, r.count, tuple(self.ips), self.error,
                             self.attempts, self.requests, self.reconciled)

    def absorb(self, call: asyncio.Future[Any], trace: CallTrace) -> tuple[str, ...]:
        """Record a finished chunk; returns the IPs it obtained."""
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
        self.ips.extend(ips)
        return ips


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


async def run_bulk(
    add: AddIps,
    requests: Iterable[ProvisionRequest],
    *,
    concurrency: int,
    on_progress: ProgressCallback | None,
    options: RequestOptions,
) -> BulkResult:
    """Run a bulk provisioning (see the module docstring)."""
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ValidationError("concurrency", f"must be an integer of at least 1: {concurrency!r}")
    if options:
        check_options(options)  # a bad option is the caller's error, not every account's
    runs = [_AccountRun(r) for r in _validated(requests)]
    stop = asyncio.Event()

    def report(event: BulkProgress) -> None:
        if on_progress is None:
            return
        try:
            on_progress(event)
        except Exception:  # the caller's callback must not lose the run's results
            logger.exception("on_progress raised; the bulk run goes on",
                             extra={"sendgrid_ipam_event": "progress_error"})

    async def provision(run: _AccountRun) -> None:
        request = run.request
        writes = -(-request.count // CHUNK)  # each request obtains its chunk or fails
        while run.error is None and run.requests < writes and not stop.is_set():
            trace = CallTrace()
            size = min(CHUNK, request.count - len(run.ips))
            call = asyncio.ensure_future(add(
                request.account_id, size, request.region, run.known, run.known_token,
                options, trace))
            try:
                await asyncio.wait([call])  # shields the write: cancelling us does not abandon it
            except asyncio.CancelledError:
                stop.set()
                while not call.done():  # however often we are cancelled, see the write through
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait([call])
                new_ips = run.absorb(call, trace)  # no write follows: the account is final
                report(BulkProgress(request.account_id, new_ips, run.result()))
                raise
            new_ips = run.absorb(call, trace)
            if run.error is None and run.requests < writes:
                report(BulkProgress(request.account_id, new_ips))
            else:
                report(BulkProgress(request.account_id, new_ips, run.result()))

    pending = iter(runs)

    async def worker() -> None:
        for run in pending:  # shared by all workers: each run is taken once
            if stop.is_set():
                return
            await provision(run)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, len(runs))):
            group.create_task(worker())
    return BulkResult(tuple(run.result() for run in runs))
