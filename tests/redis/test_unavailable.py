"""Redis down, or stopped mid-call: writes are not sent and raise a typed error; reads go
without the shared gate only when the user said so; all works again once Redis is back."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from sendgrid_ipam import AccountIps, LeaseLostError, RetryPolicy, SendGridError, SendGridIPAM
from sendgrid_ipam.coordination.base import CoordinatorUnavailableError
from sendgrid_ipam.testing import FakeSendGrid, Fault
from tests.redis.server import coordinator as redis_coordinator
from tests.waiting import until

if TYPE_CHECKING:
    from sendgrid_ipam.redis import RedisCoordinator
    from sendgrid_ipam.redis._local import LocalRedis as RedisServer

KEY = "SG.redis-unavailable"
QUICK = RetryPolicy(max_attempts=3, initial_backoff=0.0, settle=0.0, deadline=5.0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSendGrid]:
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1"], ipam_ips=2, seed=3) as server:
        yield server


async def _client(fake: FakeSendGrid, coordinator: RedisCoordinator) -> SendGridIPAM:
    return SendGridIPAM(KEY, base_url=fake.url, retry=QUICK, coordinator=coordinator)


async def _first_ip(sg: SendGridIPAM) -> str:
    async for ip in sg.ips.list(limit=1):
        return ip.ip
    raise AssertionError("no IP listed")


async def test_redis_stopped_while_a_write_holds_its_lease_stops_the_write(
    fake: FakeSendGrid, own_redis: RedisServer, namespace: str
) -> None:
    coordinator = redis_coordinator(own_redis.url, namespace=namespace, timeout=0.5)
    # add_ips first reads the account's newest IP under its lease; Redis dies during that read.
    fake.script("ListAccountIps", Fault.slow(0.5))  # (time to stop Redis, even loaded)
    try:
        async with await _client(fake, coordinator) as sg:
            call = asyncio.ensure_future(sg.provisioning.add_ips("acct-1", count=1, region="us"))
            # the lease is taken and the slow read under way (it took its fault)
            await until(lambda: fake.pending_faults() == 0, "the read reached the fake")
            assert not call.done()
            own_redis.stop()
            with pytest.raises(CoordinatorUnavailableError) as caught:
                await call
    finally:
        await coordinator.aclose()
    error = caught.value
    assert isinstance(error, LeaseLostError)  # the engine treats it as a lost lease
    assert isinstance(error, SendGridError)
    assert error.request_sent is False
    assert error.operation == "AddAccountIps"
    assert f"127.0.0.1:{own_redis.port}/0" in str(error)
    assert fake.count("ListAccountIps") == 1  # the read under the lease went
    assert fake.count("AddAccountIps") == 0  # fenced: the write was never sent
    assert fake.account_ips("acct-1") == []


async def test_with_redis_down_nothing_is_sent_and_reads_go_only_if_allowed(
    fake: FakeSendGrid, own_redis: RedisServer, namespace: str
) -> None:
    own_redis.stop()
    strict = redis_coordinator(own_redis.url, namespace=namespace, timeout=0.5)
    lenient = redis_coordinator(own_redis.url, namespace=namespace, timeout=0.5,
                                        reads_without_redis=True)
    try:
        async with await _client(fake, strict) as sg:
            with pytest.raises(CoordinatorUnavailableError, match="lease"):
                await sg.provisioning.add_ips("acct-1", count=1, region="us")
            with pytest.raises(CoordinatorUnavailableError, match="rate-limit gate"):
                await _first_ip(sg)
            with pytest.raises(CoordinatorUnavailableError):
                await sg.pools.delete("some-pool")  # a write without a lease: no gate, no send
        assert fake.records() == []  # not one request reached the server
        async with await _client(fake, lenient) as sg:
            assert await _first_ip(sg) in fake.ipam_ips()  # the read went
            with pytest.raises(CoordinatorUnavailableError):
                await sg.provisioning.add_ips("acct-1", count=1, region="us")
        assert fake.count("AddAccountIps") == 0
    finally:
        await strict.aclose()
        await lenient.aclose()


async def test_calls_work_again_once_redis_is_back(
    fake: FakeSendGrid, own_redis: RedisServer, namespace: str
) -> None:
    coordinator = redis_coordinator(own_redis.url, namespace=namespace, timeout=0.5)
    try:
        async with await _client(fake, coordinator) as sg:
            first = await sg.provisioning.add_ips("acct-1", count=1, region="us")
            own_redis.stop()
            with pytest.raises(CoordinatorUnavailableError):
                await sg.provisioning.add_ips("acct-1", count=1, region="us")
            own_redis.start()  # the same port; the pooled connections are stale
            second = await sg.provisioning.add_ips("acct-1", count=1, region="us")
    finally:
        await coordinator.aclose()
    assert isinstance(second, AccountIps)
    assert sorted(first.ips + second.ips) == sorted(fake.account_ips("acct-1"))
    assert fake.count("AddAccountIps") == 2
