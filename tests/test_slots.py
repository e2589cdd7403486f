"""The client's in-flight limit: its slot counter, and max_connections end to end."""

from __future__ import annotations

import asyncio

import pytest

from sendgrid_ipam import SendGridIPAM
from sendgrid_ipam.engine.slots import Slots as _Slots
from sendgrid_ipam.testing import FakeSendGrid, FaultRates


async def test_free_slots_are_taken_without_waiting() -> None:
    slots = _Slots(2)
    assert slots.try_take()
    assert slots.try_take()
    assert not slots.try_take()
    slots.give()
    assert slots.try_take()


async def test_a_slot_given_back_goes_to_the_longest_waiter() -> None:
    slots = _Slots(1)
    assert slots.try_take()
    order: list[int] = []

    async def wait(n: int) -> None:
        await slots.take()
        order.append(n)

    waiters = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    assert not slots.try_take(), "a newcomer cannot overtake the queue"
    for _ in range(3):
        slots.give()
        await asyncio.sleep(0)
    await asyncio.gather(*waiters)
    assert order == [0, 1, 2]


@pytest.mark.parametrize("waiting", [False, True])
async def test_a_slot_given_back_early_is_not_given_back_twice(waiting: bool) -> None:
    slots = _Slots(1)
    assert slots.try_take()
    waiter = asyncio.create_task(slots.take()) if waiting else None
    await asyncio.sleep(0)
    slots.give()  # handed back early (to the waiter, if any)
    slots.owe()  # ... and given back once more by its holder's finally: frees nothing
    slots.give()
    await asyncio.sleep(0)
    assert not slots.waiters
    if waiter is not None:
        assert waiter.done()
        assert not slots.try_take(), "the waiter holds the one slot: no second holder"
        slots.give()
    assert slots.try_take()
    assert not slots.try_take()


async def test_a_cancelled_waiter_leaves_the_queue_and_loses_no_slot() -> None:
    slots = _Slots(1)
    assert slots.try_take()
    cancelled = asyncio.create_task(slots.take())
    served = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    slots.give()
    await asyncio.wait_for(served, timeout=1)
    slots.give()
    assert slots.try_take(), "the slot came back"


async def test_a_waiter_cancelled_after_being_handed_a_slot_passes_it_on() -> None:
    slots = _Slots(1)
    assert slots.try_take()
    first = asyncio.create_task(slots.take())
    second = asyncio.create_task(slots.take())
    await asyncio.sleep(0)
    slots.give()  # hands the slot to `first`...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, timeout=1)


async def test_max_connections_bounds_requests_in_flight() -> None:
    async with FakeSendGrid(api_key="SG.slots", accounts=["acct-1"]) as fake:
        fake.faults = FaultRates(slow=1.0, slow_delay=0.02)
        async with SendGridIPAM("SG.slots", base_url=fake.url, max_connections=3) as sg:
            results = await asyncio.gather(
                *(sg.provisioning.list_ips("acct-1").__anext__() for _ in range(12)),
                return_exceptions=True,
            )
    assert all(isinstance(r, StopAsyncIteration) for r in results)  # the account is empty
    events = sorted(
        [(r.received_at, 1) for r in fake.log] + [(r.answered_at, -1) for r in fake.log]
    )
    in_flight = peak = 0
    for _, step in events:
        in_flight += step
        peak = max(peak, in_flight)
    assert len(fake.log) == 12
    assert peak == 3


async def test_a_waiter_cancelled_in_the_same_turn_a_slot_is_given_raises_cancelled() -> None:
    """give() may drop a waiter that was just cancelled; its take() must still only cancel."""
    slots = _Slots(1)
    assert slots.try_take()
    waiters = [asyncio.create_task(slots.take()) for _ in range(3)]
    await asyncio.sleep(0)
    waiters[0].cancel()
    slots.give()  # pops the cancelled waiter, then serves the next one
    _, pending = await asyncio.wait(waiters, timeout=0.05)
    assert waiters[0].cancelled()
    assert waiters[1].done()
    assert waiters[1].exception() is None
    assert pending == {waiters[2]}, "the third still waits for a slot"
    waiters[2].cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiters[2]
