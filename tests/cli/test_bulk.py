"""``bulk-add-ips FILE.csv``: progress on stderr, a summary, the report, exit status."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sendgrid_ipam.testing import FakeSendGrid, Fault

from . import api, invoke, no_backoff, one_error_line, running_fake


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with running_fake(accounts=["acct-1", "acct-2", "acct-3"]) as server:
        yield server


def write_csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "accounts.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_bulk_add_ips(
    fake: FakeSendGrid, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_backoff(monkeypatch)
    csv_file = write_csv(tmp_path, "account_id,count,region\nacct-1,12,us\n\nacct-2,3,eu\n")
    report_file = tmp_path / "report.json"
    fake.script("AddAccountIps", Fault.applied_error(502), account_id="acct-2")

    result = api(fake, "--max-attempts", "3", "bulk-add-ips", csv_file,
                 "--report", str(report_file), "--concurrency", "2")

    assert result.exit_code == 0, result.stderr
    assert "15/15" in result.stderr  # the progress bar, in IPs
    assert "2/2 accounts" in result.stderr
    assert result.stdout.splitlines()[:3] == [
        "accounts: 2 (2 ok, 0 failed)",
        "IPs: 15 asked, 15 obtained",
        "retries: 1, reconciled: 1",
    ]
    report = json.loads(report_file.read_text())
    assert report["summary"] == {
        "accounts": 2, "accounts_ok": 2, "accounts_failed": 0, "ips_requested": 15,
        "ips_added": 15, "retries": 1, "reconciled": 1, "interrupted": False,
    }
    by_account = {entry["account_id"]: entry for entry in report["accounts"]}
    assert set(by_account) == {"acct-1", "acct-2"}
    for account_id, entry in by_account.items():
        assert sorted(entry["ips"]) == sorted(fake.account_ips(account_id))
        assert entry["ok"] is True
        assert entry["error"] is None
    assert len(by_account["acct-1"]["ips"]) == 12
    assert by_account["acct-1"]["requests"] == 2  # 12 = 10 + 2
    assert by_account["acct-2"] | {"ips": None} == {
        "account_id": "acct-2", "region": "eu", "requested": 3, "ips": None, "ok": True,
        "error": None, "attempts": 2, "requests": 1, "reconciled": 1,
    }
    assert fake.account_ips("acct-3") == []


def test_bulk_add_ips_failure_exits_1(fake: FakeSendGrid, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path, "account_id,count,region\nacct-1,2,us\nghost,2,us\n")
    report_file = tmp_path / "report.json"

    result = api(fake, "bulk-add-ips", csv_file, "--report", str(report_file))

    assert result.exit_code == 1
    assert "accounts: 2 (1 ok, 1 failed)" in result.stdout
    assert "failed: ghost: 0 of 2 IPs: 404 Not Found: Account not found" in result.stdout
    entries = json.loads(report_file.read_text())["accounts"]
    assert entries[0]["ips"] == fake.account_ips("acct-1")[::-1]
    assert entries[1]["ok"] is False
    assert entries[1]["error"].startswith("404 Not Found: Account not found")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("account,count\nacct-1,2\n", "line 1: the header must be account_id,count,region"),
        ("account_id,count,region\nacct-1,2,us\nacct-2,two,us\n",
         "line 3: count must be an integer, not 'two'"),
        ("account_id,count,region\nacct-1,2,mars\n", "line 2: region: must be 'eu' or 'us'"),
        ("account_id,count,region\nacct-1,2,us,extra\n", "line 2: expected 3 fields"),
        ("account_id,count,region\nacct-1,0,us\n", "line 2: count: must be from 1"),
        ("account_id,count,region\nacct-1,1,us\nacct-1,2,us\n",
         "line 3: account 'acct-1' is already on line 2"),
        ("account_id,count,region\n", "no accounts in the file"),
    ],
)
def test_bad_csv_is_a_usage_error(
    fake: FakeSendGrid, tmp_path: Path, text: str, message: str
) -> None:
    result = api(fake, "bulk-add-ips", write_csv(tmp_path, text))
    assert result.exit_code == 2
    assert message in one_error_line(result)
    assert fake.count() == 0


def test_missing_csv_is_a_usage_error(fake: FakeSendGrid, tmp_path: Path) -> None:
    result = api(fake, "bulk-add-ips", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "does not exist" in one_error_line(result)


def test_interruption_reports_what_was_obtained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C: asyncio.run raises KeyboardInterrupt after bulk_add_ips has reported, through
    on_progress, every IP its writes in flight obtained; the report keeps all of them."""
    from sendgrid_ipam.bulk import AccountResult, BulkProgress
    from sendgrid_ipam.cli import _bulk

    def interrupted_run(action: Any) -> None:
        def bulk_add_ips(requests: Any, *, concurrency: int, on_progress: Any) -> None:
            on_progress(BulkProgress("acct-1", ("192.0.2.1", "192.0.2.2"),
                                     AccountResult("acct-1", "us", 2, ("192.0.2.1", "192.0.2.2"),
                                                   attempts=1, requests=1)))
            on_progress(BulkProgress("acct-2", ("192.0.2.3",)))
            raise KeyboardInterrupt

        action(SimpleNamespace(provisioning=SimpleNamespace(bulk_add_ips=bulk_add_ips)))

    monkeypatch.setattr(_bulk, "run_api", interrupted_run)
    csv_file = write_csv(tmp_path, "account_id,count,region\nacct-1,2,us\nacct-2,12,us\n"
                                   "acct-3,1,us\n")
    report_file = tmp_path / "report.json"

    result = invoke("bulk-add-ips", csv_file, "--report", str(report_file))

    assert result.exit_code == 130
    assert "IPs: 15 asked, 3 obtained" in result.stdout
    assert "failed: acct-2: 1 of 12 IPs: interrupted" in result.stdout
    assert result.stderr.splitlines()[-1].startswith("error: interrupted"), result.stderr
    report = json.loads(report_file.read_text())
    assert report["summary"]["interrupted"] is True
    assert [(a["account_id"], a["ips"], a["ok"], a["error"]) for a in report["accounts"]] == [
        ("acct-1", ["192.0.2.1", "192.0.2.2"], True, None),
        ("acct-2", ["192.0.2.3"], False, "interrupted"),
        ("acct-3", [], False, "interrupted"),
    ]
