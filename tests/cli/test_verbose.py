"""``-vv``: one DEBUG line per HTTP request on stderr, never the key (a real process)."""

from __future__ import annotations

import re
import subprocess
import sys

from sendgrid_ipam.testing import FakeSendGrid, Fault

from . import KEY, running_fake

# The engine's record: "%s %s -> %s (attempt %d, %.1f ms)" % (method, path, status, ...)
REQUEST_LINE = re.compile(
    r" DEBUG sendgrid_ipam: (?P<method>[A-Z]+) (?P<path>\S+) -> (?P<status>\S+) "
    r"\(attempt (?P<attempt>\d+), (?P<ms>\d+\.\d) ms\)$"
)


def run(fake: FakeSendGrid, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "sendgrid_ipam.cli", "--api-key", KEY,
               "--base-url", fake.url, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert KEY not in done.stdout
    assert KEY not in done.stderr
    assert "Traceback" not in done.stderr
    return done


def request_lines(stderr: str) -> list[re.Match[str]]:
    return [m for line in stderr.splitlines() if (m := REQUEST_LINE.search(line))]


def test_vv_logs_one_debug_line_per_request() -> None:
    with running_fake(ipam_ips=5) as fake:
        done = run(fake, "-vv", "ips", "list", "--limit", "2")
        records = list(fake.log)

    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 5
    assert len(records) == 3  # three pages of 2, 2 and 1
    lines = request_lines(done.stderr)
    assert len(lines) == len(records), done.stderr
    for line, record in zip(lines, records, strict=True):
        assert line["method"] == record.method == "GET"
        assert line["path"].split("?")[0] == record.path
        assert line["status"] == str(record.status) == "200"
        assert line["attempt"] == "1"


def test_vv_logs_failed_attempts_and_v_does_not_log_requests() -> None:
    with running_fake(api_key=KEY + "-other") as fake:
        wrong_key = run(fake, "-vv", "--max-attempts", "1", "ips", "list")
        quiet = run(fake, "-v", "--max-attempts", "1", "ips", "list")

    assert wrong_key.returncode == 1
    (line,) = request_lines(wrong_key.stderr)
    assert (line["method"], line["path"], line["status"]) == ("GET", "/v3/send_ips/ips", "401")
    assert quiet.returncode == 1
    assert request_lines(quiet.stderr) == []
    assert quiet.stderr.splitlines()[-1].startswith("error: 401 Unauthorized")


def test_v_logs_retries_without_request_lines() -> None:
    with running_fake(ipam_ips=1) as fake:
        fake.script("ListIp", Fault.error(503))
        done = run(fake, "-v", "--max-attempts", "2", "ips", "list")  # one backoff, <= 0.5 s
        assert fake.count("ListIp") == 2

    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 1
    assert " INFO sendgrid_ipam: retrying ListIp after attempt 1" in done.stderr
    assert request_lines(done.stderr) == []
