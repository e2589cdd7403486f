"""Every path of a failed call, in one place: retries, and the ambiguous-write flow.

A call's first attempt is sent by the engine; only when it fails does a `Flow` take over.
tenacity (``retry.py``) decides whether to retry and how long to wait; this module decides
what each further attempt *does*, and how the call ends. For a write that is not safe to
resend (AddAccountIps, CreateIpPool, AddIp), with its reconciler::

    attempt 1 ── ok ───────────────────────────────────────────────────────────► result
        │ failed
        ▼
    retryable, attempts > 1, and (resend-safe, checkable, or surely not landed)?
        │ no ───────────────────────────────────────────────────────────────────► END
        ▼ yes: tenacity waits (backoff, Retry-After, and `settle` after ambiguity)
    attempt n:
        previous failure ambiguous and the write not resend-safe?
            CHECK ── took effect ─────────────────────────────────► result (reconciled)
                  ── unknown (the check's reads failed) ─► fail again: wait, CHECK again
                  ── no effect ─► RESEND
        SEND ── ok, after an ambiguous failure ─► VERIFY ── ok ───────────► result
             │                                          └─ both landed ─► AmbiguousResultError
             ├─ a delete's "not found" after ambiguity ───────────────────► done (deleted)
             ├─ an echo ("already exists") after a resend ─► CHECK (final) ─► result / error
             └─ failed ─► tenacity decides again, or END
        (No VERIFY for a caller that audits the account afterwards: `CallTrace.audited`.)
    END (retries stopped: attempts, deadline, budget, a long rate-limit wait):
        last failure ambiguous, the write not resend-safe and checkable?
            settle (within the deadline), CHECK ── took effect ─► result (reconciled)
                                                ── no effect ───► the error stands
                                                ── unknown ─────► AmbiguousResultError
        otherwise the error stands.

Every `AmbiguousResultError` raised here carries, in ``.found``, every item the call saw in
hand (the IPs of a 201 whose verification failed, say) besides what the check found, so
nothing bought goes unreported. All checks run within the call's deadline.
"""

from __future__ import annotations

import enum
from typing import Any, Protocol

import attrs

from .._turns import idle
from ..coordination import LeaseLostError
from ..errors import (
    AmbiguousResultError,
    APIError,
    AttemptRecord,
    BadRequestError,
    NotFoundError,
    SendGridError,
)
from ..operations import Operation
from ..retry import build_retrying, describe, is_ambiguous, is_retryable, logger
from .attempt import Attempt
from .deadline import OUTER_DEADLINE

__all__ = ["CallTrace", "Flow", "Reconciler", "Took"]


class Reconciler(Protocol):
    """Finds out whether a failed write that is not safe to resend took effect."""

    prepares: bool

    @property
    def needs_token(self) -> bool:
        """Whether `prepare` uses the lease's token (else the lease may be deferred)."""

    async def prepare(self, lease_token: int | None) -> None:
        """Note what is needed to recognise the write's effect later (before attempt 1).

        ``lease_token`` is the token of the write lease held for the call, if any.
        """

    async def resolve(self) -> Any | None:
        """The write's result if it took effect, None if it did not; raise if unclear."""

    async def verify(self, result: Any) -> None:
        """After a resend that followed an ambiguous failure: raise if both took effect."""

    def is_echo(self, exc: SendGridError) -> bool:
        """True when ``exc`` may be our own earlier, ambiguous attempt answering back."""

    def items(self, result: Any) -> tuple[str, ...]:
        """What a result holds that the caller must never lose (the IPs bought)."""


