"""The benchmark scripts still run (tiny workloads; nothing here measures or asserts speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_bench_client_runs_and_reports_ratios() -> None:
    out = run("benchmarks.bench_client", "--contenders", "sendgrid_ipam,aiohttp",
              "--concurrency", "4", "--calls", "40", "--rounds", "1", "--markdown")
    assert "| GET pools.get | 4 | sendgrid_ipam |" in out
    assert "| POST pools.create | 4 | raw aiohttp | " in out


def test_bench_bulk_loses_and_doubles_nothing() -> None:
    out = run("benchmarks.bench_bulk", "--accounts", "8", "--runs", "1")
    assert "duplicates/lost/phantom: all 0" in out


def test_bench_bulk_runs_with_429_windows() -> None:
    out = run("benchmarks.bench_bulk", "--accounts", "8", "--runs", "1",
              "--window-every", "0.05", "--window-length", "0.02")
    assert "+ 429 windows" in out
    assert "duplicates/lost/phantom: all 0" in out


def test_bench_bulk_runs_with_latency_at_the_fake() -> None:
    out = run("benchmarks.bench_bulk", "--accounts", "8", "--runs", "1", "--latency", "0.005")
    assert "Each request waited 5 ms at the fake" in out
    assert "duplicates/lost/phantom: all 0" in out


async def test_the_benchmark_fake_answers_after_its_latency() -> None:
    import time

    import aiohttp

    from benchmarks._fake_process import FakeSettings, make_fake

    settings = FakeSettings("SG.smoke", ("acct-1",), 0, latency=0.05)
    async with make_fake(settings) as fake, aiohttp.ClientSession() as session:
        started = time.perf_counter()
        async with session.get(f"{fake.url}/v3/partners/accounts/acct-1/ips",
                               headers={"Authorization": "Bearer SG.smoke"}) as reply:
            assert reply.status == 200
        assert time.perf_counter() - started >= 0.05
        assert fake.count("ListAccountIps") == 1


def test_bench_pacing_runs_both_shapes_and_contenders() -> None:
    out = run("benchmarks.bench_pacing", "--accounts", "20", "--runs", "1", "--markdown")
    for shape in ("bucket", "fixed"):
        for contender in ("sendgrid_ipam", "naive"):
            assert f"| {shape} | {contender} |" in out


def test_bench_library_alone_child_makes_its_calls_without_a_socket() -> None:
    for method in ("get", "post"):  # (the child only: counting takes valgrind)
        run("benchmarks.bench_library_alone", "--child", method, "5")
