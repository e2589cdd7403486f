"""Rate-limit headers and the client-wide gate, with a fake clock."""

from __future__ import annotations

import asyncio
import email.utils

import pytest

from sendgrid_ipam import RateLimit
from sendgrid_ipam.ratelimit import RateLimitGate

NOW = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.mono = 50.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.mono

    def wall(self) -> float:
        return NOW + self.mono - 50.0

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.mono += seconds
        await asyncio.sleep(0)


def gate_with(clock: Clock, *, max_closure: float = 60.0) -> RateLimitGate:
    return RateLimitGate(
        clock=clock.clock, wall_clock=clock.wall, sleep=clock.sleep, max_closure=max_closure
    )


def test_headers_parse_case_insensitively() -> None:
    limits = RateLimit.from_headers(
        {"x-ratelimit-limit": "600", "X-RATELIMIT-REMAINING": "12",
         "X-Ratelimit-Reset": "1800000042"},
        now=NOW,
    )
    assert limits == RateLimit(limit=600, remaining=12, reset_at=1_800_000_042.0)


def test_small_reset_is_a_delay() -> None:
    assert RateLimit.from_headers({"X-RateLimit-Reset": "30"}, now=NOW).reset_at == NOW + 30


@pytest.mark.parametrize("junk", ["", "soon", "-5", "nan"])
def test_junk_headers_are_ignored(junk: str) -> None:
    limits = RateLimit.from_headers(
        {"X-RateLimit-Reset": junk, "Retry-After": junk, "X-RateLimit-Remaining": junk}, now=NOW
    )
    assert limits == RateLimit()


def test_retry_after_wins_over_reset() -> None:
    limits = RateLimit.from_headers({"Retry-After": "2", "X-RateLimit-Reset": str(NOW + 9)},
                                    now=NOW)
    assert limits.delay(NOW) == 2.0


async def test_gate_closes_on_429_until_the_reset() -> None:
    clock = Clock()
    gate = gate_with(clock)
    assert gate.closed_for() == 0
    gate.observe(429, {"X-RateLimit-Reset": str(int(clock.wall()) + 3)})
    assert gate.closed_for() == pytest.approx(3.0)
    waited = await gate.wait()
    assert waited == pytest.approx(3.0)
    assert gate.closed_for() == 0


async def test_gate_closes_when_nothing_remains() -> None:
    clock = Clock()
    gate = gate_with(clock)
    reset = str(int(clock.wall()) + 2)
    gate.observe(200, {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset})
    assert gate.closed_for() == pytest.approx(2.0)


async def test_gate_stays_open_while_requests_remain() -> None:
    clock = Clock()
    gate = gate_with(clock)
    reset = str(int(clock.wall()) + 2)
    gate.observe(200, {"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": reset})
    assert gate.closed_for() == 0


async def test_a_429_without_any_hint_still_holds_the_crowd_briefly() -> None:
    clock = Clock()
    gate = gate_with(clock)
    gate.observe(429, {})
    assert 0 < gate.closed_for() <= 1.0


async def test_every_waiter_is_released_together_at_the_reset() -> None:
    clock = Clock()
    gate = gate_with(clock)
    gate.observe(429, {"Retry-After": "2"})
    waits = await asyncio.gather(*(gate.wait() for _ in range(50)))
    assert gate.closed_for() == 0
    assert clock.mono == pytest.approx(52.0)
    assert max(waits) == pytest.approx(2.0)


def test_a_later_reply_never_shortens_a_closure() -> None:
    clock = Clock()
    gate = gate_with(clock)
    gate.observe(429, {"Retry-After": "5"})
    gate.observe(429, {"Retry-After": "1"})
    assert gate.closed_for() == pytest.approx(5.0)


def test_a_local_clock_far_off_the_servers_does_not_stretch_the_window() -> None:
    """The reset is the server's time: read it against the reply's Date when ours is off."""
    clock = Clock()
    gate = gate_with(clock)
    server_now = clock.wall() + 3600  # our clock is an hour behind
    gate.observe(429, {
        "Date": email.utils.formatdate(server_now, usegmt=True),
        "X-RateLimit-Reset": str(int(server_now) + 3),
    })
    assert 2.0 <= gate.closed_for() <= 4.0


def test_a_close_date_leaves_the_finer_local_clock_in_charge() -> None:
    clock = Clock()
    gate = gate_with(clock)
    gate.observe(429, {
        "Date": email.utils.formatdate(clock.wall() - 0.9, usegmt=True),
        "X-RateLimit-Reset": f"{clock.wall() + 0.4:.3f}",
    })
    assert gate.closed_for() == pytest.approx(0.4, abs=0.01)
