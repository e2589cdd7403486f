"""A worker process for test_processes.py: CALLS concurrent ``add_ips`` on one account
through a Redis coordinator; prints, as JSON, the IPs each call reported (returned or in
its AmbiguousResultError) and the type of each error. It prints "ready" first and starts
its calls when a line comes on stdin, so that the test starts every worker's calls at once.

Usage: python adder.py FAKE_URL REDIS_URL NAMESPACE ACCOUNT CALLS (key in SENDGRID_API_KEY)
"""

from __future__ import annotations

import asyncio
import json
import sys

from sendgrid_ipam import AccountIps, AmbiguousResultError, RetryPolicy, SendGridIPAM
from sendgrid_ipam.redis import RedisCoordinator

PATIENT = RetryPolicy(max_attempts=12, initial_backoff=0.005, max_backoff=0.02, settle=0.02,
                      deadline=30.0)


async def main(base_url: str, redis_url: str, namespace: str, account: str, calls: int) -> None:
    coordinator = RedisCoordinator.from_url(redis_url, namespace=namespace,
                                            retry_capacity=10_000, retry_batch=50)
    try:
        async with SendGridIPAM(base_url=base_url, retry=PATIENT, coordinator=coordinator) as sg:
            # Start together with the other workers: say ready, wait for the go.
            print("ready", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            outcomes = await asyncio.gather(
                *(sg.provisioning.add_ips(account, count=2, region="us") for _ in range(calls)),
                return_exceptions=True,
            )
    finally:
        await coordinator.aclose()
    report = []
    for outcome in outcomes:
        if isinstance(outcome, AccountIps):
            report.append({"ips": list(outcome.ips), "error": None})
        elif isinstance(outcome, AmbiguousResultError):
            report.append({"ips": list(outcome.found), "error": type(outcome).__name__})
        else:
            report.append({"ips": [], "error": f"{type(outcome).__name__}: {outcome}"})
    print(json.dumps(report))


if __name__ == "__main__":
    url, redis_url, namespace, account, calls = sys.argv[1:]
    asyncio.run(main(url, redis_url, namespace, account, int(calls)))
