"""Hostile rate-limit headers: unreadable ones are absent, and no reply locks the client out.

Every gate test runs on an injected clock: nothing sleeps for real.
"""

from __future__ import annotations

import email.utils

import pytest

from sendgrid_ipam import (
    IpAddress,
    RateLimit,
    RateLimitError,
    RetryPolicy,
    SendGridIPAM,
    ServerError,
    _wire,
)
from sendgrid_ipam.ratelimit import RateLimitGate
from tests.conftest import IP, OPS, FakeTime, RecordingResponses
from tests.test_ratelimit import Clock, gate_with

NOW = 1_800_000_000.0
OVERFLOWING_DATE = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"

UNREADABLE = [
    OVERFLOWING_DATE,
    "Mon, 01 Jan 10000 00:00:00 GMT",
    "Mon, 00 Foo 2026 99:99:99 GMT",
    "Thu, 01 Jan 1970 00:00:00 +9999",
    "inf", "-inf", "Infinity", "nan", "NaN", "-1", "-0.5", "1e400", "1E99999",
    "9" * 5_000, "1" * 100_000, "1_000", "0x10", "1,5", "12 seconds", "soon", "",
    "\u0663\u0660", "\uff11\uff10", "10\u00a0", "\udcff\udcfe", "caf\u00e9", "\x00", "1\x00",
    "Mon, 01 Jan 2026 00:00:00 GMT" + " " * 100,
]
UNREADABLE_IDS = [f"{n}-{value[:24]!r}" for n, value in enumerate(UNREADABLE)]
COUNT_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining")


def date(unix: float) -> str:
    return email.utils.formatdate(unix, usegmt=True)


@pytest.mark.parametrize("value", UNREADABLE, ids=UNREADABLE_IDS)
def test_unreadable_rate_limit_headers_are_absent(value: str) -> None:
    headers = dict.fromkeys((*COUNT_HEADERS, "X-RateLimit-Reset", "Retry-After"), value)
    headers["Date"] = value
    assert RateLimit.from_headers(headers, now=NOW) == RateLimit()


@pytest.mark.parametrize(
    "value", ["1e400", "9" * 5_000, "18446744073709551616", "1.5e300"],
    ids=["1e400", "5000 digits", "2**64", "1.5e300"],
)
def test_counts_out_of_range_are_absent(value: str) -> None:
    limits = RateLimit.from_headers(dict.fromkeys(COUNT_HEADERS, value), now=NOW)
    assert (limits.limit, limits.remaining) == (None, None)


@pytest.mark.parametrize("status", [200, 201, 429, 503])
@pytest.mark.parametrize("value", UNREADABLE, ids=UNREADABLE_IDS)
def test_no_header_makes_read_reply_or_the_gate_fail(status: int, value: str) -> None:
    headers = {"Retry-After": value, "Date": value, "X-RateLimit-Reset": value,
               "X-RateLimit-Limit": value, "X-RateLimit-Remaining": "0"}
    clock = Clock()
    gate = gate_with(clock)
    gate.observe(status, headers)
    assert gate.closed_for() <= gate.max_closure
    if status < 300:
        assert _wire.read_reply(status, headers, b'{"ip": "192.0.2.1"}', lambda: NOW) == {
            "ip": "192.0.2.1"
        }
        return
    with pytest.raises(RateLimitError if status == 429 else ServerError) as info:
        _wire.read_reply(status, headers, b"", lambda: NOW)
    assert info.value.rate_limit == RateLimit(remaining=0)


