"""When and how long to retry: `RetryPolicy`, the client-wide `RetryBudget`, and tenacity.

Retried: 429, 500, 502, 503 and 504 replies, transport errors (connection lost, timeouts) and
2xx replies that cannot be decoded. Never another 4xx.

Waits honour ``Retry-After`` (seconds or an HTTP date), then ``X-RateLimit-Reset`` on a 429,
and otherwise follow capped exponential backoff with full jitter, except after a 429: that
call resumes at the reset with no backoff on top (the coordinator's pace for the endpoint
adds a little jitter and lets one probe through first; see ``ratelimit.py``). No sleep is
started that would end past the call's deadline; a rate-limit wait longer than
``max_rate_limit_wait`` ends the call with `RateLimitError` (its ``retry_at`` says when the
window opens).

A 429 costs a call nothing: not the retry budget, and not one of its ``max_attempts`` (the
server refused the request, and says when to come back). A call goes on through 429s while
its deadline allows and while it has been rate-limited, from its first 429 to the end of the
next wait, for no longer than ``max_rate_limit_wait`` in all; and at most
`MAX_RATE_LIMITED` times, so that no server can keep a call looping.

An *ambiguous* failure is one after which a write may have taken effect: a 5xx, a reply
that cannot be decoded, a timeout or a connection lost after the request may have been sent.
Operations that are not safe to resend are only resent after the client has checked that
such a failure did not take effect (see ``reconcile.py``).

The retry machinery costs nothing on the happy path: the tenacity engine is built only after
a first attempt has failed, and is handed that failure rather than replaying it. It is
tenacity's ``Retrying`` engine driven from async code (`Retrier`): tenacity decides every
retry and every wait, as ``AsyncRetrying`` would, without wrapping each of its steps in a
coroutine looked up through ``inspect`` on every attempt, as ``AsyncRetrying`` does.
"""

from __future__ import annotations

import logging
import random
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, cast

import attrs
from tenacity import DoSleep, RetryCallState, Retrying, retry_if_exception
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from ._text import shown
from ._turns import idle
from .errors import APIError, AttemptRecord, DecodeError, RateLimitError, TransportError

__all__ = [
    "MAX_RATE_LIMITED", "RETRYABLE_STATUSES", "RetryBudget", "RetryPolicy", "is_ambiguous",
    "is_retryable",
]

logger: logging.Logger = logging.getLogger("sendgrid_ipam")

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

MAX_RATE_LIMITED = 100
"""The most 429s one call goes through (each resumes at the reset) before it gives up.

Time bounds a call already (its deadline, ``max_rate_limit_wait``); this bounds it also
against a server whose 429s ask for no wait at all, with a deadline set very long."""


_MAX_SECONDS = 10.0**9  # some 30 years: past it a value is a mistake (and `clock() + it` may fail)


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if (not isinstance(value, int | float) or isinstance(value, bool)
            or not 0 <= value <= _MAX_SECONDS):
        raise ValueError(f"{attribute.name} must be a number of seconds from 0 to 1e9, "
                         f"not {shown(value)}")


def _attempts(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer of at least 1, not {shown(value)}")


@attrs.frozen
class RetryPolicy:
    """How one call retries.

    Immutable; every field is validated when the policy is made (a `ValueError` names the
    field), and each is also a keyword argument of the constructor.

    Attributes:
        max_attempts: attempts in all, the first included (1 turns retries off); an
            attempt the server refused with 429 is not counted (see the module docstring).
        initial_backoff: the first backoff's upper bound, in seconds; it doubles per retry.
        max_backoff: the cap on one backoff, in seconds.
        deadline: seconds for the whole call, across all attempts and waits.
        max_rate_limit_wait: the longest wait for a rate-limit window the call accepts;
            beyond it the call raises `RateLimitError` at once.
        settle: the least wait, in seconds, between an ambiguous failure of a write that is
            not safe to resend and the check of whether it took effect, so that a write the
            server is still finishing (behind a gateway timeout, say) is seen.
    """

    max_attempts: int = attrs.field(default=4, validator=_attempts)
    initial_backoff: float = attrs.field(default=0.5, validator=_positive)
    max_backoff: float = attrs.field(default=8.0, validator=_positive)
    deadline: float = attrs.field(default=60.0, validator=_positive)
    max_rate_limit_wait: float = attrs.field(default=60.0, validator=_positive)
    settle: float = attrs.field(default=1.0, validator=_positive)

    def backoff(self, retry_number: int, rng: random.Random) -> float:
        """The full-jitter backoff before a retry: uniform from 0 to the capped ceiling.

        Args:
            retry_number: which retry, 1 for the first; the ceiling doubles with each.
            rng: the random generator (the client's, seeded with ``seed=``).
        """
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (retry_number - 1))
        return rng.uniform(0.0, ceiling)


