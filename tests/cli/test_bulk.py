"""``bulk-add-ips FILE.csv``: progress on stderr, a summary, the report, exit status."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sendgrid_ipam.testing import FakeSendGrid, Fault

from . import api, invoke, json_lines, no_backoff, one_error_line, running_fake


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
                 "--report", str(report_file), "--concurrency", "2", "--audit-delay", "0")

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
        "accounts": 2, "accounts_ok": 2, "accounts_failed": 0, "accounts_interrupted": 0,
        "ips_requested": 15, "ips_added": 15, "ips_excess": 0, "ips_released": 0,
        "retries": 1, "reconciled": 1, "interrupted": False, "run_id": None,
        "accounts_elsewhere": 0,
    }
    assert report["elsewhere"] == []
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
        "error": None, "attempts": 2, "requests": 1, "reconciled": 1, "excess": [],
        "released": [], "from_journal": False, "resumed": False,
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


def test_columns_in_any_order(fake: FakeSendGrid, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path, " Region , COUNT,account_id \neu, 3 ,acct-1\nus,2,acct-2\n")

    result = api(fake, "bulk-add-ips", csv_file)

    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["accounts: 2 (2 ok, 0 failed)",
                                              "IPs: 5 asked, 5 obtained"]
    assert len(fake.account_ips("acct-1")) == 3
    assert len(fake.account_ips("acct-2")) == 2
    for account_id, region in (("acct-1", "eu"), ("acct-2", "us")):
        listed = json_lines(api(fake, "provisioning", "list-ips", account_id))
        assert {item["region"] for item in listed} == {region}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("account,count\nacct-1,2\n",
         "line 1: missing column account_id, region; unknown column 'account' "
         "(the header names account_id, count and region, in any order)"),
        ("count,region\n2,us\n", "line 1: missing column account_id"),
        ("account_id,count,region,note\nacct-1,2,us,x\n", "line 1: unknown column 'note'"),
        ("account_id,count,Count,region\nacct-1,2,2,us\n",
         "line 1: column 'count' appears twice"),
        ("", "line 1: missing column account_id, count, region"),
        ("account_id,count,region\nacct-1,2,us\nacct-2,two,us\n",
         "line 3, column count: must be a whole number, not 'two'"),
        ("region,count,account_id\nus,1_0,acct-1\n",
         "line 2, column count: must be a whole number, not '1_0'"),
        ("account_id,count,region\nacct-1,2,mars\n",
         "line 2, column region: must be 'eu' or 'us', not 'mars'"),
        ("account_id,count,region\n ,2,us\n", "line 2, column account_id: must be a non-empty"),
        ("account_id,count,region\nacct-1,2,us,extra\n", "line 2: expected 3 fields, got 4"),
        ("account_id,count,region\nacct-1,0,us\n", "line 2, column count: must be from 1"),
        ("account_id,count,region\nacct-1,1,us\n\nacct-1,2,us\n",
         "line 4, column account_id: account 'acct-1' is already on line 2"),
        ("account_id,count,region\n", "no accounts in the file"),
        ("account_id,count,region\nacct-\udcff,1,us\n", "not a readable CSV file"),
    ],
)
def test_bad_csv_is_a_usage_error(
    fake: FakeSendGrid, tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))
    result = api(fake, "bulk-add-ips", str(path))
    assert result.exit_code == 2
    line = one_error_line(result)
    assert message in line
    assert line.startswith(f"error: {path}")
    assert fake.count() == 0  # every row is checked before the first request


def test_missing_csv_is_a_usage_error(fake: FakeSendGrid, tmp_path: Path) -> None:
    result = api(fake, "bulk-add-ips", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "does not exist" in one_error_line(result)


def test_interruption_reports_what_was_obtained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C: asyncio.run raises KeyboardInterrupt after bulk_add_ips has reported, through
    on_progress, every IP its writes in flight obtained; the report keeps all of them, and
    says of each account what happened to it."""
    from sendgrid_ipam.bulk import AccountResult, BulkProgress
    from sendgrid_ipam.cli import _bulk

    def interrupted_run(action: Any) -> None:
        def bulk_add_ips(requests: Any, *, on_progress: Any, **options: Any) -> None:
            # done before Ctrl-C, after a retry
            on_progress(BulkProgress("acct-1", ("192.0.2.1", "192.0.2.2"),
                                     AccountResult("acct-1", "us", 2, ("192.0.2.1", "192.0.2.2"),
                                                   attempts=2, requests=1)))
            on_progress(BulkProgress("acct-2", ("192.0.2.3",)))  # cut short after 1 request
            # its only write was in flight and finished: every IP, though no result came
            on_progress(BulkProgress("acct-4", ("192.0.2.4",)))
            # a library that gives the result of an account cut short: still interrupted
            on_progress(BulkProgress("acct-5", ("192.0.2.5",) * 10,
                                     AccountResult("acct-5", "eu", 11, ("192.0.2.5",) * 10,
                                                   attempts=3, requests=1, reconciled=1)))
            raise KeyboardInterrupt

        action(SimpleNamespace(provisioning=SimpleNamespace(bulk_add_ips=bulk_add_ips)))

    monkeypatch.setattr(_bulk, "run_api", interrupted_run)
    csv_file = write_csv(tmp_path, "account_id,count,region\nacct-1,2,us\nacct-2,12,us\n"
                                   "acct-3,1,us\nacct-4,1,us\nacct-5,11,eu\n")
    report_file = tmp_path / "report.json"

    result = invoke("bulk-add-ips", csv_file, "--report", str(report_file))

    assert result.exit_code == 130
    assert result.stdout.splitlines()[:2] == [
        "accounts: 5 (2 ok, 3 failed, 3 of them interrupted)", "IPs: 27 asked, 14 obtained"]
    assert "failed: acct-2: 1 of 12 IPs: interrupted" in result.stdout
    assert "acct-4" not in result.stdout
    assert result.stderr.splitlines()[-1].startswith("error: interrupted"), result.stderr
    report = json.loads(report_file.read_text())
    assert report["summary"]["interrupted"] is True
    assert report["summary"]["accounts_interrupted"] == 3
    assert [(a["account_id"], len(a["ips"]), a["ok"], a["error"], a["attempts"], a["requests"],
             a["reconciled"]) for a in report["accounts"]] == [
        ("acct-1", 2, True, None, 2, 1, 0),
        ("acct-2", 1, False, "interrupted", None, 1, 0),  # its retries are not known
        ("acct-3", 0, False, "interrupted", 0, 0, 0),
        ("acct-4", 1, True, None, None, 1, 0),
        ("acct-5", 10, False, "interrupted", 3, 1, 1),
    ]
    assert report["accounts"][0]["ips"] == ["192.0.2.1", "192.0.2.2"]


