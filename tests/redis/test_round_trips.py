"""What a write costs in Redis round trips, and that the cheaper path keeps every guarantee.

A write's lease is deferred: taken by the script that reserves its first request (a marker
read, or the write itself), confirmed by the one that reserves each later request, released
by the process's next reservation script (or in the background after ``release_linger``).
Round trips are counted by Redis (``INFO commandstats``): each is one script.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

import pytest

from sendgrid_ipam import RequestTimeoutError
from sendgrid_ipam.coordination import LeaseBusy, LeaseLostError
from sendgrid_ipam.coordination.base import CoordinatorUnavailableError
from tests.redis.conftest import Make
from tests.redis.server import coordinator
from tests.waiting import until

if TYPE_CHECKING:
    from sendgrid_ipam.redis import RedisCoordinator
    from sendgrid_ipam.redis._local import LocalRedis as RedisServer



async def _scripts_run(process: RedisCoordinator) -> int:
    """Scripts Redis ran (a script's first EVALSHA, answered NOSCRIPT, counts as failed)."""
    stats = await process.client.info("commandstats")
    return sum(int(stats[name]["calls"]) - int(stats[name].get("failed_calls", 0))
               for name in ("cmdstat_evalsha", "cmdstat_eval") if name in stats)


async def _counted(process: RedisCoordinator, before: int) -> int:
    """Scripts run since ``before`` (the INFO itself is not a script)."""
    return await _scripts_run(process) - before


async def test_each_request_of_a_write_awaits_one_script_and_the_release_none(
    make: Make,
) -> None:
    process = make()
    start = await _scripts_run(process)
    async with process.lease("account:a", wait=1.0, deferred=True) as lease:
        assert await _counted(process, start) == 0  # entering asks Redis nothing
        assert lease.token == 0
        # The marker read, in the same task, takes the lease with its reservation.
        assert await process.wait_at_gate("ListAccountIps", within=1.0) == 0.0
        assert lease.token >= 1
        assert await _counted(process, start) == 1
        # The write: its reservation confirms the lease; the check right after is free.
        await process.wait_at_gate("AddAccountIps", within=1.0, lease=lease)
        await lease.check()
        assert await _counted(process, start) == 2  # (the INFO awaited after the check)
        # Once the task has yielded, a check asks Redis again (fencing after every wait).
        await lease.check()
        assert await _counted(process, start) == 3
    assert await process.client.exists(f"{process.namespace}:lease:account:a")
    await asyncio.gather(*process._tasks)  # the release, under way in the background
    assert not await process.client.exists(f"{process.namespace}:lease:account:a")
    assert await _counted(process, start) == 4


async def test_the_release_does_not_hold_the_caller_and_aclose_waits_for_it(
    redis_server: RedisServer, namespace: str, make: Make
) -> None:
    process = coordinator(redis_server.url, namespace=namespace)
    watcher = make()
    async with process.lease("pool:x", wait=1.0, deferred=True) as lease:
        await process.wait_at_gate("CreateIpPool", within=1.0, lease=lease)
        await watcher.client.execute_command("CLIENT", "PAUSE", "600", "WRITE")
        left = time.monotonic()
    assert time.monotonic() - left < 0.4  # the block ended without waiting for Redis (0.6 s)
    await process.aclose()  # waits for the release
    assert time.monotonic() - left >= 0.4
    assert not await watcher.client.exists(f"{namespace}:lease:pool:x")


async def test_the_next_holder_in_the_process_takes_the_key_after_the_release(
    make: Make,
) -> None:
    # A release that lingers long: the next holder's take carries it, and waits for nothing.
    process = make(release_linger=1.0)
    start = await _scripts_run(process)
    tokens: list[int] = []

    async def write() -> None:
        async with process.lease("account:a", wait=1.0, deferred=True) as lease:
            await process.wait_at_gate("AddAccountIps", within=1.0, lease=lease)
            await lease.check()
            tokens.append(lease.token)

    started = time.monotonic()
    await asyncio.gather(write(), write(), write())
    assert time.monotonic() - started < 0.7  # no holder waited for a linger (1 s each)
    assert await process.client.exists(f"{process.namespace}:lease:account:a")  # the last's
    process._hurry()  # as aclose does: the last release goes at once
    await asyncio.gather(*process._tasks)
    assert time.monotonic() - started < 0.9  # nor the last release (it went at once)
    assert tokens == [tokens[0], tokens[0] + 1, tokens[0] + 2]
    # three takes, the second and third each carrying the release before it; the last
    # release by itself: no retry, no round trip of a release's own in between
    assert await _counted(process, start) == 4
    assert not await process.client.exists(f"{process.namespace}:lease:account:a")


async def test_a_deferred_lease_another_process_holds_is_not_waited_for_at_the_gate(
    make: Make,
) -> None:
    first, second = make(), make()
    async with first.lease("account:a", wait=1.0, deferred=True) as held:
        await first.wait_at_gate("AddAccountIps", within=1.0, lease=held)
        async with second.lease("account:a", wait=0.6, deferred=True) as late:
            started = time.monotonic()
            with pytest.raises(LeaseBusy) as busy:  # at once: the engine waits elsewhere
                await second.wait_at_gate("AddAccountIps", within=1.0, lease=late)
            assert time.monotonic() - started < 0.4  # (not the lease's 0.6 s wait)
            assert busy.value.lease is late
            assert late.token == 0  # nothing taken, nothing reserved
            with pytest.raises(RequestTimeoutError) as caught:  # taking it: within its wait
                await late.check()
            assert caught.value.request_sent is False
        async with second.lease("account:a", wait=2.0, deferred=True) as waiting:
            with pytest.raises(LeaseBusy):
                await second.wait_at_gate("AddAccountIps", within=1.0, lease=waiting)
            turn = asyncio.ensure_future(waiting.check())
            await asyncio.sleep(0.05)
            assert not turn.done()  # first holds it
            await held.check()
            # first's holding ends in Redis (it paused past its TTL, say): second takes it
            await first.client.delete(f"{first.namespace}:lease:account:a")
            await turn
            assert waiting.token == held.token + 1
            await second.wait_at_gate("AddAccountIps", within=1.0, lease=waiting)  # confirms
            with pytest.raises(LeaseLostError):  # first learns before its next request
                await first.wait_at_gate("AddAccountIps", within=1.0, lease=held)
            with pytest.raises(LeaseLostError):
                await held.check()


async def test_a_read_under_a_lease_to_take_fails_closed_without_redis(
    own_redis: RedisServer, namespace: str
) -> None:
    process = coordinator(own_redis.url, namespace=namespace, timeout=0.5,
                          reads_without_redis=True)
    try:
        own_redis.stop()
        assert await process.wait_at_gate("ListAccountIps", within=1.0) == 0.0  # a plain read
        async with process.lease("account:a", wait=1.0, deferred=True) as lease:
            with pytest.raises(CoordinatorUnavailableError, match="taking a write lease"):
                await process.wait_at_gate("ListAccountIps", within=1.0)  # a marker read
            assert lease.token == 0
    finally:
        await process.aclose()


async def test_sequential_writes_cost_one_round_trip_per_request_plus_the_last_release(
    make: Make,
) -> None:
    from benchmarks.bench_redis import _Awaited
    from sendgrid_ipam import SendGridIPAM
    from sendgrid_ipam.testing import FakeSendGrid

    process = make(release_linger=0.5)  # the next call comes well within it, even loaded
    awaited = _Awaited(process)
    async with FakeSendGrid(api_key="SG.trips", accounts=["acct-1"]) as fake, \
            SendGridIPAM("SG.trips", base_url=fake.url, coordinator=process) as sg:
        await sg.provisioning.add_ips("acct-1", count=1, region="us")  # scripts loaded
        await sg.pools.create("warm-up")
        process._hurry()
        await asyncio.gather(*process._tasks)  # (their releases)
        start, before = await _scripts_run(process), awaited.count
        added = [await sg.provisioning.add_ips("acct-1", count=2, region="us")
                 for _ in range(3)]
        # the marker read's (takes the lease, carrying the last call's release), the POST's
        assert awaited.count - before == 6
        process._hurry()
        await asyncio.gather(*process._tasks)
        assert await _counted(process, start) == 7  # and the last release, by itself
        assert fake.count("ListAccountIps") == 4
        assert fake.count("AddAccountIps") == 4

        start, before = await _scripts_run(process), awaited.count
        for n in range(3):
            await sg.pools.create(f"pool-{n}")
        assert awaited.count - before == 3  # one each: take + reserve + the last release
        process._hurry()
        await asyncio.gather(*process._tasks)
        assert await _counted(process, start) == 4
    assert [len(each.ips) for each in added] == [2, 2, 2]
    assert not await process.client.exists(f"{process.namespace}:lease:account:acct-1")
    assert not await process.client.exists(f"{process.namespace}:lease:pool:pool-2")


async def test_a_release_that_cannot_reach_redis_is_logged_and_the_key_frees_at_its_ttl(
    durable_redis: RedisServer, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    import redis.asyncio as aioredis

    process = coordinator(durable_redis.url, namespace=namespace, timeout=0.3,
                          lease_ttl=0.8, release_linger=1.0)
    watcher = aioredis.Redis.from_url(durable_redis.url)
    lease_key = f"{namespace}:lease:pool:x"
    try:
        async with process.lease("pool:x", wait=1.0, deferred=True) as lease:
            await process.wait_at_gate("CreateIpPool", within=1.0, lease=lease)
        taken = time.monotonic()
        durable_redis.stop()  # the release is queued, lingering for the next script
        stopped = time.monotonic()  # (stopping a loaded server may itself take a while)
        with pytest.raises(CoordinatorUnavailableError):  # which carries it, and fails
            async with process.lease("pool:y", wait=1.0, deferred=True) as other:
                await process.wait_at_gate("CreateIpPool", within=1.0, lease=other)
        with caplog.at_level(logging.WARNING, logger="sendgrid_ipam"):
            await asyncio.gather(*process._tasks)  # sent again at once: it fails too
        assert "could not release the write lease on 'pool:x'" in caplog.text
        assert time.monotonic() - stopped < 0.6  # not after the 1 s linger: at once
        durable_redis.start()
        assert await watcher.get(lease_key) == lease.nonce.encode()  # not released...
        while await watcher.exists(lease_key):  # ...until its TTL frees it
            assert time.monotonic() - taken < 3.0
            await asyncio.sleep(0.02)
        assert time.monotonic() - taken >= 0.7
        again = coordinator(durable_redis.url, namespace=namespace)
        try:  # then another process takes it at once
            async with again.lease("pool:x", wait=0.05, deferred=True) as late:
                await again.wait_at_gate("CreateIpPool", within=1.0, lease=late)
                assert late.token == lease.token + 1
        finally:
            await again.aclose()
    finally:
        await process.aclose()
        await watcher.aclose()


async def test_releases_due_together_go_in_one_pipeline_and_all_land(make: Make) -> None:
    process = make()
    keys = [f"pool:{n}" for n in range(20)]
    entered = asyncio.Event()
    holding: list[str] = []

    async def write(key: str) -> None:
        async with process.lease(key, wait=1.0, deferred=True) as lease:
            await process.wait_at_gate("CreateIpPool", within=1.0, lease=lease)
            holding.append(key)
            await entered.wait()  # all end at once: their releases are due together

    batches: list[int] = []
    release_many = process._release_many

    async def counted(leases: list[tuple[str, str]]) -> None:
        batches.append(len(leases))
        await release_many(leases)

    process._release_many = counted  # type: ignore[method-assign]
    writers = asyncio.gather(*(write(key) for key in keys))
    await until(lambda: len(holding) == len(keys), "every writer took its lease")
    entered.set()
    await writers
    await asyncio.gather(*process._tasks)
    assert batches == [20]  # one pipeline (one round trip) for all of them
    held = await process.client.exists(*(f"{process.namespace}:lease:{key}" for key in keys))
    assert held == 0
    again = make()  # another process takes any of them at once
    async with again.lease("pool:7", wait=0.05, deferred=True) as lease:
        await again.wait_at_gate("CreateIpPool", within=1.0, lease=lease)


async def test_a_holder_paused_past_its_ttl_with_the_gates_reply_in_hand_sends_nothing(
    redis_server: RedisServer, make: Make
) -> None:
    import redis

    process = make(lease_ttl=0.1)
    lease_key = f"{process.namespace}:lease:pool:x"
    reserve = process._reserve_lease_script
    other = redis.Redis.from_url(redis_server.url)  # another process (nothing runs here)

    async def paused(**script: object) -> object:
        reply = await reserve(**script)  # Redis confirmed the holding and restarted its TTL
        time.sleep(0.15)  # noqa: ASYNC251 (the whole process stops, its renewer too)
        other.set(lease_key, "another-holder", px=5000)  # its TTL ran out: taken meanwhile
        return reply

    try:
        async with process.lease("pool:x", wait=1.0, deferred=True) as lease:
            await process.wait_at_gate("CreateIpPool", within=1.0, lease=lease)
            process._reserve_lease_script = paused  # type: ignore[method-assign]
            await process.wait_at_gate("CreateIpPool", within=1.0, lease=lease)
            with pytest.raises(LeaseLostError):  # what the engine asks right before sending
                await lease.check()
    finally:
        other.delete(lease_key)
        other.close()


async def test_waiting_for_a_lease_another_process_holds_takes_no_connection_slot(
    make: Make,
) -> None:
    from sendgrid_ipam import SendGridIPAM
    from sendgrid_ipam.testing import FakeSendGrid

    other, process = make(), make()
    async with FakeSendGrid(api_key="SG.slots", accounts=["acct-a", "acct-b"]) as fake, \
            SendGridIPAM("SG.slots", base_url=fake.url, coordinator=process,
                         max_connections=1) as sg:
        waiting = None
        try:
            async with other.lease("account:acct-a", wait=1.0):
                waiting = asyncio.ensure_future(
                    sg.provisioning.add_ips("acct-a", count=1, region="us"))
                await asyncio.sleep(0.05)  # it waits for acct-a's lease
                # A write to a free account is not held up by it.
                free = await sg.provisioning.add_ips("acct-b", count=1, region="us",
                                                     deadline=2.0)
                assert len(free.ips) == 1
            assert len((await waiting).ips) == 1
        finally:
            if waiting is not None and not waiting.done():
                waiting.cancel()
                await asyncio.gather(waiting, return_exceptions=True)


async def test_a_lease_wait_longer_than_max_rate_limit_wait_ends_within_the_deadline(
    make: Make,
) -> None:
    from sendgrid_ipam import RetryPolicy, SendGridIPAM
    from sendgrid_ipam.testing import FakeSendGrid

    other, process = make(), make()
    # Another process learned that CreateIpPool's window is closed until ``reset``.
    reset = time.time() + 0.4
    other.observe("CreateIpPool", 200, {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "0",
                                         "X-RateLimit-Reset": f"{reset:.3f}"})
    await asyncio.gather(*other._tasks)  # the news is in Redis
    policy = RetryPolicy(max_attempts=1, max_rate_limit_wait=0.15)  # below the lease wait
    async with FakeSendGrid(api_key="SG.paced", accounts=[]) as fake, \
            SendGridIPAM("SG.paced", base_url=fake.url, coordinator=process) as sg:
        async with other.lease("pool:paced", wait=1.0):
            creating = asyncio.ensure_future(sg.pools.create("paced", deadline=2.0,
                                                             retry=policy))
            await asyncio.sleep(0.3)  # longer than max_rate_limit_wait
            assert not creating.done()
        pool = await creating  # then the window's last 0.1 s: within max_rate_limit_wait
        assert time.time() >= reset - 0.05  # it did wait for the window
        assert pool.name == "paced"
        assert fake.count("CreateIpPool") == 1


async def test_a_lease_wait_past_the_deadline_raises_as_before_and_sends_nothing(
    make: Make,
) -> None:
    from sendgrid_ipam import SendGridIPAM
    from sendgrid_ipam.testing import FakeSendGrid

    other, process = make(), make()
    async with FakeSendGrid(api_key="SG.late", accounts=["acct-a", "acct-b"]) as fake, \
            SendGridIPAM("SG.late", base_url=fake.url, coordinator=process,
                         max_connections=1) as sg:
        slots = sg._engine.slots
        async with other.lease("account:acct-a", wait=1.0):
            started = time.monotonic()
            with pytest.raises(RequestTimeoutError) as caught:
                await sg.provisioning.add_ips("acct-a", count=1, region="us", deadline=0.2)
            assert 0.2 <= time.monotonic() - started < 0.8
            # What the wait raised before leases were deferred (then: before any request).
            assert caught.value.request_sent is False
            assert caught.value.operation == "AddAccountIps"
            assert str(caught.value) == (
                "the call's deadline was reached waiting for the write lease on "
                "'account:acct-a' (another write to it is in flight)")
            # Cancelled while waiting for the lease: it leaves no slot taken either.
            waiting = asyncio.ensure_future(
                sg.provisioning.add_ips("acct-a", count=1, region="us", deadline=2.0))
            await asyncio.sleep(0.05)
            waiting.cancel()
            await asyncio.gather(waiting, return_exceptions=True)
            assert waiting.cancelled()
            assert (slots.free, len(slots.waiters)) == (1, 0)  # the one slot, free again
            assert fake.count("ListAccountIps") == fake.count("AddAccountIps") == 0
            free = await sg.provisioning.add_ips("acct-b", count=1, region="us", deadline=2.0)
            assert len(free.ips) == 1
        assert len((await sg.provisioning.add_ips("acct-a", count=1, region="us")).ips) == 1
        assert (slots.free, len(slots.waiters)) == (1, 0)


async def test_a_cancel_a_redis_send_swallowed_still_ends_the_wait_for_a_lease(
    make: Make,
) -> None:
    # redis-py sends each command through asyncio.wait_for, which on Python 3.11 drops a
    # cancel that lands just as the send completes (CPython gh-86296): here, every time.
    other, process = make(), make()
    acquire = process._acquire
    polled = asyncio.Event()

    async def swallowing(**script: object) -> object:
        reply = await acquire(**script)
        polled.set()
        with contextlib.suppress(asyncio.CancelledError):  # as 3.11's wait_for does
            await asyncio.sleep(0.1)
        return reply

    process._acquire = swallowing  # type: ignore[method-assign]
    async with other.lease("account:a", wait=1.0), \
            process.lease("account:a", wait=3.0, deferred=True) as waiting:
        turn = asyncio.ensure_future(waiting.check())
        await polled.wait()  # it waits for other's lease
        turn.cancel()
        await asyncio.wait((turn,), timeout=2.0)  # not its 3 s wait
        if not turn.done():
            turn.cancel()
        await asyncio.gather(turn, return_exceptions=True)
        assert turn.cancelled()
