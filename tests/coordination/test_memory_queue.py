"""The in-process lease queue under cancellation."""
from __future__ import annotations

import asyncio

import pytest

from sendgrid_ipam.coordination import MemoryCoordinator


async def test_a_waiter_cancelled_just_before_the_release_gets_its_cancellation() -> None:
    coordinator = MemoryCoordinator()
    held = coordinator.try_lease("account:a")
    assert held is not None

    async def wait() -> None:
        async with coordinator.lease("account:a", wait=10.0):
            pass

    waiter = asyncio.create_task(wait())
    await asyncio.sleep(0)  # queued behind the holder
    waiter.cancel()         # its future is cancelled now; the task resumes later
    held.release_now()      # the holder releases in the same turn
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert coordinator.try_lease("account:a") is not None
