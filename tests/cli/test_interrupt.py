"""Ctrl-C, for real: the command runs in its own process, the fake in this one, and SIGINT
arrives while writes are in flight."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sendgrid_ipam.testing import FakeSendGrid, Fault
from tests.sigint import sigint_at_default

from . import KEY, running_fake

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX")

# How long the writes in flight take: time enough for SIGINT to land mid-way even when a
# loaded machine stalls this process or the child (0.5 s was not: seen in CI-like runs).
SLOW = 1.5
# A read in flight is abandoned at Ctrl-C (the fake's pause ends when it closes): its length
# costs nothing, so it is far longer than any stall.
SLOW_READ = 5.0


def start(fake: FakeSendGrid, *args: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "sendgrid_ipam.cli", "--api-key", KEY,
               "--base-url", fake.url, *args]
    with sigint_at_default():
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)


def interrupt_when(process: subprocess.Popen[str], ready: Callable[[], bool]) -> tuple[str, str]:
    """Send SIGINT once ``ready()``; returns stdout and stderr. Bounded: 30 s in all."""
    deadline = time.monotonic() + 20
    try:
        while not ready():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the run never got mid-way"
            time.sleep(0.01)
        process.send_signal(signal.SIGINT)
        return process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def test_ctrl_c_during_bulk_reports_each_account_as_it_is(tmp_path: Path) -> None:
    """acct-fast is done before Ctrl-C; acct-slow's only write is in flight and finishes;
    acct-long is cut short after its first write of two; acct-never has not started."""
    csv_file = tmp_path / "accounts.csv"
    csv_file.write_text("account_id,count,region\nacct-fast,1,us\nacct-slow,2,us\n"
                        "acct-long,12,us\nacct-never,1,us\n", encoding="utf-8")
    report_file = tmp_path / "report.json"
    accounts = ["acct-fast", "acct-slow", "acct-long", "acct-never"]
    with running_fake(accounts=accounts) as fake:
        fake.script("AddAccountIps", Fault.slow(SLOW), account_id="acct-slow")
        fake.script("AddAccountIps", Fault.slow(SLOW), account_id="acct-long")
        process = start(fake, "bulk-add-ips", str(csv_file), "--concurrency", "2",
                        "--report", str(report_file))
        # Both slow writes have reached the fake (their faults are taken) and acct-fast, on
        # the worker that then took acct-long, is done.
        out, err = interrupt_when(process, lambda: fake.pending_faults() == 0)
        bought = {account: fake.account_ips(account) for account in accounts}

    assert process.returncode == 130, err
    assert "Traceback" not in err
    assert KEY not in out + err
    assert err.splitlines()[-1].startswith("error: interrupted; the writes in flight")
    assert out.splitlines()[:2] == ["accounts: 4 (2 ok, 2 failed, 2 of them interrupted)",
                                    "IPs: 16 asked, 13 obtained"]
    report = json.loads(report_file.read_text())
    assert report["summary"]["interrupted"] is True
    entries = {entry["account_id"]: entry for entry in report["accounts"]}
    for account in accounts:  # every IP bought is reported, and only those
        assert sorted(entries[account]["ips"]) == sorted(bought[account]), account
    assert [len(bought[account]) for account in accounts] == [1, 2, 10, 0]
    assert {k: entries["acct-fast"][k] for k in ("ok", "error", "attempts", "requests")} == {
        "ok": True, "error": None, "attempts": 1, "requests": 1}
    # acct-slow's write finished during the interruption: it is done, not interrupted. Its
    # attempts are null (unknown) until the library gives such an account's result.
    assert {k: entries["acct-slow"][k] for k in ("ok", "error", "requests")} == {
        "ok": True, "error": None, "requests": 1}
    assert entries["acct-slow"]["attempts"] == 1
    assert {k: entries["acct-long"][k] for k in ("ok", "error", "requests")} == {
        "ok": False, "error": "interrupted", "requests": 1}
    assert entries["acct-long"]["attempts"] == 1
    assert {k: entries["acct-never"][k] for k in ("ok", "error", "attempts", "requests")} == {
        "ok": False, "error": "interrupted", "attempts": 0, "requests": 0}


def test_ctrl_c_during_a_read_is_one_line() -> None:
    with running_fake(ipam_ips=2) as fake:
        fake.script("ListIp", Fault.slow(SLOW_READ))
        process = start(fake, "ips", "list")
        out, err = interrupt_when(process, lambda: fake.pending_faults() == 0)

    assert process.returncode == 130
    assert out == ""
    assert err.strip().splitlines() == ["error: interrupted"]
