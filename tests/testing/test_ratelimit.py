"""Rate limiting: the headers on every reply, 429s, window resets and forced 429 windows."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sendgrid_ipam.testing import FakeSendGrid, Fault
from tests.testing import Exchange, SpecClient, spec_client

ACCOUNT = "/v3/partners/accounts/acct-1/ips"
POOLS = "/v3/send_ips/pools"
TOO_MANY = [{"field": None, "message": "too many requests"}]


class Clock:
    """A wall clock that moves only when told."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _rate(reply: Exchange) -> tuple[str, str, str]:
    headers = reply.headers
    return (
        headers["X-RateLimit-Limit"],
        headers["X-RateLimit-Remaining"],
        headers["X-RateLimit-Reset"],
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def api(clock: Clock) -> AsyncIterator[SpecClient]:
    async with (
        FakeSendGrid(rate_limit=3, rate_window=10, clock=clock) as fake,
        spec_client(fake) as client,
    ):
        yield client


async def test_a_window_allows_the_limit_then_answers_429(api: SpecClient, clock: Clock) -> None:
    replies = [await api.call("GET", POOLS) for _ in range(3)]
    assert [_rate(reply) for reply in replies] == [
        ("3", "2", "1800000010"),
        ("3", "1", "1800000010"),
        ("3", "0", "1800000010"),
    ]
    refused = await api.call("GET", POOLS, check_response=False)
    assert refused.status == 429
    assert refused.errors == TOO_MANY
    assert _rate(refused) == ("3", "0", "1800000010")
    assert api.fake.count(status=429) == 1
    clock.now += 10  # the window has ended: the next request opens a new one
    assert _rate(await api.call("GET", POOLS)) == ("3", "2", "1800000020")


async def test_a_window_starts_at_the_first_request_after_the_last_one_ended(
    api: SpecClient, clock: Clock
) -> None:
    await api.call("GET", POOLS)
    clock.now += 25.5
    assert _rate(await api.call("GET", POOLS)) == ("3", "2", "1800000035.500")


async def test_every_kind_of_reply_carries_the_headers(api: SpecClient, clock: Clock) -> None:
    api.fake.script("AddAccountIps", Fault.html(502))
    replies = [
        await api.call("POST", ACCOUNT, json={"count": 1, "region": "us"}, check_response=False),
        await api.call("POST", ACCOUNT, json={"count": 1, "region": "us"}),
        await api.call("DELETE", POOLS + "/1"),
        await api.call("GET", POOLS, key="SG.wrong", check_request=False),
        await api.call("GET", "/v3/nothing", check_request=False, check_response=False),
    ]
    assert [reply.status for reply in replies] == [502, 201, 400, 401, 404]
    # the 401 shows the window of the key it presented: a fresh one
    assert [_rate(reply)[1] for reply in replies] == ["2", "1", "0", "3", "0"]
    clock.now += 1
    assert (await api.call("GET", POOLS, check_response=False)).status == 429
    # replies that do not count (401, unknown paths) do not use up the window either
    assert [record.status for record in api.fake.log] == [502, 201, 400, 401, 404, 429]


async def test_sub_second_windows_print_three_decimals(clock: Clock) -> None:
    clock.now = 1_800_000_000.1
    async with (
        FakeSendGrid(rate_limit=1, rate_window=0.25, clock=clock) as fake,
        spec_client(fake) as api,
    ):
        assert _rate(await api.call("GET", POOLS)) == ("1", "0", "1800000000.350")
        assert (await api.call("GET", POOLS, check_response=False)).status == 429
        clock.now += 0.25
        assert (await api.call("GET", POOLS)).status == 200


async def test_no_limit_still_sends_the_headers() -> None:
    async with FakeSendGrid() as fake, spec_client(fake) as api:
        replies = await asyncio.gather(*(api.call("GET", POOLS) for _ in range(50)))
        assert all(reply.status == 200 for reply in replies)
        assert {reply.headers["X-RateLimit-Limit"] for reply in replies} == {"1000000"}
        assert min(int(reply.headers["X-RateLimit-Remaining"]) for reply in replies) == 999950


async def test_a_forced_window_answers_429_to_every_gathered_call(clock: Clock) -> None:
    async with FakeSendGrid(clock=clock) as fake, spec_client(fake) as api:
        ends = fake.rate_limit_window(2.5)
        assert ends == clock.now + 2.5
        replies = await asyncio.gather(
            *(api.call("GET", ACCOUNT, check_response=False) for _ in range(100))
        )
        assert {reply.status for reply in replies} == {429}
        assert {_rate(reply)[1:] for reply in replies} == {("0", "1800000002.500")}
        assert all(reply.errors == TOO_MANY for reply in replies)
        assert fake.count("ListAccountIps", status=429) == 100
        clock.now = ends
        assert (await api.call("GET", ACCOUNT)).status == 200


async def test_a_forced_window_overrides_the_counted_one(api: SpecClient, clock: Clock) -> None:
    await api.call("GET", POOLS)
    api.fake.rate_limit_window(1)
    assert _rate(await api.call("GET", POOLS, check_response=False)) == ("3", "0", "1800000001")
    clock.now += 1
    assert _rate(await api.call("GET", POOLS)) == ("3", "1", "1800000010")


def test_rate_limit_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="rate_limit"):
        FakeSendGrid(rate_limit=0)
    with pytest.raises(ValueError, match="rate_window"):
        FakeSendGrid(rate_window=0)