@pytest.fixture
def unwritable_dir(tmp_path: Path) -> Path:
    """A directory no new file can be made in (root ignores permission bits: /sys then)."""
    if os.geteuid() == 0:
        if not os.path.isdir("/sys"):
            pytest.skip("running as root without /sys")
        return Path("/sys")
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    return locked


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing", "directory '{tmp}/no/such/dir' does not exist"),
        ("under-a-file", "directory '{tmp}/accounts.csv' is not a directory"),
        ("a-directory", "'{tmp}' is a directory"),
        ("unwritable", "cannot write in '{locked}'"),
    ],
)
def test_unwritable_report_fails_before_any_request(
    fake: FakeSendGrid, tmp_path: Path, unwritable_dir: Path, where: str, message: str
) -> None:
    csv_file = write_csv(tmp_path, "account_id,count,region\nacct-1,2,us\n")
    report = {
        "missing": tmp_path / "no" / "such" / "dir" / "report.json",
        "under-a-file": tmp_path / "accounts.csv" / "report.json",
        "a-directory": tmp_path,
        "unwritable": unwritable_dir / "report.json",
    }[where]

    result = api(fake, "bulk-add-ips", csv_file, "--report", str(report))

    assert result.exit_code == 2
    line = one_error_line(result)
    assert line.startswith("error: Invalid value for '--report'"), line
    assert message.format(tmp=tmp_path, locked=unwritable_dir) in line
    assert fake.count() == 0  # nothing was bought
    assert fake.account_ips("acct-1") == []


def test_existing_report_is_replaced(fake: FakeSendGrid, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path, "account_id,count,region\nacct-1,2,us\n")
    report_file = tmp_path / "report.json"
    report_file.write_text("old and longer than the new report " * 100)

    result = api(fake, "bulk-add-ips", csv_file, "--report", str(report_file))

    assert result.exit_code == 0, result.stderr
    assert json.loads(report_file.read_text())["accounts"][0]["ips"] != []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["accounts.csv", "report.json"]


def test_report_that_cannot_be_written_after_the_run_goes_to_stdout(
    fake: FakeSendGrid, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path was fine when checked, but the disk filled up meanwhile: the IPs are bought,
    so the report is printed rather than lost."""
    from sendgrid_ipam.cli import _bulk

    def disk_full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(_bulk, "write_atomically", disk_full)
    csv_file = write_csv(tmp_path, "account_id,count,region\nacct-1,2,us\n")
    report_file = tmp_path / "report.json"

    result = api(fake, "bulk-add-ips", csv_file, "--report", str(report_file))

    assert result.exit_code == 1
    assert result.stdout.startswith("accounts: 1 (1 ok, 0 failed)\n")
    printed = json.loads(result.stdout[result.stdout.index("{"):])
    assert sorted(printed["accounts"][0]["ips"]) == sorted(fake.account_ips("acct-1"))
    assert result.stderr.splitlines()[-1] == (
        f"error: cannot write the report to {report_file}: No space left on device; "
        "it is printed on stdout instead")
    assert not report_file.exists()


def test_report_through_a_symlink_replaces_its_target(fake: FakeSendGrid, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path, "account_id,count,region\nacct-1,1,us\n")
    (tmp_path / "reports").mkdir()
    target = tmp_path / "reports" / "latest.json"
    target.write_text("{}")
    link = tmp_path / "report.json"
    link.symlink_to(target)

    result = api(fake, "bulk-add-ips", csv_file, "--report", str(link))

    assert result.exit_code == 0, result.stderr
    assert link.is_symlink()
    assert json.loads(target.read_text())["accounts"][0]["ips"] == fake.account_ips("acct-1")
