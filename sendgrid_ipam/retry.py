"""When and how long to retry: `RetryPolicy`, the client-wide `RetryBudget`, and tenacity.

Retried: 429, 500, 502, 503 and 504 replies, transport errors (connection lost, timeouts) and
2xx replies that cannot be decoded. Never another 4xx.

Waits honour ``Retry-After`` (seconds or an HTTP date), then ``X-RateLimit-Reset`` on a 429,
and otherwise follow capped exponential backoff with full jitter. No sleep is started that
would end past the call's deadline; a rate-limit wait longer than ``max_rate_limit_wait``
ends the call with `RateLimitError` (its ``retry_at`` says when the window opens).

An *ambiguous* failure is one after which a write may have taken effect: a 5xx, a reply
that cannot be decoded, a timeout or a connection lost after the request may have been sent.
Operations that are not safe to resend are only resent after the client has checked that
such a failure did not take effect (see ``reconcile.py``).

The retry machinery costs nothing on the happy path: the tenacity ``AsyncRetrying`` is built
only after a first attempt has failed.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from .errors import APIError, AttemptRecord, DecodeError, RateLimitError, TransportError

__all__ = ["RETRYABLE_STATUSES", "RetryBudget", "RetryPolicy", "is_ambiguous", "is_retryable"]

logger = logging.getLogger("sendgrid_ipam")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{attribute.name} must be a number of at least 0, not {value!r}")


def _attempts(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{attribute.name} must be an integer of at least 1, not {value!r}")


@attrs.frozen
class RetryPolicy:
    """How one call retries.

    Args:
        max_attempts: attempts in all, the first included (1 turns retries off).
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
        """The full-jitter backoff before retry ``retry_number`` (1 for the first retry)."""
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
        self.capacity = float(capacity)
        self.refill = float(refill)
        self.available = float(capacity)

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
            delay = self.policy.backoff(retry_state.attempt_number, self.rng)
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

    def __call__(self, retry_state: RetryCallState) -> bool:
        sleep = retry_state.upcoming_sleep
        if retry_state.attempt_number >= self.policy.max_attempts:
            self.reason = "attempts exhausted"
        elif self.clock() + sleep >= self.deadline:
            self.reason = "deadline reached"
        elif self.wait.from_server and sleep > self.policy.max_rate_limit_wait:
            self.reason = "rate-limit wait longer than max_rate_limit_wait"
        elif not self.wait.rate_limited and not self.budget.try_spend():
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
) -> AsyncRetrying:
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

    return AsyncRetrying(
        stop=stop,
        wait=wait,
        retry=retry_if_exception(is_retryable),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )

