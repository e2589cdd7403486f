"""A worker process for test_shared_pace.py: CALLS reads of one IP (``ips.get``), CONCURRENCY
at a time, through a Redis coordinator (or, given ``memory`` for REDIS_URL, through this
process's own in-process pacer); prints, as JSON, how many calls succeeded and each error's
type. It prints "ready" first and starts when a line comes on stdin (all workers at once).

Usage: python reader.py FAKE_URL REDIS_URL|memory NAMESPACE IP CALLS CONCURRENCY
(key in SENDGRID_API_KEY)
"""

from __future__ import annotations

import asyncio
import json
import sys

from sendgrid_ipam import RetryPolicy, SendGridIPAM
from sendgrid_ipam.coordination import Coordinator, MemoryCoordinator

PATIENT = RetryPolicy(max_attempts=20, initial_backoff=0.005, max_backoff=0.05,
                      max_rate_limit_wait=5.0, deadline=30.0)


async def main(base_url: str, redis_url: str, namespace: str, ip: str, calls: int,
               concurrency: int) -> None:
    coordinator: Coordinator
    if redis_url == "memory":
        coordinator = MemoryCoordinator()
    else:
        from sendgrid_ipam.redis import RedisCoordinator

        coordinator = RedisCoordinator.from_url(redis_url, namespace=namespace,
                                                retry_capacity=10_000, retry_batch=50)
    errors: list[str] = []
    done = 0
    try:
        async with SendGridIPAM(base_url=base_url, retry=PATIENT, coordinator=coordinator) as sg:
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            todo = iter(range(calls))

            async def reader() -> None:
                nonlocal done
                for _ in todo:
                    try:
                        await sg.ips.get(ip)
                        done += 1
                    except Exception as exc:  # reported to the test, which fails on any
                        errors.append(f"{type(exc).__name__}: {exc}")

            await asyncio.gather(*(reader() for _ in range(concurrency)))
    finally:
        await coordinator.aclose()
    print(json.dumps({"done": done, "errors": errors}))


if __name__ == "__main__":
    url, redis_url, namespace, ip, calls, concurrency = sys.argv[1:]
    asyncio.run(main(url, redis_url, namespace, ip, int(calls), int(concurrency)))
