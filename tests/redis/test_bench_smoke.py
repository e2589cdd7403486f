"""benchmarks/bench_redis.py runs, and shows a call costs one Redis round trip per request."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.redis.server import redis_binary

ROOT = Path(__file__).resolve().parents[2]


def test_bench_redis_runs_and_a_call_awaits_one_round_trip() -> None:
    redis_binary()  # skips (or fails in CI) without redis-server
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_redis", "--calls", "30", "--rounds", "1",
         "--concurrency", "1", "--markdown",
         # Every release waits for the next call (a loaded machine may pause > 2 ms).
         "--release-linger", "0.5"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = {tuple(cell.strip() for cell in line.split("|")[1:4]):
            tuple(cell.strip() for cell in line.split("|")[7:9])
            for line in done.stdout.splitlines() if line.startswith(("| GET", "| POST"))}
    # (all scripts, of which the call awaited)
    assert rows[("GET pools.get", "1", "redis")] == ("1.00", "1.00")  # the reservation
    # take the lease + reserve (awaited), carrying the last call's release: 30 calls, 31
    # scripts (the last call's release goes by itself)
    assert rows[("POST pools.create", "1", "redis")] == ("1.03", "1.00")
    assert rows[("GET pools.get", "1", "memory")] == ("0.00", "0.00")
