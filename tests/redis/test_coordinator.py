"""What only a shared coordinator has: several coordinators (processes) on one Redis.

Each `RedisCoordinator` here stands for a process: its own connections, its own local queues.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest

from sendgrid_ipam import RateLimitError
from sendgrid_ipam.coordination import LeaseLostError
from tests.redis.conftest import Make
from tests.redis.server import coordinator

if TYPE_CHECKING:
    from sendgrid_ipam.redis import RedisCoordinator
    from sendgrid_ipam.redis._local import LocalRedis as RedisServer



async def test_one_holder_at_a_time_across_processes_and_tokens_grow_by_one(make: Make) -> None:
    processes = [make(), make(), make()]
    inside = 0
    tokens: list[int] = []

    async def writer(process: RedisCoordinator) -> None:
        nonlocal inside
        async with process.lease("account:a", wait=5.0) as lease:
            inside += 1
            assert inside == 1, "two holders of one key at once"
            tokens.append(lease.token)
            await asyncio.sleep(0.001)  # a round trip's worth: others poll meanwhile
            await lease.check()
            inside -= 1

    await asyncio.gather(*(writer(p) for p in processes for _ in range(4)))
    assert tokens == list(range(tokens[0], tokens[0] + 12))  # one per holding, no gap


async def test_processes_take_turns_on_a_busy_key(make: Make) -> None:
    busy, other = make(), make()
    holders: list[str] = []

    async def write(process: RedisCoordinator, name: str) -> None:
        async with process.lease("account:a", wait=5.0):
            holders.append(name)
            await asyncio.sleep(0.005)

    first = asyncio.ensure_future(write(busy, "busy"))
    await asyncio.sleep(0.002)  # busy holds it now
    queued = [asyncio.ensure_future(write(busy, "busy")) for _ in range(3)]
    waiting = asyncio.ensure_future(write(other, "other"))
    await asyncio.gather(first, *queued, waiting)
    # The other process waited first (it marked the key as wanted): it goes before busy's
    # second local waiter, instead of after all of them.
    assert holders.index("other") <= 2, holders


async def test_a_paused_holder_loses_its_lease_to_another_process_and_sends_nothing(
    make: Make,
) -> None:
    paused, other = make(lease_ttl=0.2), make(lease_ttl=0.2)
    async with paused.lease("account:a", wait=1.0) as old:
        await old.check()
        time.sleep(0.35)  # noqa: ASYNC251 (the whole process stalls past its TTL: no renewal)
        async with other.lease("account:a", wait=1.0) as new:
            assert new.token == old.token + 1
            with pytest.raises(LeaseLostError, match="no longer held"):
                await old.check()  # fencing: the old holder learns before its next write
            await new.check()
    async with other.lease("account:a", wait=1.0) as after:
        assert after.token == new.token + 1  # the old holder's release freed nothing of theirs


async def test_a_held_lease_is_renewed_past_its_ttl(make: Make) -> None:
    # (renewed every TTL/3: a loaded machine's stall of this process up to ~0.25 s is
    # survived; 0.15 s let a 0.1 s stall lose it)
    holder, other = make(lease_ttl=0.4), make(lease_ttl=0.4)
    async with holder.lease("account:a", wait=1.0) as lease:
        await asyncio.sleep(0.85)  # more than twice the TTL, the loop running: renewed
        await lease.check()
        with pytest.raises(Exception, match="deadline was reached"):
            async with other.lease("account:a", wait=0.05):
                pytest.fail("took a lease that is held and renewed")


async def test_a_rate_limit_seen_by_one_process_holds_the_others(make: Make) -> None:
    seer, other = make(), make()
    assert await other.wait_at_gate("ListIp", within=5.0) == 0.0
    closed = time.time()  # (the closure counts from the 429, whenever the lines below run)
    seer.observe("ListIp", 429, {"Retry-After": "0.3"})
    await asyncio.gather(*seer._tasks)  # the closure reaches Redis in the background
    with pytest.raises(RateLimitError) as caught:
        await other.wait_at_gate("ListIp", within=0.05)  # closed longer than it would wait
    assert caught.value.rate_limit is not None
    assert caught.value.rate_limit.reset_at is not None
    assert caught.value.rate_limit.reset_at > time.time()
    assert await other.wait_at_gate("GetIp", within=5.0) == 0.0  # per endpoint
    assert await other.wait_at_gate("ListIp", within=5.0) > 0.0
    assert 0.3 - 0.01 <= time.time() - closed < 0.6  # it went when the closure ended
    # That request was the probe: the others wait for its reply, which opens the endpoint.
    other.observe("ListIp", 200, {"X-RateLimit-Remaining": "5000",
                                  "X-RateLimit-Reset": f"{time.time() + 60:.3f}"})
    assert await seer.wait_at_gate("ListIp", within=5.0) < 0.3  # (not the probe timeout, 0.5 s)
    assert await other.wait_at_gate("ListIp", within=5.0) == 0.0  # not paced any more


async def test_a_closure_is_never_shortened_and_is_clamped(make: Make) -> None:
    seer, other = make(max_closure=0.6), make()  # (left to wait: 0.2-0.6 s, even loaded)
    seer.observe("ListIp", 429, {"Retry-After": "100000"})  # clamped to max_closure
    await asyncio.gather(*seer._tasks)  # (the closure reaches Redis in the background)
    seer.observe("ListIp", 429, {"Retry-After": "0.05"})  # shorter: changes nothing
    await asyncio.gather(*seer._tasks)
    with pytest.raises(RateLimitError, match=r"closed for 0\.[2-6]s"):
        await other.wait_at_gate("ListIp", within=0.1)


async def test_the_retry_budget_is_shared(make: Make) -> None:
    first, second = make(retry_capacity=4, retry_batch=2), make(retry_capacity=4, retry_batch=2)
    await first.wait_at_gate("ListIp", within=1.0)  # each request's round trip reserves
    await second.wait_at_gate("ListIp", within=1.0)
    assert first.budget.available == second.budget.available == 2
    assert [first.budget.try_spend() for _ in range(3)] == [True, True, False]
    await first.wait_at_gate("ListIp", within=1.0)
    assert first.budget.available == 0  # the shared balance is spent: second holds the rest
    assert first.budget.shared == 0
    for _ in range(5):
        first.budget.on_success()  # 5 x 0.2: one retry earned back
    await first.wait_at_gate("ListIp", within=1.0)
    assert first.budget.available == 1
    assert first.budget.try_spend()


async def test_closing_hands_the_unspent_reserve_back(make: Make) -> None:
    first = make(retry_capacity=4, retry_batch=3)
    await first.wait_at_gate("ListIp", within=1.0)
    assert first.budget.available == 3
    await first.aclose()
    second = make(retry_capacity=4, retry_batch=4)
    await second.wait_at_gate("ListIp", within=1.0)
    assert second.budget.available == 4


async def test_namespaces_are_independent(make: Make) -> None:
    one, two = make(namespace="ns-one"), make(namespace="ns-two")
    async with one.lease("account:a", wait=1.0), two.lease("account:a", wait=0.05):
        pass  # the same key in another namespace is another lease


def test_bad_settings_are_configuration_errors(redis_server: RedisServer) -> None:
    from sendgrid_ipam import ConfigurationError

    with pytest.raises(ConfigurationError, match="redis://"):
        coordinator("http://127.0.0.1:6379/0")
    with pytest.raises(ConfigurationError, match="lease_ttl"):
        coordinator(redis_server.url, lease_ttl=0)
    with pytest.raises(ConfigurationError, match="namespace"):
        coordinator(redis_server.url, namespace="has space")
    with pytest.raises(ConfigurationError, match="max_closure"):
        coordinator(redis_server.url, max_closure=0)
    for linger in (-0.001, 2, True, "0.002"):
        with pytest.raises(ConfigurationError, match="release_linger must be a number of "
                                                     "seconds from 0 to 1"):
            coordinator(redis_server.url, release_linger=linger)


def test_the_password_is_never_shown(redis_server: RedisServer) -> None:
    made = coordinator("redis://:hunter2-secret@127.0.0.1:6379/2")
    assert "hunter2-secret" not in repr(made)
    assert "127.0.0.1:6379/2" in repr(made)


async def test_tokens_lost_with_redis_data_are_not_given_out_again(
    make: Make, redis_server: RedisServer, namespace: str
) -> None:
    """After Redis lost its data (a restart without persistence: here the counter is
    deleted) a key's tokens do not count again from 1, where a bulk chunk could take its
    own token + 1 for "nobody else wrote since"."""
    import redis

    process = make()
    tokens: list[int] = []
    with redis.Redis.from_url(redis_server.url) as other:
        for _ in range(3):
            async with process.lease("account:lost", wait=1.0) as lease:
                tokens.append(lease.token)
            other.delete(f"{namespace}:token:account:lost")
    assert len(set(tokens)) == 3, tokens
    assert min(tokens) > 2**20, "a new counter starts at a random place"


def test_aclose_returns_when_a_finished_task_is_not_yet_forgotten(
    redis_server: RedisServer, namespace: str
) -> None:
    """A background task leaves the coordinator's set by a callback that runs on the loop's
    next turn. aclose() once awaited the finished task again and again without ever
    yielding to that turn: a process hung at exit (seen on Python 3.12). Run in a thread of
    its own, so that a hang fails this test instead of the suite."""
    import threading

    closed: list[bool] = []

    async def main() -> None:
        process = coordinator(redis_server.url, namespace=namespace)
        finished = asyncio.ensure_future(asyncio.sleep(0))
        await finished
        process._tasks.add(finished)  # as right after it ended, before its callback ran
        await process.aclose()
        closed.append(True)

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    thread.join(5)
    assert closed == [True], "aclose() did not return"
