"""The per-endpoint pacer: its pure steps (`reserve`, `learn`, `agrees`) and the in-process
`Pacer`, on an injected clock (nothing sleeps for real)."""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Awaitable

import aiohttp
import pytest

from sendgrid_ipam import RateLimit, RateLimitError, RetryPolicy
from sendgrid_ipam.coordination import MemoryCoordinator
from sendgrid_ipam.ratelimit import PaceRules, PaceState, agrees, learn, reserve, unanswered
from tests.conftest import OPS, FakeTime, RecordingResponses, make_client

NOW = 1_800_000_000.0
RULES = PaceRules()


def reply(remaining: int | None = None, reset_in: float | None = None, *,
          retry_after: float | None = None, limit: int | None = 300) -> RateLimit:
    return RateLimit(
        limit=limit, remaining=remaining,
        reset_at=None if reset_in is None else NOW + reset_in,
        retry_after=retry_after, retry_at=None if retry_after is None else NOW + retry_after,
    )


def ok(state: PaceState | None, facts: RateLimit, *, ticket: int | None = None,
       now: float = NOW) -> PaceState | None:
    return learn(state, facts, now, limited=False, ticket=ticket, jitter=0.0, rules=RULES)


def starts(state: PaceState, now: float, count: int) -> tuple[int, PaceState, float]:
    """How many of ``count`` requests may start at ``now``; the state; the first delay."""
    for started in range(count):
        delay, state = reserve(state, now, RULES)
        if delay:
            return started, state, delay
    return count, state, 0.0


# ---------------------------------------------------------------- the pure steps


def test_a_fixed_window_spends_its_budget_then_holds_until_the_window_ends() -> None:
    state = ok(None, reply(5, 2.0))
    assert state is not None
    started, state, delay = starts(state, NOW, 10)
    assert started == 5
    assert delay == pytest.approx(2.0)
    # at the reset one probe goes; the others wait for its reply
    started, state, delay = starts(state, NOW + 2.0, 10)
    assert started == 1
    assert delay == pytest.approx(RULES.probe_timeout)
    # the probe's reply (ticket 6) opens the next window's budget
    state = ok(state, reply(50, 4.0), ticket=6, now=NOW + 2.02)
    assert state is not None
    assert state.remaining == 50
    assert starts(state, NOW + 2.02, 60)[0] == 50


def test_a_bucket_whose_reset_is_always_near_is_paced_by_probes() -> None:
    state = ok(None, reply(2, 0.004, limit=40))
    assert state is not None
    started, state, delay = starts(state, NOW, 5)
    assert (started, delay) == (2, pytest.approx(0.004, abs=1e-6))
    started, state, _ = starts(state, NOW + 0.004, 5)
    assert started == 1  # the probe
    # its reply says 3 tokens are back (its reset, the next token, already behind us)
    state = ok(state, reply(3, -0.001, limit=40), ticket=3, now=NOW + 0.03)
    assert state is not None
    started, state, delay = starts(state, NOW + 0.03, 6)
    assert started == 3 + 1, "the three tokens, then (the reset being past) the next probe"
    assert delay == pytest.approx(RULES.probe_timeout)


def test_requests_still_in_flight_are_not_counted_twice() -> None:
    state = ok(None, reply(10, 2.0))
    assert state is not None
    _, state, _ = starts(state, NOW, 6)  # tickets 1..6 in flight
    # the server counted ticket 2 with 8 left; tickets 3..6 may not be counted yet
    state = ok(state, reply(8, 2.0), ticket=2)
    assert state is not None
    assert state.remaining == 4
    # an older reply (ticket 1) says more was left: it is stale and changes nothing
    assert ok(state, reply(9, 2.0), ticket=1) is state


def test_replies_without_rate_limit_headers_pace_nothing() -> None:
    assert ok(None, RateLimit()) is None
    assert ok(None, reply(3)) is None  # no reset: nothing to pace by
    assert ok(None, reply(None, 2.0)) is None


def test_plenty_left_paces_nothing() -> None:
    assert ok(None, reply(RULES.pace_below + 1, 60.0)) is None
    assert ok(None, reply(RULES.pace_below, 60.0)) is not None


def test_a_reset_long_past_holds_nothing_and_one_just_past_is_a_bucket_token() -> None:
    assert ok(None, reply(0, -30.0)) is None
    state = ok(None, reply(0, -0.5))
    assert state is not None
    started, _, delay = starts(state, NOW, 3)
    assert started == 1, "a probe goes at once, the others wait for its reply"
    assert delay == pytest.approx(RULES.probe_timeout)


