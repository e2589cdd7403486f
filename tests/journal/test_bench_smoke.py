"""benchmarks/bench_journal.py still runs (a tiny workload; nothing here measures speed)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_bench_journal_runs_and_prints_its_figures(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_journal", "--accounts", "20",
         "--concurrency", "4", "--runs", "1", "--serial-accounts", "2",
         "--synchronous", "normal", "--dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "normal, 4 tasks        20" in done.stdout
    assert "normal, 1 task          2" in done.stdout
    assert list(tmp_path.iterdir()) == []  # its journal files are gone


def test_bench_journal_cpu_and_callgrind_bulk_run() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_journal_cpu", "--accounts", "20",
         "--runs", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "journal CPU µs/account" in done.stdout
    assert [line.split()[0] for line in done.stdout.splitlines()[2:]] == ["without", "journal"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.callgrind_bulk", "5", "journal"],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("journal: 5 accounts, ")
