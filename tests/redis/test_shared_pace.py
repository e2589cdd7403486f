"""Three real processes reading one endpoint of a rate-limited fake (a fixed window per key):
through one Redis coordinator they share one pace and meet at most a handful of 429s; each
with only its own pacer, they meet many."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from sendgrid_ipam import RateLimitError
from sendgrid_ipam.testing import FakeSendGrid
from tests.redis.server import run_worker

if TYPE_CHECKING:
    from sendgrid_ipam.redis._local import LocalRedis as RedisServer

KEY = "SG.redis-shared-pace"
WORKER = Path(__file__).with_name("reader.py")
PROCESSES = 3
CALLS = 40  # per process
CONCURRENCY = 4  # per process: 12 in flight at most, more than a window allows
LIMIT, WINDOW = 10, 0.1  # 120 calls: 12 windows, ~1.2 s


async def _worker(fake: FakeSendGrid, redis_url: str, namespace: str,
                  together: asyncio.Barrier) -> dict:
    report: dict = await run_worker(
        WORKER, [fake.url, redis_url, namespace, fake.ipam_ips()[0], str(CALLS),
                 str(CONCURRENCY)], KEY, together)
    return report


async def _run(redis_url: str, namespace: str) -> int:
    """The 429s the fake answered while the workers read through ``redis_url``."""
    async with FakeSendGrid(api_key=KEY, ipam_ips=1, rate_limit=LIMIT,
                            rate_window=WINDOW) as fake:
        together = asyncio.Barrier(PROCESSES)
        reports = await asyncio.gather(*(_worker(fake, redis_url, namespace, together)
                                         for _ in range(PROCESSES)))
        limited = fake.count("GetIp", status=429)
        served = fake.count("GetIp", status=200)
    assert [report["errors"] for report in reports] == [[]] * PROCESSES
    assert sum(report["done"] for report in reports) == served == PROCESSES * CALLS
    return limited


async def test_processes_sharing_one_redis_pace_stay_under_the_limit(
    redis_server: RedisServer, namespace: str
) -> None:
    shared = await _run(redis_server.url, namespace)
    alone = await _run("memory", namespace)
    print(f"429s met by {PROCESSES} processes: {shared} sharing the pace through Redis, "
          f"{alone} pacing each on its own")
    # Sharing: the first burst (12 in flight before any reply said how few remain) meets a
    # few; after it, none. Alone: each window, each process spends what it alone believes left.
    assert shared <= 6
    assert alone >= max(15, 3 * shared)


async def test_two_coordinators_spend_one_remaining_budget(
    redis_server: RedisServer, namespace: str, coordinators: list[object]
) -> None:
    from tests.redis.server import coordinator

    first, second = (coordinator(redis_server.url, namespace=namespace) for _ in range(2))
    coordinators.extend([first, second])
    # (far enough that the round trips below end before it, even on a loaded machine)
    reset = time.time() + 0.6
    first.observe("GetIp", 200, {"X-RateLimit-Limit": "10", "X-RateLimit-Remaining": "3",
                                 "X-RateLimit-Reset": f"{reset:.3f}"})
    await asyncio.gather(*first._tasks)  # the news reaches Redis in the background
    assert await second.wait_at_gate("GetIp", within=1.0) == 0.0
    assert await first.wait_at_gate("GetIp", within=1.0) == 0.0
    assert await second.wait_at_gate("GetIp", within=1.0) == 0.0
    with pytest.raises(RateLimitError):  # three went, by either: the fourth waits the reset
        await first.wait_at_gate("GetIp", within=0.1)
    assert await second.wait_at_gate("GetIp", within=1.0) > 0.0
    # then it goes, as the new window's probe: at the reset (the clock's own), soon after
    assert reset - 0.01 <= time.time() < reset + 0.3
    with pytest.raises(RateLimitError):  # the others wait for the probe's reply
        await first.wait_at_gate("GetIp", within=0.01)