def limited(state: PaceState | None, facts: RateLimit, *, jitter: float = 0.0,
            rules: PaceRules = RULES) -> PaceState:
    held = learn(state, facts, NOW, limited=True, ticket=None, jitter=jitter, rules=rules)
    assert held is not None
    return held


def test_a_429_with_retry_after_holds_until_then_plus_jitter_and_no_backoff() -> None:
    paced = ok(None, reply(3, 30.0))
    state = limited(paced, reply(0, 30.0, retry_after=3.0), jitter=0.5)
    # jitter: half (the fraction drawn) of at most a tenth of the wait, at most 50 ms
    assert reserve(state, NOW, RULES)[0] == pytest.approx(3.0 + 0.5 * 0.05)
    started, _, _ = starts(state, NOW + 3.025, 5)
    assert started == 1, "a paced endpoint: one probe at the end of the hold, not the crowd"


def test_a_closure_no_reply_announced_reopens_whole_at_its_reset() -> None:
    state = limited(None, reply(0, 0.02), jitter=0.5)
    # later 429s of requests sent before it (no ticket) are the same closure's news
    state = learn(state, reply(0, 0.02), NOW + 0.005, limited=True, ticket=None, jitter=1.0,
                  rules=RULES)
    assert state is not None
    assert reserve(state, NOW, RULES)[0] == pytest.approx(0.0215, abs=1e-6)  # later jitter
    started, state, _ = starts(state, NOW + 0.0215, 40)
    assert started == 40, "the crowd resumes at the reset without waiting for a probe's reply"
    # should the window still be closed, a resumed request's 429 ends in a probe next time
    state = learn(state, reply(0, 0.5), NOW + 0.04, limited=True, ticket=state.sent,
                  jitter=0.0, rules=RULES)
    assert state is not None
    started, _, delay = starts(state, NOW + 0.54, 5)
    assert (started, delay) == (1, pytest.approx(RULES.probe_timeout))


def test_a_closure_naming_no_time_ends_in_a_probe() -> None:
    state = limited(None, RateLimit())
    started, _, _ = starts(state, NOW + RULES.unknown_window, 5)
    assert started == 1


def test_a_429_without_retry_after_holds_until_the_reset() -> None:
    state = limited(None, reply(0, 7.0), jitter=1.0)
    assert reserve(state, NOW, RULES)[0] == pytest.approx(7.0 + RULES.jitter)


def test_the_jitter_of_a_short_hold_is_short() -> None:
    state = limited(None, reply(0, 0.02), jitter=1.0)
    assert reserve(state, NOW, RULES)[0] == pytest.approx(0.022, abs=1e-6)


def test_a_late_429_whose_reset_is_past_holds_only_for_a_probe() -> None:
    state = limited(ok(None, reply(3, 1.0)), reply(0, -0.3), jitter=1.0)
    assert reserve(state, NOW, RULES)[0] == 0.0
    started, _, delay = starts(state, NOW, 3)
    assert (started, delay) == (1, pytest.approx(RULES.probe_timeout))


def test_a_429_naming_no_time_holds_for_the_unknown_window() -> None:
    state = limited(None, RateLimit())
    assert reserve(state, NOW, RULES)[0] == pytest.approx(RULES.unknown_window)


def test_no_reply_holds_longer_than_max_closure() -> None:
    rules = PaceRules(max_closure=5.0)
    state = limited(None, reply(0, 1e6, retry_after=1e9), jitter=1.0, rules=rules)
    assert reserve(state, NOW, rules)[0] == pytest.approx(5.0)
    paced = learn(None, reply(0, 1e6), NOW, limited=False, ticket=None, jitter=0.0,
                  rules=rules)
    assert paced is not None
    assert reserve(paced, NOW, rules)[0] == pytest.approx(5.0)


def test_a_stale_429_changes_nothing() -> None:
    state = ok(None, reply(5, 2.0))
    assert state is not None
    _, state, _ = starts(state, NOW, 3)
    state = ok(state, reply(4, 2.0), ticket=3)
    assert state is not None
    late = learn(state, reply(0, 1.0), NOW, limited=True, ticket=2, jitter=0.0, rules=RULES)
    assert late is state


def test_counts_that_agree_show_one_counter() -> None:
    state = PaceState(remaining=10, reset_at=NOW + 2.0, sent=6, seen=4, limit=300)
    assert agrees(state, reply(11, 2.0), None)  # within the 2 in flight
    assert not agrees(state, reply(40, 2.0), None)
    assert not agrees(state, reply(11, 3.0), None)  # another window
    assert not agrees(state, reply(11, 2.0, limit=600), None)


