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