@attrs.define
class CallTrace:
    """What one call went through (filled in for callers that ask, such as bulk runs)."""

    attempts: int = 0
    reconciled: bool = False
    records: tuple[AttemptRecord, ...] = ()
    lease_token: int | None = None
    """The token of the write lease the call held (None: it held none)."""
    ambiguous: bool = False
    """Whether a write that failed in a way that may have taken effect may still land (for
    the audit): not once a check found it landed, with no resend after it."""
    audited: bool = False
    """Set by a caller that lists the account down to the call's marker whenever the call
    ends ``ambiguous`` (a bulk run's audit, ``audit_delay`` later) and buys nothing more
    for it meanwhile: a resend's VERIFY would only see earlier what that listing sees, so
    the call skips it."""


class Took(enum.Enum):
    """What a CHECK found out about a failed write."""

    EFFECT = "took effect"
    NO_EFFECT = "no effect"
    UNKNOWN = "unknown"


class Flow:
    """One call's way from its failed first attempt to its end (see the module docstring)."""

    __slots__ = (
        "attempt", "check_failure", "errors", "in_hand", "op", "reconciler", "records", "resent",
        "trace",
    )

    def __init__(
        self,
        op: Operation,
        attempt: Attempt,
        reconciler: Reconciler | None,
        trace: CallTrace | None,
    ) -> None:
        self.op: Operation = op
        self.attempt: Attempt = attempt
        self.reconciler: Reconciler | None = reconciler
        self.trace: CallTrace | None = trace
        self.errors: list[SendGridError] = []  # each failed attempt's error, in order
        self.resent: bool = False  # a resend followed an ambiguous failure
        self.in_hand: tuple[str, ...] = ()  # items a reply handed us that a check then lost
        self.check_failure: SendGridError | None = None  # why the last CHECK was UNKNOWN
        self.records: list[AttemptRecord] = []  # each retried attempt's, from tenacity

    # ---------------------------------------------------------------- from the first failure

    async def after(self, first: SendGridError) -> Any:
        """Carry the call on from its failed first attempt to its result or final error."""
        try:
            return await self._after(first)
        finally:
            # Errors' tracebacks hold frames that hold this flow (and `first`): let go of
            # every error it holds, or they are left in cycles for the garbage collector.
            self.errors.clear()
            self.check_failure = None
            del first

    async def _after(self, first: SendGridError) -> Any:
        op, policy = self.op, self.attempt.policy
        self.errors.append(first)
        self.attempt.engine.coordinator.unanswered(self.attempt.endpoint)  # a lost probe?
        if self.trace is not None and is_ambiguous(first):
            self.trace.ambiguous = True
        if not (is_retryable(first) and policy.max_attempts > 1 and (
                op.resend_safe or self.reconciler is not None or not is_ambiguous(first))):
            return await self.end(first, (_record(1, first),))
        engine = self.attempt.engine
        records = self.records
        retrying = build_retrying(
            operation=op.operation_id, policy=policy, deadline=self.attempt.deadline,
            budget=engine.coordinator.budget, records=records, clock=engine.clock,
            wall_clock=engine.wall_clock, sleep=engine.sleep, rng=engine.rng,
            settle=not op.resend_safe,
        )
        try:
            result = await retrying.after(first, self.next_attempt)
        except SendGridError as exc:
            exc.operation = op.operation_id
            final = () if isinstance(exc, AmbiguousResultError) else (
                _record(len(records) + 1, exc),)
            attempts = (*records, *final)
            if reason := retrying.stop.reason:
                exc.add_note(f"sendgrid-ipam gave up after {len(attempts)} attempt(s): "
                             f"{reason}")
            return await self.end(exc, attempts)
        finally:
            del first
        if self.trace is not None:
            self.trace.attempts = len(records) + 1
            self.trace.reconciled = bool(getattr(result, "reconciled", False))
            self.trace.records = tuple(records)
        return result

    # ---------------------------------------------------------------- attempts 2, 3, ...

    async def next_attempt(self, number: int) -> Any:
        """Attempt ``number``: CHECK first if the last failure may have landed, then SEND."""
        op, reconciler = self.op, self.reconciler
        if (call := self.attempt.call) is not None:
            call.retry(number - 1, self.records[-1].waited if self.records else 0.0,
                       self.errors[-1])
        previous_ambiguous = is_ambiguous(self.errors[-1])
        if not op.resend_safe and previous_ambiguous:
            took, found = await self.check(number - 1)
            if took is Took.UNKNOWN:
                self.check_failure = None  # checked again after the wait
                # Not knowing is no reason to resend, nor to give up while attempts
                # remain: fail as before, so tenacity waits, and check again.
                raise self.errors[-1] from None
            if took is Took.EFFECT:
                self.landed()
                return found
            self.resent = True
        try:
            result = await self.attempt.send(number)
        except SendGridError as exc:
            self.errors.append(exc)
            self.attempt.engine.coordinator.unanswered(self.attempt.endpoint)
            if self.trace is not None and is_ambiguous(exc):
                self.trace.ambiguous = True
            if op.deletes and previous_ambiguous and _not_found(exc):
                return None  # the ambiguous attempt did delete it
            if self.resent and reconciler is not None and reconciler.is_echo(exc):
                took, found = await self.check(number)
                if took is Took.UNKNOWN:
                    raise self.unknown()  # noqa: B904 (caused by the check's error)
                if took is Took.EFFECT:
                    return found
            raise
        if self.resent and reconciler is not None and (self.trace is None
                                                        or not self.trace.audited):
            # A slow earlier attempt may have landed too. Verifying only finds it (nothing
            # is bought because of it); a caller's audit lists the account later and finds
            # it then, with any later landing besides.
            await self.verify(result)
        return result

    async def verify(self, result: Any) -> None:
        """VERIFY after a resend; a failed verification keeps the result's items in hand."""
        assert self.reconciler is not None
        context = OUTER_DEADLINE.set(self.attempt.deadline)  # its reads end with the call
        try:
            await self.confirm_lease()
            await self.reconciler.verify(result)
            await self.confirm_lease()
        except AmbiguousResultError as exc:
            exc.found = _union(self.reconciler.items(result), exc.found)
            raise
        except SendGridError as exc:
            self.in_hand = self.reconciler.items(result)
            raise AmbiguousResultError(
                f"{self.op.operation_id} was resent after an ambiguous failure and succeeded, "
                "but checking whether the earlier attempt landed too failed: "
                f"{describe(exc)}", found=self.in_hand,
            ) from None
        finally:
            OUTER_DEADLINE.reset(context)

    # ---------------------------------------------------------------- END

    async def end(self, exc: SendGridError, attempts: tuple[AttemptRecord, ...]) -> Any:
        """End a call that will not be retried: raise its error, unless a write that may
        have taken effect did (whatever stopped the retries: attempts, deadline, budget)."""
        try:
            exc.attempts = attempts
            if self.trace is not None:
                self.trace.attempts = len(attempts)
                self.trace.records = attempts
            if isinstance(exc, AmbiguousResultError):
                exc.found = _union(self.in_hand, exc.found)
                raise exc
            if isinstance(exc, LeaseLostError) and any(map(is_ambiguous, self.errors)):
                # Another writer may hold the account now: no check can tell its work from
                # ours, so the earlier, ambiguous attempt stays unknown.
                raise AmbiguousResultError(
                    f"{self.op.operation_id} failed ambiguously and then lost its write lease "
                    "before it could check", found=self.in_hand,
                ) from exc
            # Checked if any attempt failed ambiguously, not only the last: attempt 1 may have
            # landed although the call ends on, say, a 429.
            if self.op.resend_safe or self.reconciler is None or not (
                    is_ambiguous(exc) or any(map(is_ambiguous, self.errors))):
                raise exc
            engine = self.attempt.engine
            settle = min(self.attempt.policy.settle, self.attempt.deadline - engine.clock())
            if settle > 0:
                async with idle():
                    await engine.sleep(settle)
                if (call := self.attempt.call) is not None:
                    call.waited("settle", settle)
            took, found = await self.check(len(attempts))
            if took is Took.UNKNOWN:
                raise self.unknown()
            if took is Took.NO_EFFECT:
                raise exc  # checked: it took no effect, so the error stands
            if self.trace is not None:
                self.trace.reconciled = True
            self.landed()
            return found
        finally:
            del exc  # raised from here, it would hold this frame, which holds it: a cycle

    def landed(self) -> None:
        """A check found the write's effect, and no resend followed an ambiguous failure:
        the one write sent has landed, and cannot land again later, so the call leaves
        nothing for an audit to look for."""
        if self.trace is not None and not self.resent:
            self.trace.ambiguous = False

    # ---------------------------------------------------------------- CHECK

    async def check(self, attempt: int) -> tuple[Took, Any]:
        """CHECK whether the failed write took effect: (EFFECT, result), (NO_EFFECT, None),
        or (UNKNOWN, None) with the check's error in ``check_failure``. A check that finds
        something other than what was asked raises `AmbiguousResultError` (final)."""
        op = self.op
        if self.reconciler is None:
            raise AmbiguousResultError(
                f"{op.operation_id} failed in a way that may have taken effect, and it is "
                "not safe to send again", found=self.in_hand,
            )
        context = OUTER_DEADLINE.set(self.attempt.deadline)  # its reads end with the call
        try:
            await self.confirm_lease()
            found = await self.reconciler.resolve()
            await self.confirm_lease()  # what it read was ours alone to read
        except AmbiguousResultError as exc:
            exc.found = _union(self.in_hand, exc.found)
            raise  # the check found something other than what was asked: final
        except SendGridError as exc:
            self.check_failure = exc
            if (call := self.attempt.call) is not None:
                call.reconcile(attempt, Took.UNKNOWN.value)
            return Took.UNKNOWN, None
        finally:
            OUTER_DEADLINE.reset(context)
        took = Took.NO_EFFECT if found is None else Took.EFFECT
        logger.info(
            "reconciled %s after attempt %d: %s", op.operation_id, attempt, took.value,
            extra={
                "sendgrid_ipam_event": "reconcile",
                "operation": op.operation_id,
                "attempt": attempt,
                "took_effect": found is not None,
            },
        )
        if (call := self.attempt.call) is not None:
            call.reconcile(attempt, took.value)
        return took, found

    async def confirm_lease(self) -> None:
        """A check reads the account as its lease's holder: one that may have lost it (a
        shared coordinator) confirms it before and after, or the check could take another
        writer's IPs for its own; losing it makes the write's outcome unknown."""
        lease = self.attempt.lease
        if lease is None:
            return
        try:
            await lease.check()
        except LeaseLostError as exc:
            raise AmbiguousResultError(
                f"{self.op.operation_id} lost its write lease while checking whether a failed "
                "attempt took effect", found=self.in_hand,
            ) from exc

    def unknown(self) -> AmbiguousResultError:
        """The public error once no further check will be made (caused by the check's)."""
        failure = self.check_failure
        error = AmbiguousResultError(
            f"{self.op.operation_id} may have taken effect, and checking failed: "
            f"{'unknown' if failure is None else describe(failure)}", found=self.in_hand,
        )
        error.__cause__ = failure
        return error


def _union(first: tuple[str, ...], second: tuple[str, ...]) -> tuple[str, ...]:
    return first + tuple(item for item in second if item not in first)


def _not_found(exc: SendGridError) -> bool:
    """The API's "not found": a 404, or a 400 whose details say so (IPAM has no 404)."""
    if isinstance(exc, NotFoundError):
        return True
    return isinstance(exc, BadRequestError) and any(
        "not found" in detail.message.lower() for detail in exc.errors
    )


def _record(number: int, exc: BaseException) -> AttemptRecord:
    return AttemptRecord(number, describe(exc), exc.status if isinstance(exc, APIError) else None)