# ---------------------------------------------------------------- the in-process pacer


def test_an_unanswered_probe_lets_the_next_request_probe_at_once() -> None:
    state = ok(None, reply(0, 1.0))
    assert state is not None
    started, state, delay = starts(state, NOW + 1.0, 3)
    assert (started, delay) == (1, pytest.approx(RULES.probe_timeout))
    probe = state.sent
    assert unanswered(state, probe - 1) is state, "not the probe: its hold stands"
    state = unanswered(state, probe)
    started, state, _ = starts(state, NOW + 1.01, 3)
    assert started == 1, "one new probe goes at once, and the others wait for its reply"
    assert unanswered(state, probe) is state, "the first probe's news is stale now"


class VirtualTime:
    """Unix time that moves only when every task is waiting: then to the earliest sleeper's
    wake-up (FakeTime moves on at each sleep, which concurrent sleepers would add up)."""

    def __init__(self) -> None:
        self.now = NOW
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def wall_clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        waker = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), waker))
        await waker

    async def run(self, *calls: Awaitable[None]) -> None:
        done = asyncio.ensure_future(asyncio.gather(*calls))
        while not done.done():
            for _ in range(10):  # let every runnable task get to its next wait
                await asyncio.sleep(0)
            while self._sleepers and not done.done():
                wake_at, _, waker = heapq.heappop(self._sleepers)
                if not waker.done():  # (a sleeper woken by news was cancelled)
                    self.now = max(self.now, wake_at)
                    waker.set_result(None)
                    break
        await done


def coordinator(time: FakeTime | VirtualTime, **kwargs: object) -> MemoryCoordinator:
    return MemoryCoordinator(wall_clock=time.wall_clock, sleep=time.sleep,
                             rng=random.Random(1), **kwargs)  # type: ignore[arg-type]


def headers(remaining: int, reset: float, limit: int = 300) -> dict[str, str]:
    return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{reset:.3f}"}


async def test_gathered_tasks_share_one_pace() -> None:
    time = VirtualTime()
    coord = coordinator(time)
    coord.observe("AddAccountIps", 201, headers(3, NOW + 2.0))
    assert not coord.quiet
    started: list[float] = []

    async def call() -> None:
        await coord.wait_at_gate("AddAccountIps", within=60.0)
        started.append(time.now - NOW)

    await time.run(*(call() for _ in range(6)))
    # three at once, then one probe at the reset; the others wait for its reply, which
    # never comes here: after the probe's timeout another probe goes, and so on
    assert started == pytest.approx(
        [0.0, 0.0, 0.0, 2.0, 2.0 + RULES.probe_timeout, 2.0 + 2 * RULES.probe_timeout])


async def test_a_probes_reply_releases_the_waiters_at_once() -> None:
    time = VirtualTime()
    coord = coordinator(time)
    coord.observe("AddAccountIps", 201, headers(0, NOW + 1.0))
    started: list[float] = []

    async def probe() -> None:
        await coord.wait_at_gate("AddAccountIps", within=60.0)
        started.append(time.now - NOW)
        await time.sleep(0.02)  # the round trip
        # the reply to this very request (its ticket rides in this task's context)
        coord.observe("AddAccountIps", 201, headers(10, NOW + 3.0))

    async def other() -> None:
        await asyncio.sleep(0)  # the probe reserves first
        await coord.wait_at_gate("AddAccountIps", within=60.0)
        started.append(time.now - NOW)

    await time.run(probe(), *(other() for _ in range(4)))
    assert started == pytest.approx([1.0] + [1.02] * 4)
    state = coord.pace("AddAccountIps")
    assert state is not None
    assert state.remaining == 10 - 4


async def test_a_probe_that_gets_no_reply_hands_probing_on_at_once() -> None:
    time = VirtualTime()
    coord = coordinator(time)
    coord.observe("AddAccountIps", 201, headers(0, NOW + 1.0))
    started: list[float] = []

    async def call(lost: bool) -> None:
        await coord.wait_at_gate("AddAccountIps", within=60.0)
        started.append(time.now - NOW)
        await time.sleep(0.02)  # the round trip
        if lost:  # its connection dropped: no reply
            coord.unanswered("AddAccountIps")
        else:
            coord.observe("AddAccountIps", 201, headers(10, NOW + 3.0))

    async def later() -> None:
        await asyncio.sleep(0)  # the lost probe reserves first
        await call(lost=False)

    await time.run(call(lost=True), *(later() for _ in range(3)))
    # not 1.5 (the probe's timeout): the next probe goes as soon as the first is lost
    assert started == pytest.approx([1.0, 1.02, 1.04, 1.04])


