"""kill -9, for real: ``sendgrid-ipam bulk-add-ips --journal`` in its own process, SIGKILLed at
random moments while it buys through faults (late-landing writes among them), then run again
to the end. The fake (in this process) must then hold exactly the CSV on every account, and
the last report must list every account with exactly the IPs it holds."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sendgrid_ipam.testing import FakeSendGrid, FaultRates

from . import KEY, running_fake

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")

FAST_CLI = str(Path(__file__).with_name("_fast_cli.py"))
ACCOUNTS = [f"acct-{n:02d}" for n in range(30)]
KILLS = 3
FAULTS = FaultRates(error=0.04, applied_error=0.04, applied_drop=0.03, slow=0.3,
                    slow_delay=0.01, late=0.04, late_delay_min=0.02, late_delay_max=0.15,
                    operations=["AddAccountIps"])


def start(fake: FakeSendGrid, csv_file: Path, journal: Path, report: Path) -> subprocess.Popen[str]:
    command = [sys.executable, FAST_CLI, "--api-key", KEY, "--base-url", fake.url,
               "--max-attempts", "8", "bulk-add-ips", str(csv_file), "--journal", str(journal),
               "--report", str(report), "--concurrency", "6", "--release-excess",
               "--audit-delay", "0.2"]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_after_writes(fake: FakeSendGrid, process: subprocess.Popen[str], writes: int,
                      rng: random.Random) -> None:
    """SIGKILL once the fake has seen `writes` more AddAccountIps (or the run ended)."""
    target = fake.count("AddAccountIps") + writes
    deadline = time.monotonic() + 20
    while fake.count("AddAccountIps") < target and process.poll() is None:
        assert time.monotonic() < deadline, "the run never got that far"
        time.sleep(0.002)
    time.sleep(rng.uniform(0, 0.02))  # anywhere: mid-request, mid-record, between
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)


def test_killed_runs_resume_to_exactly_the_csv(tmp_path: Path) -> None:
    rng = random.Random(2026)
    counts = {account: rng.randint(1, 24) for account in ACCOUNTS}
    csv_file = tmp_path / "accounts.csv"
    csv_file.write_text("account_id,count,region\n" + "".join(
        f"{account},{count},us\n" for account, count in counts.items()), encoding="utf-8")
    journal, report = tmp_path / "run.journal", tmp_path / "report.json"
    killed = 0
    with running_fake(accounts=ACCOUNTS, faults=FAULTS, seed=3) as fake:
        fake.add_account("acct-00", ips=3)  # IPs from before the run: not the run's
        before = set(fake.account_ips("acct-00"))
        for _ in range(KILLS):
            process = start(fake, csv_file, journal, report)
            kill_after_writes(fake, process, rng.randint(3, 25), rng)
            killed += process.returncode == -signal.SIGKILL
        process = start(fake, csv_file, journal, report)
        out, err = process.communicate(timeout=60)
        held = {account: set(fake.account_ips(account)) - before for account in ACCOUNTS}
        writes = fake.count("AddAccountIps", applied=True)

    assert killed >= 2, "the runs were killed mid-way"
    assert process.returncode == 0, err
    assert "Traceback" not in err
    assert KEY not in out + err
    assert {account: len(ips) for account, ips in held.items()} == counts
    assert writes >= len(ACCOUNTS)
    entries = {entry["account_id"]: entry for entry in json.loads(report.read_text())["accounts"]}
    assert set(entries) == set(ACCOUNTS)
    for account, entry in entries.items():
        kept = set(entry["ips"]) - set(entry["released"])
        assert kept == held[account], account
        assert entry["ok"] is True
        assert entry["error"] is None
        assert len(entry["ips"]) - len(entry["excess"]) == counts[account]
