"""``bulk-add-ips --journal``: a rerun resumes, a changed CSV is refused, excess is shown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from sendgrid_ipam.testing import FakeSendGrid, Fault

from . import api, invoke, no_backoff, one_error_line, running_fake


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with running_fake(accounts=["acct-1", "acct-2", "acct-3"]) as server:
        yield server


def csv(tmp_path: Path, text: str) -> str:
    path = tmp_path / "accounts.csv"
    path.write_text("account_id,count,region\n" + text, encoding="utf-8")
    return str(path)


def test_a_rerun_with_the_journal_buys_nothing_and_reports_the_same_ips(
    fake: FakeSendGrid, tmp_path: Path
) -> None:
    rows = csv(tmp_path, "acct-1,12,us\nacct-2,3,eu\n")
    journal, report = str(tmp_path / "run.journal"), tmp_path / "report.json"

    first = api(fake, "bulk-add-ips", rows, "--journal", journal, "--report", str(report))
    assert first.exit_code == 0, first.stderr
    bought = json.loads(report.read_text())
    writes = fake.count("AddAccountIps")
    again = api(fake, "bulk-add-ips", rows, "--journal", journal, "--report", str(report))

    assert again.exit_code == 0, again.stderr
    assert fake.count("AddAccountIps") == writes
    resumed = json.loads(report.read_text())
    assert [a["ips"] for a in resumed["accounts"]] == [a["ips"] for a in bought["accounts"]]
    assert resumed["summary"]["run_id"] == bought["summary"]["run_id"]
    assert resumed["summary"]["run_id"].startswith("run-")
    assert f"journal run: {resumed['summary']['run_id']}" in again.stdout
    assert again.stdout.splitlines()[:2] == ["accounts: 2 (2 ok, 0 failed)",
                                             "IPs: 15 asked, 15 obtained"]


def test_a_changed_count_in_a_named_run_is_refused_before_anything_is_bought(
    fake: FakeSendGrid, tmp_path: Path
) -> None:
    journal = str(tmp_path / "run.journal")
    done = api(fake, "bulk-add-ips", csv(tmp_path, "acct-1,2,us\n"), "--journal", journal,
               "--run-id", "nightly")
    assert done.exit_code == 0, done.stderr
    writes = fake.count("AddAccountIps")

    refused = api(fake, "bulk-add-ips", csv(tmp_path, "acct-2,1,us\nacct-1,3,us\n"),
                  "--journal", journal, "--run-id", "nightly")

    assert refused.exit_code == 1
    line = refused.stderr.splitlines()[-1]  # after the progress bar's last state
    assert line.startswith("error: ")
    assert "acct-1" in line
    assert "nothing was bought" in line
    assert fake.count("AddAccountIps") == writes


def test_run_id_needs_a_journal_and_a_bad_journal_path_stops_the_run(
    fake: FakeSendGrid, tmp_path: Path
) -> None:
    rows = csv(tmp_path, "acct-1,1,us\n")
    result = invoke("bulk-add-ips", rows, "--run-id", "x")
    assert result.exit_code == 2
    assert "--journal" in one_error_line(result)
    missing = api(fake, "bulk-add-ips", rows, "--journal", str(tmp_path / "no" / "j.db"))
    assert missing.exit_code == 2
    assert "does not exist" in one_error_line(missing)
    not_a_journal = tmp_path / "notes.txt"
    not_a_journal.write_text("notes\n" * 200)
    other = api(fake, "bulk-add-ips", rows, "--journal", str(not_a_journal))
    assert other.exit_code == 1
    assert "not a database" in other.stderr.splitlines()[-1]
    assert fake.log == []


def test_excess_bought_by_a_late_write_is_reported_and_released(
    fake: FakeSendGrid, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_backoff(monkeypatch)
    fake.script("AddAccountIps", Fault.late(504, delay=0.15), account_id="acct-3")
    report = tmp_path / "report.json"

    result = api(fake, "--max-attempts", "3", "bulk-add-ips", csv(tmp_path, "acct-3,2,us\n"),
                 "--audit-delay", "0.3", "--release-excess", "--report", str(report))

    assert result.exit_code == 0, result.stderr
    (entry,) = json.loads(report.read_text())["accounts"]
    assert len(entry["ips"]) == 4
    assert len(entry["excess"]) == 2
    assert entry["released"] == entry["excess"]
    assert sorted(set(entry["ips"]) - set(entry["released"])) == sorted(
        fake.account_ips("acct-3"))
    assert "excess: 2 IPs beyond what was asked, bought by writes that landed late; " \
           "2 released" in result.stdout


def test_run_report_gives_the_whole_run_from_an_sqlite_journal(
    fake: FakeSendGrid, tmp_path: Path
) -> None:
    rows = csv(tmp_path, "acct-1,12,us\nacct-2,3,eu\n")
    journal = str(tmp_path / "run.journal")
    fake.script("AddAccountIps", Fault.error(500), times=20, account_id="acct-2")
    done = api(fake, "--max-attempts", "1", "bulk-add-ips", rows, "--journal", journal,
               "--audit-delay", "0")
    assert done.exit_code == 1  # acct-2 failed: its POST answered 500, nothing bought

    by_csv = invoke("run-report", "--journal", journal, "--csv", rows)
    only = invoke("run-report", "--journal", journal)  # the journal's only run
    assert by_csv.exit_code == only.exit_code == 0, by_csv.stderr
    assert by_csv.stdout == only.stdout
    report = json.loads(by_csv.stdout)
    assert report["summary"] == {
        "run_id": report["summary"]["run_id"], "accounts": 2, "accounts_finished": 1,
        "accounts_unfinished": 1, "complete": False, "ips_requested": 15,
        "ips_obtained": 12, "ips_excess": 0, "ips_released": 0}
    first, second = report["accounts"]
    assert (first["account_id"], first["state"], first["requested"]) == ("acct-1", "finished", 12)
    assert sorted(first["ips"]) == sorted(first["held"]) == sorted(fake.account_ips("acct-1"))
    assert (second["account_id"], second["state"], second["ips"]) == ("acct-2", "in_progress", [])
    assert second["unknown_writes"] == 0  # the 500 said: nothing bought

    named = invoke("run-report", "--journal", journal, "--run-id", "nightly")
    assert "no run 'nightly'" in one_error_line(named)
    api(fake, "bulk-add-ips", csv(tmp_path, "acct-3,1,us\n"), "--journal", journal)
    several = invoke("run-report", "--journal", journal)
    assert "2 runs" in one_error_line(several)
    missing = invoke("run-report", "--journal", str(tmp_path / "nothing.journal"))
    assert "no journal" in one_error_line(missing)
