"""Two real processes writing one account through one Redis coordinator, while the fake's
POSTs fail in every ambiguous way: each caller gets its own IPs, none reported twice."""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path
from typing import TYPE_CHECKING

from sendgrid_ipam.testing import FakeSendGrid, FaultRates
from tests.redis.server import run_worker

if TYPE_CHECKING:
    from sendgrid_ipam.redis._local import LocalRedis as RedisServer

KEY = "SG.redis-processes"
WORKER = Path(__file__).with_name("adder.py")
CALLS = 6  # per process


async def _worker(fake: FakeSendGrid, redis_server: RedisServer, namespace: str,
                  together: asyncio.Barrier) -> list[dict]:
    report: list[dict] = await run_worker(
        WORKER, [fake.url, redis_server.url, namespace, "acct-1", str(CALLS)], KEY, together)
    return report


async def test_two_processes_adding_ips_to_one_account_each_get_their_own(
    redis_server: RedisServer, namespace: str
) -> None:
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1"], seed=23) as fake:
        fake.faults = FaultRates(error=0.1, applied_error=0.1, applied_drop=0.1,
                                 operations={"AddAccountIps"})
        together = asyncio.Barrier(2)
        reports = await asyncio.gather(*(_worker(fake, redis_server, namespace, together)
                                         for _ in range(2)))
        sold = fake.account_ips("acct-1")
        writes = fake.records("AddAccountIps")

    outcomes = list(itertools.chain.from_iterable(reports))
    assert len(outcomes) == 2 * CALLS
    assert [o["error"] for o in outcomes] == [None] * len(outcomes), outcomes
    told = list(itertools.chain.from_iterable(o["ips"] for o in outcomes))
    assert len(told) == len(set(told)), "an IP was reported to two callers"
    assert set(told) == set(sold), "every IP sold is reported, and only those"
    assert len(sold) == 2 * CALLS * 2  # the fake sold exactly what was asked
    assert sum(r.applied for r in writes) == 2 * CALLS  # one applied write per call
    assert {r.fault for r in writes} - {None}, "the faults were met"
    # The leases held across processes: no two writes to the account were in flight at once.
    spans = sorted((r.received_at, r.answered_at) for r in writes)
    for (_, ended), (started, _) in itertools.pairwise(spans):
        assert ended <= started, "two writes to one account overlapped"
