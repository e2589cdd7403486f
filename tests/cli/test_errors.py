"""Failures: one line on stderr, exit 2 for usage and 1 for the API, never the API key."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from aiohttp import web

from sendgrid_ipam.testing import FakeSendGrid, Fault

from . import KEY, api, invoke, no_backoff, one_error_line, running_app, running_fake


@pytest.fixture
def fake() -> Iterator[FakeSendGrid]:
    with running_fake(accounts=["acct-1"], ipam_ips=2) as server:
        yield server


def test_unknown_account_is_an_api_error(fake: FakeSendGrid) -> None:
    result = api(fake, "provisioning", "list-ips", "no-such-account")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert one_error_line(result) == (
        "error: 404 Not Found: Account not found (ListAccountIps)")


def test_adding_to_an_unknown_account_is_an_api_error(fake: FakeSendGrid) -> None:
    result = api(fake, "provisioning", "add-ips", "no-such-account", "--count", "1",
                 "--region", "us")
    assert result.exit_code == 1
    assert one_error_line(result).startswith("error: 404 Not Found: Account not found")
    assert fake.count("AddAccountIps", applied=True) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["provisioning", "add-ips", "acct-1", "--region", "us"], "Missing option '--count'"),
        (["provisioning", "add-ips", "acct-1", "--count", "11", "--region", "us"],
         "error: count: must be from 1 to 10, got 11"),
        (["ips", "get", "not-an-ip"], "error: ip: must be an IP address"),
        (["ips", "update", "192.0.2.1"], "at least one of"),
        (["pools", "create", "x"], "error: name: must be from 2 to 64 characters"),
        (["ips", "frobnicate"], "No such command 'frobnicate'"),
        (["--timeout", "0", "ips", "list"], "Invalid value for '--timeout'"),
    ],
)
def test_usage_errors(fake: FakeSendGrid, args: list[str], message: str) -> None:
    result = api(fake, *args)
    assert result.exit_code == 2
    assert message in one_error_line(result)
    assert result.stdout == ""
    assert fake.count() == 0  # refused before anything was sent


def test_no_api_key_is_a_usage_error() -> None:
    result = invoke("ips", "list")
    assert result.exit_code == 2
    assert one_error_line(result) == (
        "error: no API key: pass --api-key or set SENDGRID_API_KEY")


def test_clear_text_base_url_is_a_usage_error() -> None:
    result = invoke("--api-key", KEY, "--base-url", "http://192.0.2.1", "ips", "list")
    assert result.exit_code == 2
    assert "must use https" in one_error_line(result)


def test_connection_refused_is_one_line() -> None:
    with running_fake() as server:
        url = server.url
    result = invoke("--api-key", KEY, "--base-url", url, "--max-attempts", "1", "ips", "list")
    assert result.exit_code == 1
    assert one_error_line(result).startswith("error: cannot connect")


def test_the_key_never_appears(
    fake: FakeSendGrid, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_backoff(monkeypatch)
    caplog.set_level(logging.DEBUG)
    fake.script("AddAccountIps", Fault.applied_error(502))
    ok = api(fake, "-vv", "--max-attempts", "3", "provisioning", "add-ips", "acct-1",
             "--count", "2", "--region", "us")
    assert ok.exit_code == 0, ok.stderr
    assert "reconciled AddAccountIps" in ok.stderr  # the -vv log reached stderr
    assert len(fake.account_ips("acct-1")) == 2

    wrong_key = invoke("--api-key", KEY + "-wrong", "--base-url", fake.url, "-vv",
                       "ips", "list")
    assert wrong_key.exit_code == 1
    assert "401 Unauthorized" in wrong_key.stderr
    assert "-wrong" not in wrong_key.stderr

    misplaced = invoke("--api-key", KEY, "--timeout", KEY, "ips", "list")
    assert misplaced.exit_code == 2
    assert "<redacted>" in one_error_line(misplaced)

    assert KEY not in caplog.text


def test_no_arguments_prints_help() -> None:
    result = invoke()
    assert result.exit_code == 2
    assert "Usage: sendgrid-ipam" in result.stderr
    assert "provisioning" in result.stderr


def nested_json_app(depth: int = 100_000) -> web.Application:
    """A server whose every reply is ``[`` nested ``depth`` times, a 200."""

    async def reply(request: web.Request) -> web.Response:
        return web.Response(text="[" * depth, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", reply)
    return app


@pytest.mark.parametrize("args", [
    ["ips", "list"],
    ["pools", "create", "marketing"],
    ["provisioning", "add-ips", "acct-1", "--count", "1", "--region", "us"],
])
def test_a_hostile_reply_is_one_line_never_a_traceback(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    no_backoff(monkeypatch)
    with running_app(nested_json_app()) as url:
        result = invoke("--api-key", KEY, "--base-url", url, "--max-attempts", "1",
                        "--timeout", "5", *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert len(one_error_line(result)) < 600


def test_an_unexpected_exception_is_one_line_without_the_key(
    fake: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sendgrid_ipam.cli import _output

    def broken(item: object) -> str:
        raise RuntimeError(f"bug\nwith {KEY} in it " + "x" * 2000)

    monkeypatch.setattr(_output, "to_json", broken)
    result = api(fake, "ips", "list")
    assert result.exit_code == 1
    line = one_error_line(result)
    assert line.startswith("error: unexpected RuntimeError: bug with <redacted> in it xxx")
    assert len(line) < 600


@pytest.mark.parametrize("table", [False, True])
def test_a_reply_echoing_the_key_is_printed_redacted(fake: FakeSendGrid, table: bool) -> None:
    result = api(fake, "pools", "create", KEY, *(["--table"] if table else []))  # checks KEY
    assert result.exit_code == 0, result.stderr
    assert "<redacted>" in result.stdout
    assert [pool.name for pool in fake.pools()] == [KEY]