async def test_a_successful_write_with_overflowing_dates_returns_its_result(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    """The write landed: a header it came back with must not turn that into an error."""
    op = OPS["UpdateIp"]
    mocked.patch(op.url, status=200, payload={"ip": IP, "is_enabled": False}, headers={
        "X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1e400",
        "Retry-After": OVERFLOWING_DATE, "Date": OVERFLOWING_DATE,
    })
    updated = await op.invoke(client)
    assert updated.is_enabled is False
    assert len(mocked.sent) == 1


# ---------------------------------------------------------------- the gate's clamp


LOCKOUTS = {
    "Retry-After 1e12": {"Retry-After": "1e12"},
    "Retry-After years ahead": {"Retry-After": date(NOW + 5 * 365 * 86_400)},
    "Retry-After in 9999": {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"},
    "Reset 1e12": {"X-RateLimit-Reset": "1e12"},
    "Reset as a huge delay": {"X-RateLimit-Reset": "999999999"},
    "Reset years ahead, Date now": {"X-RateLimit-Reset": str(NOW + 3e8), "Date": date(NOW)},
}


@pytest.mark.parametrize("status", [429, 200])
@pytest.mark.parametrize("headers", LOCKOUTS.values(), ids=LOCKOUTS.keys())
async def test_no_reply_closes_the_gate_longer_than_max_closure(
    headers: dict[str, str], status: int
) -> None:
    clock = Clock()
    gate = gate_with(clock)
    gate.observe(status, {**headers, "X-RateLimit-Remaining": "0"})
    assert gate.closed_for() == 60.0
    assert await gate.wait() == 60.0
    assert not gate.is_closed()  # reopened: the next request goes through as a probe
    assert gate.reopens_at() == clock.wall()


@pytest.mark.parametrize("headers", LOCKOUTS.values(), ids=LOCKOUTS.keys())
async def test_max_closure_is_configurable(headers: dict[str, str]) -> None:
    clock = Clock()
    gate = gate_with(clock, max_closure=5)
    gate.observe(429, headers)
    assert await gate.wait() == 5.0
    assert not gate.is_closed()


async def test_a_probe_that_meets_the_limit_again_closes_the_gate_for_at_most_as_long() -> None:
    clock = Clock()
    gate = gate_with(clock)
    for _ in range(3):
        gate.observe(429, {"Retry-After": "1e12"})
        assert gate.closed_for() == 60.0
        await gate.wait()
    assert clock.sleeps == [60.0, 60.0, 60.0]


def test_shorter_closures_are_untouched() -> None:
    clock = Clock()
    gate = gate_with(clock)
    gate.observe(429, {"Retry-After": "59"})
    assert gate.closed_for() == 59.0
    gate.close_for(1e12)
    assert gate.closed_for() == 60.0


@pytest.mark.parametrize("date_header", [
    "Thu, 01 Jan 1970 00:00:00 GMT", date(NOW - 3 * 86_400), date(NOW + 400 * 86_400),
    OVERFLOWING_DATE,
])
def test_a_date_wildly_off_leaves_a_correct_reset_alone(date_header: str) -> None:
    clock = Clock()
    gate = gate_with(clock)
    limits = gate.observe(429, {"X-RateLimit-Reset": str(int(NOW) + 30), "Date": date_header})
    assert limits is not None
    assert limits.reset_at == NOW + 30
    assert gate.closed_for() == 30.0


def test_a_date_hours_off_still_corrects_the_local_clock() -> None:
    """A local clock set to the wrong time zone: the server's Date is trusted (within a day)."""
    clock = Clock()
    gate = gate_with(clock)
    server_now = NOW - 3 * 3_600
    gate.observe(429, {"X-RateLimit-Reset": str(int(server_now) + 30), "Date": date(server_now)})
    assert gate.closed_for() == 30.0


@pytest.mark.parametrize(
    "value", [0, -1, float("nan"), float("inf"), True, "60", pytest.param(10**5000, id="10**5000")]
)
def test_max_closure_must_be_a_positive_number(value: object) -> None:
    with pytest.raises(ValueError, match="max_closure"):
        RateLimitGate(max_closure=value)  # type: ignore[arg-type]


async def test_a_429_asking_for_years_does_not_lock_the_client_out(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    """One reply fails its own call; a call after the clamp is sent (and succeeds)."""
    from tests.conftest import make_client

    op = OPS["GetIp"]
    mocked.get(op.url, status=429, headers={"Retry-After": "1e12"}, body="")
    mocked.get(op.url, status=200, payload={"ip": IP})
    async with make_client(fake_time, retry=RetryPolicy(max_attempts=2)) as sg:
        with pytest.raises(RateLimitError) as info:
            await op.invoke(sg)
        assert info.value.retry_at == fake_time.wall_clock() + 1e12
        fake_time.now += 60.0
        assert await op.invoke(sg) == IpAddress(ip=IP)
    assert len(mocked.sent) == 2


# ---------------------------------------------------------------- retry_at


@pytest.mark.parametrize(
    ("headers", "retry_at"),
    [
        ({"Retry-After": "7"}, NOW + 7),
        ({"Retry-After": "7", "X-RateLimit-Reset": str(NOW + 30)}, NOW + 7),
        ({"Retry-After": date(NOW + 90)}, NOW + 90),
        ({"Retry-After": date(NOW - 90)}, NOW),
        ({"X-RateLimit-Reset": str(NOW + 30)}, NOW + 30),
        ({"Retry-After": OVERFLOWING_DATE, "X-RateLimit-Reset": str(NOW + 30)}, NOW + 30),
        ({}, None),
    ],
    ids=["seconds", "seconds beside a reset", "date", "date past", "reset only",
         "unreadable Retry-After", "neither"],
)
def test_retry_at_comes_from_retry_after_when_present(
    headers: dict[str, str], retry_at: float | None
) -> None:
    with pytest.raises(RateLimitError) as info:
        _wire.read_reply(429, headers, b"", lambda: NOW)
    assert info.value.retry_at == retry_at
