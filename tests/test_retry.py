"""The retry policy on its own: fed exceptions, a fake clock and a sleep that never sleeps."""

from __future__ import annotations

import asyncio
import random

import pytest

from sendgrid_ipam import (
    APIError,
    BadRequestError,
    DecodeError,
    RateLimit,
    RateLimitError,
    RequestTimeoutError,
    RetryBudget,
    RetryPolicy,
    ServerError,
    TransportError,
)
from sendgrid_ipam.errors import AttemptRecord, error_class_for
from sendgrid_ipam.retry import (
    MAX_RATE_LIMITED,
    Retrier,
    build_retrying,
    is_ambiguous,
    is_retryable,
    server_delay,
)


class FakeTime:
    """A monotonic clock that only moves when the code under test sleeps."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def wall(self) -> float:
        return 1_800_000_000.0 + self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def api_error(status: int, headers: dict[str, str] | None = None, now: float = 0.0) -> APIError:
    headers = headers or {}
    limits = RateLimit.from_headers(headers, now=now)
    return error_class_for(status)(status, [], "", headers, limits)


async def run(
    outcomes: list[BaseException | str],
    policy: RetryPolicy,
    time: FakeTime,
    budget: RetryBudget | None = None,
    reasons: list[str] | None = None,
) -> tuple[str | BaseException, int, list[AttemptRecord]]:
    """Drive the engine over scripted outcomes; returns (result or error, attempts, records).

    ``reasons`` receives why the engine stopped retrying, if it did."""
    records: list[AttemptRecord] = []
    retrying = build_retrying(
        operation="Test", policy=policy, deadline=time.clock() + policy.deadline,
        budget=budget or RetryBudget(), records=records, clock=time.clock,
        wall_clock=time.wall, sleep=time.sleep, rng=random.Random(7),
    )
    calls = 0

    async def attempt(number: int) -> str:
        nonlocal calls
        assert number == calls + 1, "attempts are numbered from 1, the first made by the caller"
        outcome = outcomes[calls]
        calls += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    try:
        return await attempt(1), calls, records
    except Exception as first:
        try:
            return await retrying.after(first, attempt), calls, records
        except Exception as exc:
            return exc, calls, records
        finally:
            if reasons is not None:
                reasons.append(retrying.stop.reason)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    assert is_retryable(api_error(status))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_never_retried(status: int) -> None:
    assert not is_retryable(api_error(status))


def test_transport_and_decode_errors_are_retryable() -> None:
    assert is_retryable(TransportError("reset"))
    assert is_retryable(RequestTimeoutError("slow"))
    assert is_retryable(DecodeError("bad", status=200, body="{"))


def test_ambiguity() -> None:
    assert is_ambiguous(api_error(502))
    assert not is_ambiguous(api_error(429)), "a 429 was refused, so it took no effect"
    assert is_ambiguous(TransportError("lost after sending"))
    assert not is_ambiguous(TransportError("refused", request_sent=False))
    assert not is_ambiguous(api_error(400))


def test_backoff_is_full_jitter_capped() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=8.0)
    rng = random.Random(1)
    for retry in range(1, 12):
        ceiling = min(8.0, 0.5 * 2 ** (retry - 1))
        waits = [policy.backoff(retry, rng) for _ in range(200)]
        assert all(0.0 <= w <= ceiling for w in waits)
        assert max(waits) > ceiling * 0.8, "full jitter spreads over the whole range"


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="deadline"):
        RetryPolicy(deadline=-1)


async def test_retries_until_success_and_records_each_wait() -> None:
    time = FakeTime()
    result, calls, records = await run(
        [api_error(503), TransportError("reset"), "ok"], RetryPolicy(), time
    )
    assert result == "ok"
    assert calls == 3
    assert [r.outcome for r in records] == ["HTTP 503", "TransportError: reset"]
    assert [r.waited for r in records] == time.sleeps
    assert time.sleeps[0] <= 0.5
    assert time.sleeps[1] <= 1.0


async def test_gives_up_after_max_attempts_with_the_last_typed_error() -> None:
    time = FakeTime()
    errors = [api_error(500), api_error(502), api_error(503), api_error(504)]
    result, calls, _ = await run([*errors, "never"], RetryPolicy(max_attempts=4), time)
    assert isinstance(result, ServerError)
    assert result.status == 504
    assert calls == 4


async def test_4xx_is_raised_at_once() -> None:
    time = FakeTime()
    result, calls, _ = await run([api_error(400), "never"], RetryPolicy(), time)
    assert isinstance(result, BadRequestError)
    assert calls == 1
    assert time.sleeps == []


async def test_retry_after_seconds_is_honoured_before_backoff() -> None:
    time = FakeTime()
    busy = api_error(503, {"Retry-After": "3"})
    result, _, _ = await run([busy, "ok"], RetryPolicy(initial_backoff=0.01), time)
    assert result == "ok"
    assert time.sleeps == [3.0]


async def test_retry_after_http_date_is_honoured() -> None:
    time = FakeTime()
    now = time.wall()
    busy = api_error(503, {"Retry-After": "Thu, 01 Jan 2027 00:00:10 GMT"}, now=now)
    expected = server_delay(busy, now)
    assert expected is not None
    time2 = FakeTime()
    result, _, _ = await run([busy, "ok"], RetryPolicy(max_rate_limit_wait=1e9,
                                                       deadline=1e9), time2)
    assert result == "ok"
    assert time2.sleeps == [pytest.approx(expected)]


@pytest.mark.parametrize("header", ["X-RateLimit-Reset", "x-ratelimit-reset", "X-Ratelimit-Reset"])
async def test_429_waits_for_the_reset_timestamp_in_any_header_case(header: str) -> None:
    time = FakeTime()
    limited = api_error(429, {header: str(int(time.wall()) + 5)}, now=time.wall())
    result, _, _ = await run([limited, "ok"], RetryPolicy(initial_backoff=0.01), time)
    assert result == "ok"
    assert time.sleeps == [pytest.approx(5.0)]


async def test_429_reset_given_as_a_delay() -> None:
    time = FakeTime()
    limited = api_error(429, {"X-RateLimit-Reset": "2"}, now=time.wall())
    result, _, _ = await run([limited, "ok"], RetryPolicy(), time)
    assert result == "ok"
    assert time.sleeps == [pytest.approx(2.0)]


async def test_a_rate_limit_wait_longer_than_accepted_raises_with_the_reset_time() -> None:
    time = FakeTime()
    reset = int(time.wall()) + 600
    limited = api_error(429, {"X-RateLimit-Reset": str(reset)}, now=time.wall())
    result, calls, _ = await run([limited, "never"], RetryPolicy(max_rate_limit_wait=60), time)
    assert isinstance(result, RateLimitError)
    assert result.retry_at == reset
    assert calls == 1
    assert time.sleeps == []


async def test_no_sleep_is_started_that_would_cross_the_deadline() -> None:
    time = FakeTime()
    policy = RetryPolicy(max_attempts=100, initial_backoff=4.0, max_backoff=4.0, deadline=10.0)
    result, _, _ = await run([api_error(503)] * 100, policy, time)
    assert isinstance(result, ServerError)
    assert time.now - 1000.0 < 10.0
    assert sum(time.sleeps) < 10.0


async def test_the_budget_bounds_retries_across_calls() -> None:
    budget = RetryBudget(capacity=5, refill=0.0)
    retries = 0
    for _ in range(10):
        time = FakeTime()
        _, calls, _ = await run([api_error(503)] * 4, RetryPolicy(initial_backoff=0.0), time,
                                budget)
        retries += calls - 1
    assert retries == 5


async def test_rate_limit_waits_cost_no_budget() -> None:
    budget = RetryBudget(capacity=0)
    time = FakeTime()
    limited = api_error(429, {"Retry-After": "1"})
    result, _, _ = await run([limited, "ok"], RetryPolicy(), time, budget)
    assert result == "ok"


def test_budget_refills_on_success_up_to_capacity() -> None:
    budget = RetryBudget(capacity=2, refill=0.5)
    assert budget.try_spend()
    assert budget.try_spend()
    assert not budget.try_spend()
    budget.on_success()
    budget.on_success()
    assert budget.try_spend()
    for _ in range(10):
        budget.on_success()
    assert budget.available == 2


async def test_a_retry_after_on_a_5xx_still_costs_budget() -> None:
    budget = RetryBudget(capacity=0)
    time = FakeTime()
    busy = api_error(503, {"Retry-After": "1"})
    result, calls, _ = await run([busy, "ok"], RetryPolicy(), time, budget)
    assert isinstance(result, ServerError)
    assert calls == 1


async def test_an_ambiguous_failure_waits_at_least_the_settle_time() -> None:
    records: list[AttemptRecord] = []
    time = FakeTime()
    retrying = build_retrying(
        operation="Test", policy=RetryPolicy(initial_backoff=0.01, settle=0.7),
        deadline=time.clock() + 60, budget=RetryBudget(), records=records,
        clock=time.clock, wall_clock=time.wall, sleep=time.sleep, rng=random.Random(1),
        settle=True,
    )
    outcomes: list[BaseException | str] = [api_error(429, {"Retry-After": "0"}), "ok"]

    async def attempt(number: int) -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    assert await retrying.after(api_error(502), attempt) == "ok"
    assert time.sleeps[0] == pytest.approx(0.7), "a 502 may have applied: settle first"
    assert time.sleeps[1] == 0.0, "a 429 was refused: no settle"


def _engine(time: FakeTime, policy: RetryPolicy | None = None) -> Retrier:
    return build_retrying(
        operation="Test", policy=policy or RetryPolicy(), deadline=time.clock() + 60,
        budget=RetryBudget(), records=[], clock=time.clock, wall_clock=time.wall,
        sleep=time.sleep, rng=random.Random(3),
    )


async def test_the_first_failure_is_handed_over_not_replayed() -> None:
    time = FakeTime()
    made: list[int] = []

    async def attempt(number: int) -> str:
        made.append(number)
        return "ok"

    assert await _engine(time).after(api_error(503), attempt) == "ok"
    assert made == [2], "the caller made attempt 1; the engine makes only the retry"
    assert len(time.sleeps) == 1, "one backoff, awaited through the injected sleep"


async def test_a_cancelled_attempt_is_never_retried() -> None:
    time = FakeTime()
    made: list[int] = []

    async def attempt(number: int) -> str:
        made.append(number)
        raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await _engine(time).after(api_error(502), attempt)
    assert made == [2]
    assert len(time.sleeps) == 1


async def test_an_error_that_is_not_retryable_is_raised_without_a_wait() -> None:
    time = FakeTime()
    refused = api_error(400)

    async def attempt(number: int) -> str:
        raise AssertionError("no attempt may follow a 400")

    with pytest.raises(BadRequestError) as caught:
        await _engine(time).after(refused, attempt)
    assert caught.value is refused
    assert time.sleeps == []


async def test_the_last_error_keeps_its_cause_and_the_attempt_in_its_traceback() -> None:
    time = FakeTime()
    policy = RetryPolicy(max_attempts=2)

    async def attempt(number: int) -> str:
        try:
            raise ConnectionResetError("peer reset")
        except ConnectionResetError as exc:
            raise TransportError("connection lost") from exc

    with pytest.raises(TransportError) as caught:
        await _engine(time, policy).after(api_error(503), attempt)
    assert isinstance(caught.value.__cause__, ConnectionResetError)
    assert "attempt" in [entry.name for entry in caught.traceback]


async def test_a_fault_in_the_engine_s_own_steps_is_raised_as_it_is() -> None:
    time = FakeTime()
    engine = _engine(time)

    def broken_hook(state: object) -> None:
        raise RuntimeError("before_sleep failed")

    engine._retrying.before_sleep = broken_hook

    async def attempt(number: int) -> str:
        raise AssertionError("no attempt may follow")

    with pytest.raises(RuntimeError, match="before_sleep failed"):
        await engine.after(api_error(503), attempt)


async def test_429s_cost_no_attempts() -> None:
    time = FakeTime()
    limited = api_error(429, {"Retry-After": "1"})
    outcomes: list[BaseException | str] = [limited, api_error(503), limited, limited,
                                           api_error(503), limited, "ok"]
    result, calls, records = await run(outcomes, RetryPolicy(max_attempts=3), time)
    assert result == "ok", "two 503s and the first attempt's 429 leave one attempt of three"
    assert calls == 7
    assert [r.status for r in records] == [429, 503, 429, 429, 503, 429]


async def test_a_call_ends_on_its_attempts_however_many_429s_came_between() -> None:
    time = FakeTime()
    limited = api_error(429, {"Retry-After": "1"})
    outcomes: list[BaseException | str] = [api_error(503), limited, api_error(503), limited,
                                           api_error(503), "never"]
    reasons: list[str] = []
    result, calls, _ = await run(outcomes, RetryPolicy(max_attempts=3), time, reasons=reasons)
    assert isinstance(result, ServerError)
    assert calls == 5
    assert reasons == ["attempts exhausted"]


async def test_429s_stop_once_rate_limited_longer_than_max_rate_limit_wait() -> None:
    time = FakeTime()
    limited = api_error(429, {"Retry-After": "4"})
    reasons: list[str] = []
    result, calls, _ = await run([limited] * 20, RetryPolicy(max_rate_limit_wait=10.0), time,
                                 reasons=reasons)
    assert isinstance(result, RateLimitError)
    assert time.sleeps == [4.0, 4.0], "a third wait would end 12 s after the first 429"
    assert calls == 3
    assert reasons == ["rate-limited for longer than max_rate_limit_wait"]


async def test_429s_that_ask_for_no_wait_end_after_max_rate_limited() -> None:
    time = FakeTime()
    limited = api_error(429, {"Retry-After": "0"})
    policy = RetryPolicy(deadline=1e9, max_rate_limit_wait=1e9)
    result, calls, _ = await run([limited] * (MAX_RATE_LIMITED + 5), policy, time)
    assert isinstance(result, RateLimitError)
    assert calls == MAX_RATE_LIMITED