class RetryBudget:
    """A client-wide allowance of retries, so that a dead upstream is not hammered.

    Modelled on botocore's retry quota: the budget starts full with ``capacity`` retries;
    each retry takes one, each successful call puts back ``refill`` (so at the defaults a
    failure rate under about one in six keeps it full). When it is empty, failed calls end
    with their error instead of retrying. Retries after a 429 cost nothing: the server paces
    them (a Retry-After on a 5xx is honoured, but that retry still costs one).
    """

    def __init__(self, capacity: float = 100.0, refill: float = 0.2) -> None:
        if capacity < 0 or refill < 0:
            raise ValueError("capacity and refill must be at least 0")
        self.capacity: float = float(capacity)
        self.refill: float = float(refill)
        self.available: float = float(capacity)

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when it is empty."""
        if self.available < 1.0:
            return False
        self.available -= 1.0
        return True

    def on_success(self) -> None:
        """Credit a successful call."""
        if self.available < self.capacity:
            self.available = min(self.capacity, self.available + self.refill)

    def __repr__(self) -> str:
        return f"RetryBudget(available={self.available:g}, capacity={self.capacity:g})"


def is_retryable(exc: BaseException) -> bool:
    """True for the failures worth another attempt."""
    if isinstance(exc, APIError):
        return exc.status in RETRYABLE_STATUSES
    return isinstance(exc, TransportError | DecodeError)


def is_ambiguous(exc: BaseException) -> bool:
    """True when a write that failed this way may nonetheless have taken effect."""
    if isinstance(exc, APIError):
        return exc.status >= 500
    if isinstance(exc, TransportError):
        return exc.request_sent
    return isinstance(exc, DecodeError)


def describe(exc: BaseException) -> str:
    """A short, secret-free description of a failure for logs and attempt records."""
    if isinstance(exc, APIError):
        return f"HTTP {exc.status}"
    return f"{type(exc).__name__}: {exc}"


def server_delay(exc: BaseException, now: float) -> float | None:
    """The wait the server asked for: Retry-After, or the rate-limit reset of a 429."""
    if not isinstance(exc, APIError) or exc.rate_limit is None:
        return None
    if exc.rate_limit.retry_after is not None:
        return exc.rate_limit.retry_after
    if isinstance(exc, RateLimitError):
        return exc.rate_limit.delay(now)
    return None


@attrs.define
class _Wait(wait_base):
    policy: RetryPolicy
    rng: random.Random
    wall_clock: Callable[[], float]
    settle: float  # the policy's settle for writes that are not safe to resend, else 0
    # Set by each computation, for stop: whether the server asked for the wait, and whether
    # it is a rate-limit wait (which costs no budget).
    from_server: bool = False
    rate_limited: bool = False

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        delay = None if exc is None else server_delay(exc, self.wall_clock())
        self.from_server = delay is not None
        self.rate_limited = isinstance(exc, RateLimitError)
        if delay is None:
            # A 429 that names no reset gets no backoff either: the coordinator holds its
            # endpoint for a while and then lets one probe through (with a little jitter).
            delay = 0.0 if self.rate_limited else self.policy.backoff(
                retry_state.attempt_number, self.rng)
        if self.settle and exc is not None and is_ambiguous(exc):
            delay = max(delay, self.settle)
        return delay


@attrs.define
class _Stop(stop_base):
    policy: RetryPolicy
    wait: _Wait
    deadline: float
    clock: Callable[[], float]
    budget: RetryBudget
    reason: str = ""
    limited: int = 0  # the call's 429s so far (they are not counted as attempts)
    limited_since: float | None = None  # the clock at its first 429

    def __call__(self, retry_state: RetryCallState) -> bool:
        sleep = retry_state.upcoming_sleep
        now = self.clock()
        policy = self.policy
        rate_limited = self.wait.rate_limited
        if rate_limited:
            self.limited += 1
            if self.limited_since is None:
                self.limited_since = now
        if retry_state.attempt_number - self.limited >= policy.max_attempts:
            self.reason = "attempts exhausted"
        elif now + sleep >= self.deadline:
            self.reason = "deadline reached"
        elif self.wait.from_server and sleep > policy.max_rate_limit_wait:
            self.reason = "rate-limit wait longer than max_rate_limit_wait"
        elif rate_limited and (self.limited >= MAX_RATE_LIMITED or now + sleep - (
                self.limited_since or now) > policy.max_rate_limit_wait):
            self.reason = "rate-limited for longer than max_rate_limit_wait"
        elif not rate_limited and not self.budget.try_spend():
            self.reason = "retry budget exhausted"
        else:
            return False
        return True


def build_retrying(
    *,
    operation: str,
    policy: RetryPolicy,
    deadline: float,
    budget: RetryBudget,
    records: list[AttemptRecord],
    clock: Callable[[], float],
    wall_clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[None]],
    rng: random.Random,
    settle: bool = False,
) -> Retrier:
    """The tenacity engine for one call whose first attempt has failed.

    ``records`` receives an `AttemptRecord` for each failed attempt that is retried; with
    ``settle``, an ambiguous failure is followed by at least ``policy.settle`` seconds.
    """
    wait = _Wait(policy, rng, wall_clock, policy.settle if settle else 0.0)
    stop = _Stop(policy, wait, deadline, clock, budget)

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        status = exc.status if isinstance(exc, APIError) else None
        cause = describe(exc) if exc else "unknown"
        records.append(AttemptRecord(state.attempt_number, cause, status, state.upcoming_sleep))
        logger.info(
            "retrying %s after attempt %d (%s); waiting %.2fs",
            operation, state.attempt_number, cause, state.upcoming_sleep,
            extra={
                "sendgrid_ipam_event": "retry",
                "operation": operation,
                "attempt": state.attempt_number,
                "cause": cause,
                "wait": state.upcoming_sleep,
            },
        )

    return Retrier(stop, wait, before_sleep, sleep)


def _no_blocking_sleep(seconds: float) -> None:
    raise RuntimeError("a Retrier's engine must not sleep: Retrier.after awaits the waits")


class Retrier:
    """tenacity's ``Retrying`` engine, driven from async code for a call whose first attempt
    has already failed: ``await retrier.after(first_error, attempt)``.

    The engine is given the first failure as its first outcome, so no attempt is replayed
    to tell it; it then decides, after each failure, whether to retry and how long to wait
    first, exactly as ``AsyncRetrying`` does (its ``__call__`` drives the same ``iter``).
    Waits are awaited with the injected ``sleep``, so tests replace sleeping as with
    ``AsyncRetrying(sleep=...)``.
    """

    __slots__ = ("_retrying", "_sleep")

    def __init__(
        self,
        stop: _Stop,
        wait: _Wait,
        before_sleep: Callable[[RetryCallState], None],
        sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self._sleep = sleep
        self._retrying = Retrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(is_retryable),
            sleep=_no_blocking_sleep,  # never called: `after` awaits each wait itself
            reraise=True,
            before_sleep=before_sleep,
        )

    @property
    def stop(self) -> _Stop:
        """The stop strategy; its ``reason`` says why retrying ended, if it did."""
        stop: _Stop = self._retrying.stop  # type: ignore[assignment]
        return stop

    async def after(self, first: BaseException, attempt: Callable[[int], Awaitable[T]]) -> T:
        """Retry after a first attempt failed with ``first``; ``attempt(n)`` makes attempt
        ``n`` (2, 3, ...). Returns the first result, or raises the last error once the
        engine stops (or at once, for an error that is not retryable)."""
        retrying = self._retrying
        retrying.begin()
        state = RetryCallState(retrying, None, (), {})
        state.set_exception((type(first), first, first.__traceback__))
        failed_at = first.__traceback__  # where the outcome tenacity holds was raised
        info = None
        try:
            while True:
                try:
                    do = retrying.iter(state)  # raises the last error when it is time to stop
                except BaseException as error:
                    if state.outcome is None or state.outcome.exception() is not error:
                        raise  # not an attempt's error: a fault in a wait or stop strategy
                    # The attempt's error, with the traceback of the attempt, not of
                    # tenacity's re-raise (whose frames would hold it in a reference cycle).
                    raise error.with_traceback(failed_at)  # noqa: B904 (keeps its own cause)
                if not isinstance(do, DoSleep):  # (DoAttempt comes only before an outcome)
                    return cast(T, do)  # the outcome was a result: tenacity hands it back
                state.prepare_for_next_attempt()
                async with idle():  # a bulk run's account gives its turn up meanwhile
                    await self._sleep(do)
                try:
                    outcome = await attempt(state.attempt_number)
                except BaseException:  # tenacity decides; CancelledError is never retried
                    info = sys.exc_info()
                    failed_at = info[2]
                    state.set_exception(info)  # type: ignore[arg-type]
                else:
                    state.set_result(outcome)
        finally:
            # Leave no reference cycle for the garbage collector to find: the engine keeps
            # bound methods of itself in its list of steps, and an error raised from here
            # holds this frame, whose locals hold that error.
            retrying.iter_state.reset()
            del state, failed_at, info, first