async def test_a_429_on_one_endpoint_holds_only_that_endpoint(fake_time: FakeTime) -> None:
    coord = coordinator(fake_time)
    coord.observe("AddAccountIps", 429, {"Retry-After": "5"})
    assert not coord.gate_open("AddAccountIps")
    assert 5.0 <= coord.held_for("AddAccountIps") <= 5.0 + RULES.jitter
    assert coord.gate_open("ListAccountIps")
    assert coord.held_for("ListAccountIps") == 0.0


async def test_a_hold_longer_than_the_call_accepts_raises_at_once(fake_time: FakeTime) -> None:
    coord = coordinator(fake_time)
    coord.observe("GetIp", 429, {"Retry-After": "30"})
    with pytest.raises(RateLimitError) as info:
        await coord.wait_at_gate("GetIp", within=10.0)
    assert fake_time.sleeps == []
    assert info.value.retry_at is not None
    assert info.value.retry_at >= fake_time.wall_clock() + 30.0


async def test_replies_with_plenty_left_or_no_headers_keep_the_fast_path(
    fake_time: FakeTime,
) -> None:
    coord = coordinator(fake_time)
    coord.observe("GetIp", 200, headers(599, fake_time.wall_clock() + 60))
    coord.observe("GetIp", 200, {})
    assert coord.quiet
    assert coord.pace("GetIp") is None


async def test_a_pace_ends_when_the_budget_is_plenty_again(fake_time: FakeTime) -> None:
    coord = coordinator(fake_time)
    now = fake_time.wall_clock()
    coord.observe("GetIp", 200, headers(5, now + 1))
    assert not coord.quiet
    coord.observe("GetIp", 200, headers(500, now + 61))
    assert coord.pace("GetIp") is None
    assert coord.gate_open("GetIp")
    assert coord.quiet


async def test_endpoints_showing_one_counter_share_a_pace_and_leave_it_on_disagreeing(
    fake_time: FakeTime,
) -> None:
    coord = coordinator(fake_time)
    reset = fake_time.wall_clock() + 2.0
    coord.observe("ListAccountIps", 200, headers(20, reset, limit=25))
    coord.observe("AddAccountIps", 201, headers(19, reset, limit=25))
    assert coord.pacer.shares("ListAccountIps", "AddAccountIps")
    assert coord.gate_open("AddAccountIps")  # ticket 1 of the shared pace
    coord.observe("AddAccountIps", 201, headers(90, reset, limit=25))  # a counter of its own
    assert not coord.pacer.shares("ListAccountIps", "AddAccountIps")
    state = coord.pace("ListAccountIps")
    assert state is not None
    assert state.remaining == 18


# ---------------------------------------------------------------- through the client


async def test_a_429_naming_no_time_resumes_after_the_hold_without_backoff(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    op = OPS["GetIp"]
    mocked.get(op.url, status=429, body="")
    mocked.get(op.url, status=200, payload={"ip": "192.0.2.1"})
    async with make_client(fake_time, retry=RetryPolicy(initial_backoff=5.0)) as sg:
        await op.invoke(sg)
    # no 5 s backoff: the unknown window (1 s) plus at most the jitter, at the gate
    assert len(mocked.sent) == 2
    assert RULES.unknown_window <= sum(fake_time.sleeps) <= RULES.unknown_window + RULES.jitter


async def test_a_dropped_probe_is_followed_by_the_next_probe_not_by_its_timeout(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    op = OPS["GetIp"]
    reset = fake_time.wall_clock() + 1.0
    mocked.get(op.url, status=200, payload={"ip": "192.0.2.1"},
               headers=headers(0, reset))
    mocked.get(op.url, exception=aiohttp.ServerDisconnectedError())
    mocked.get(op.url, status=200, payload={"ip": "192.0.2.1"}, headers=headers(9, reset + 2))
    async with make_client(fake_time) as sg:
        await op.invoke(sg)
        await op.invoke(sg)  # waits for the reset, probes, is dropped, probes again
    assert len(mocked.sent) == 3
    # the wait for the reset and the retry's backoff (at most 0.01 s), not the 0.5 s timeout
    assert 1.0 <= sum(fake_time.sleeps) <= 1.0 + 0.01 + 1e-9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_closure": 0}, "max_closure"), ({"max_closure": float("nan")}, "max_closure"),
     ({"pace_below": 0}, "pace_below"), ({"pace_below": True}, "pace_below"),
     ({"pace_below": 1.5}, "pace_below")],
)
def test_bad_pacing_settings_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MemoryCoordinator(**kwargs)  # type: ignore[arg-type]
