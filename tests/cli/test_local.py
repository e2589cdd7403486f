"""Commands that need no account (demo, fake-server), and the CLI's packaging."""

from __future__ import annotations

import functools
import json
import select
import signal
import subprocess
import sys
from typing import IO

import pytest

from sendgrid_ipam.cli import main

from . import KEY, invoke, json_lines

DEMO_KEYS = ["accounts", "ips_requested", "ips_added", "duplicates", "failures", "retries",
             "reconciled", "excess", "released", "elapsed_s"]


def test_demo_json(monkeypatch: pytest.MonkeyPatch) -> None:
    from sendgrid_ipam import demo

    # Late writes land within 0.1 s here (the demo's: 0.5-3 s), with the audit scaled alike.
    monkeypatch.setattr(demo, "run_demo", functools.partial(
        demo.run_demo, late_delay=(0.01, 0.1), audit_delay=0.15))
    result = invoke("demo", "--accounts", "5", "--ips-per-account", "3", "--json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout.splitlines()[-1])
    assert list(summary) == DEMO_KEYS
    assert summary["accounts"] == 5
    assert summary["ips_requested"] == summary["ips_added"] == 15
    assert summary["duplicates"] == summary["failures"] == 0


def test_demo_human(monkeypatch: pytest.MonkeyPatch) -> None:
    from sendgrid_ipam import demo

    # The same run without the demo's one-second 429 window.
    monkeypatch.setattr(demo, "run_demo", functools.partial(
        demo.run_demo, rate_limit_window=0, late_delay=(0.01, 0.1), audit_delay=0.15))
    result = invoke("demo", "--accounts", "2", "--ips-per-account", "2", "--seed", "3")
    assert result.exit_code == 0, result.stderr
    assert "IPs obtained" in result.stdout
    assert "OK: nothing lost, nothing doubled" in result.stdout


@pytest.mark.parametrize("as_json", [True, False])
def test_demo_exits_1_when_something_was_doubled(
    monkeypatch: pytest.MonkeyPatch, as_json: bool
) -> None:
    from sendgrid_ipam import demo

    async def doubled(**_: object) -> demo.DemoReport:
        return demo.DemoReport(accounts=1, ips_requested=2, ips_added=2, duplicates=1, lost=0,
                               failures=0, retries=0, reconciled=0, pools=1, pool_ips=2,
                               requests=3, elapsed_s=0.01)

    monkeypatch.setattr(demo, "run_demo", doubled)
    result = invoke("demo", *(["--json"] if as_json else []))
    assert result.exit_code == 1
    if as_json:
        assert json.loads(result.stdout.splitlines()[-1])["duplicates"] == 1
    else:
        assert "FAILED" in result.stdout


def _readline(stream: IO[str] | None, timeout: float) -> str:
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], timeout)
    assert ready, "the fake server did not print its URL in time"
    return stream.readline()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT and select on pipes are POSIX")
def test_fake_server_serves_until_sigint() -> None:
    command = [sys.executable, "-m", "sendgrid_ipam.cli", "fake-server", "--port", "0",
               "--api-key", KEY, "--account", "acct-9"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as server:
        try:
            url = _readline(server.stdout, timeout=20).strip()
            assert url.startswith("http://127.0.0.1:")
            (added,) = json_lines(invoke("--api-key", KEY, "--base-url", url,
                                         "provisioning", "add-ips", "acct-9", "--count", "2",
                                         "--region", "us"))
            listed = json_lines(invoke("--api-key", KEY, "--base-url", url,
                                       "provisioning", "list-ips", "acct-9"))
            assert sorted(item["ip"] for item in listed) == sorted(added["ips"])
            server.send_signal(signal.SIGINT)
            out, err = server.communicate(timeout=10)
        finally:
            if server.poll() is None:
                server.kill()
                server.communicate()
    assert server.returncode == 0, err
    assert out == ""
    assert "listening on" in err
    assert "stopped" in err
    assert KEY not in err


def test_fake_server_port_taken() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("fake-server", "--port", str(port))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: cannot listen on port {port}")


def test_missing_click_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "click", None)
    assert main(["--help"]) == 1
    assert capsys.readouterr().err == (
        'error: the sendgrid-ipam command needs click and rich: '
        'pip install "sendgrid-ipam[cli]"\n')


def test_importing_the_library_needs_neither_click_nor_rich() -> None:
    code = ("import sys; sys.modules['click'] = sys.modules['rich'] = None; "
            "import sendgrid_ipam, sendgrid_ipam.cli; print(sendgrid_ipam.cli.main([]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.stdout == "1\n"
    assert done.stderr.count("\n") == 1
    assert "sendgrid-ipam[cli]" in done.stderr


def test_main_returns_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert "sendgrid-ipam" in capsys.readouterr().out
    assert main(["ips", "get"]) == 2
    assert capsys.readouterr().err.startswith("error: Missing argument 'IP'")
