"""Write leases: one holder per key, first come first served, bounded waits, tokens."""

from __future__ import annotations

import asyncio

import pytest

from sendgrid_ipam import RequestTimeoutError
from sendgrid_ipam.coordination import Coordinator, Lease, LeaseBusy, LeaseLostError


async def _request(coordinator: Coordinator, lease: Lease, endpoint: str = "AddAccountIps") -> None:
    """What the engine does before each request sent under ``lease``: the gate (a deferred
    lease another holder has is waited for outside it, then the gate passed again), then
    the lease's check."""
    if not (coordinator.quiet or coordinator.gate_open(endpoint)):
        try:
            await coordinator.wait_at_gate(endpoint, within=1.0, lease=lease)
        except LeaseBusy as busy:
            await busy.lease.check()  # the lease, taken
            await coordinator.wait_at_gate(endpoint, within=1.0, lease=lease)
    await lease.check()


@pytest.mark.parametrize("deferred", [False, True])
async def test_one_holder_at_a_time_in_arrival_order(
    coordinator: Coordinator, deferred: bool
) -> None:
    order: list[int] = []
    inside = 0

    async def writer(n: int) -> None:
        nonlocal inside
        async with coordinator.lease("account:a", wait=5.0, deferred=deferred) as lease:
            await _request(coordinator, lease)
            inside += 1
            assert inside == 1, "two holders of one key at once"
            order.append(n)
            await asyncio.sleep(0)
            inside -= 1

    await asyncio.gather(*(writer(n) for n in range(20)))
    assert order == list(range(20))


async def test_keys_are_independent(coordinator: Coordinator) -> None:
    async with (
        coordinator.lease("account:a", wait=1.0),
        coordinator.lease("account:b", wait=1.0) as other,
    ):
        assert other.key == "account:b"


async def test_tokens_grow_by_one_per_holding_of_a_key(coordinator: Coordinator) -> None:
    async with coordinator.lease("pool:x", wait=1.0) as first:
        pass
    async with coordinator.lease("pool:y", wait=1.0):
        pass  # another key's holdings do not count
    async with coordinator.lease("pool:x", wait=1.0) as second:
        pass
    assert second.token == first.token + 1


async def test_a_released_lease_is_lost(coordinator: Coordinator) -> None:
    async with coordinator.lease("account:a", wait=1.0) as lease:
        await lease.check()
    with pytest.raises(LeaseLostError):
        await lease.check()


async def test_a_wait_longer_than_allowed_raises_with_nothing_sent(
    coordinator: Coordinator,
) -> None:
    async with coordinator.lease("account:a", wait=1.0):
        with pytest.raises(RequestTimeoutError) as caught:
            async with coordinator.lease("account:a", wait=0.02):
                pytest.fail("entered a held lease")
    assert caught.value.request_sent is False
    assert "account:a" in str(caught.value)
    async with coordinator.lease("account:a", wait=0.02):
        pass  # the timed-out waiter left the queue


async def test_a_cancelled_waiter_leaves_the_queue_and_passes_the_lease_on(
    coordinator: Coordinator,
) -> None:
    got: list[str] = []

    async def wait_for(name: str) -> None:
        async with coordinator.lease("account:a", wait=5.0):
            got.append(name)

    async with coordinator.lease("account:a", wait=1.0):
        cancelled = asyncio.ensure_future(wait_for("cancelled"))
        patient = asyncio.ensure_future(wait_for("patient"))
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.sleep(0)
    await patient
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert got == ["patient"]


async def test_a_holder_that_raises_releases(coordinator: Coordinator) -> None:
    with pytest.raises(ZeroDivisionError):
        async with coordinator.lease("account:a", wait=1.0):
            _ = 1 / 0
    async with coordinator.lease("account:a", wait=0.02):
        pass


async def test_an_uncontended_lease_is_taken_at_once_and_still_excludes(
    coordinator: Coordinator,
) -> None:
    taken = coordinator.try_lease("account:a")
    if taken is None:
        pytest.skip("this backend always takes leases through a round trip")
    assert coordinator.try_lease("account:a") is None  # held: no second holder
    waiter = asyncio.ensure_future(_hold(coordinator, "account:a"))
    await asyncio.sleep(0)
    assert not waiter.done()
    taken.release_now()
    token = await waiter
    assert token == taken.token + 1


async def _hold(coordinator: Coordinator, key: str) -> int:
    async with coordinator.lease(key, wait=1.0) as lease:
        return lease.token


async def test_a_deferred_lease_is_held_from_its_first_request_and_excludes_others(
    coordinator: Coordinator,
) -> None:
    async with coordinator.lease("pool:x", wait=1.0) as before:
        pass
    async with coordinator.lease("pool:x", wait=1.0, deferred=True) as lease:
        await _request(coordinator, lease, "CreateIpPool")
        assert lease.token == before.token + 1  # taken, as any holding
        await _request(coordinator, lease, "CreateIpPool")  # a second request: still held
        with pytest.raises(RequestTimeoutError):
            await _write(coordinator, "pool:x", 0.02)
    with pytest.raises(LeaseLostError):
        await lease.check()  # released with its block
    async with coordinator.lease("pool:x", wait=1.0, deferred=True) as after:
        await _request(coordinator, after, "CreateIpPool")
    assert after.token == lease.token + 1


async def test_a_deferred_lease_checked_before_any_request_is_taken_then(
    coordinator: Coordinator,
) -> None:
    async with coordinator.lease("account:a", wait=1.0, deferred=True) as lease:
        await lease.check()
        assert lease.token >= 1
        with pytest.raises(RequestTimeoutError):
            async with coordinator.lease("account:a", wait=0.02):
                pytest.fail("entered a held lease")


async def _write(coordinator: Coordinator, key: str, wait: float) -> None:
    async with coordinator.lease(key, wait=wait, deferred=True) as lease:
        await _request(coordinator, lease, "CreateIpPool")
        pytest.fail("a second holder sent a request")
