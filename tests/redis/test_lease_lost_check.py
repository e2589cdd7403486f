"""A Redis lease lost between an ambiguous failure and its CHECK."""
from __future__ import annotations

import asyncio

from sendgrid_ipam import AmbiguousResultError, RetryPolicy, SendGridIPAM
from sendgrid_ipam.coordination import LeaseLostError
from sendgrid_ipam.testing import FakeSendGrid, Fault
from tests.redis.server import coordinator

KEY = "SG.review"


async def test_a_check_after_losing_the_lease_does_not_take_another_writers_ips(
    redis_server, namespace, coordinators
) -> None:
    a_coord = coordinator(redis_server.url, namespace=namespace)
    b_coord = coordinator(redis_server.url, namespace=namespace)
    coordinators += [a_coord, b_coord]
    slow_settle = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.4)
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1"]) as fake:
        fake.script("AddAccountIps", Fault.error(502))  # A's POST: ambiguous, not applied
        async with SendGridIPAM(KEY, base_url=fake.url, retry=slow_settle,
                                coordinator=a_coord) as a, \
                SendGridIPAM(KEY, base_url=fake.url, coordinator=b_coord) as b:
            call_a = asyncio.create_task(a.provisioning.add_ips("acct-1", count=2, region="us"))
            while fake.count("AddAccountIps") == 0:  # noqa: ASYNC110 (polls the fake's log)
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.02)  # A is in its settle wait
            # Redis fails over without the lease key (or A paused past its TTL):
            await a_coord.client.delete(f"{namespace}:lease:account:acct-1")
            got_b = await b.provisioning.add_ips("acct-1", count=2, region="us")
            try:
                got_a = await call_a
            except (AmbiguousResultError, LeaseLostError):
                return  # the right outcomes: A cannot tell B's work from its own
            assert not set(got_a.ips) & set(got_b.ips), (
                f"A was told it bought B's IPs: A={got_a.ips} B={got_b.ips} "
                f"account={fake.account_ips('acct-1')}")
