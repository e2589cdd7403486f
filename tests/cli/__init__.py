"""Tests of the ``sendgrid-ipam`` command, against the fake server over loopback.

CliRunner runs each command in the test's thread, and the command runs its own event loop
(``asyncio.run``); so the tests are plain sync functions, and the fake runs in a background
thread with its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from sendgrid_ipam import RetryPolicy
from sendgrid_ipam.cli import _common
from sendgrid_ipam.cli._app import cli
from sendgrid_ipam.testing import FakeSendGrid

T = TypeVar("T")

KEY = "SG.cli-secret-do-not-print"


@contextlib.contextmanager
def background_loop() -> Iterator[Callable[[Coroutine[Any, Any, Any]], Any]]:
    """An event loop in a background thread; yields ``call(coro)``, which runs it there."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-sendgrid", daemon=True)
    thread.start()

    def call(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=10)

    try:
        yield call
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


@contextlib.contextmanager
def running_fake(**options: Any) -> Iterator[FakeSendGrid]:
    """A FakeSendGrid (api_key KEY) served from a background thread's event loop."""

    async def make() -> FakeSendGrid:
        return FakeSendGrid(**{"api_key": KEY, **options})

    with background_loop() as call:
        fake = call(make())
        call(fake.start())
        try:
            yield fake
        finally:
            call(fake.close())


@contextlib.contextmanager
def running_app(app: web.Application) -> Iterator[str]:
    """``app`` served on 127.0.0.1 from a background thread; yields its URL."""
    runner = web.AppRunner(app)

    async def start() -> str:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    with background_loop() as call:
        url = call(start())
        try:
            yield url
        finally:
            call(runner.cleanup())


def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the policy that ``--max-attempts N`` builds wait 0 s between attempts."""
    import functools

    monkeypatch.setattr(_common, "RetryPolicy", functools.partial(
        RetryPolicy, initial_backoff=0.0, settle=0.0))


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Result:
    """Run ``sendgrid-ipam ARGS``; checks that no traceback and no API key got out."""
    result = CliRunner().invoke(
        cli, list(args), env={"SENDGRID_API_KEY": None, **(env or {})}, catch_exceptions=True
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert KEY not in result.stdout
    assert KEY not in result.stderr
    assert "Traceback" not in result.stderr
    return result


def api(fake: FakeSendGrid, *args: str) -> Result:
    """Run a command against ``fake`` with the key and its URL as global options."""
    return invoke("--api-key", KEY, "--base-url", fake.url, *args)


def json_lines(result: Result) -> list[Any]:
    """stdout as one JSON value per line (after checking the command succeeded)."""
    assert result.exit_code == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def one_error_line(result: Result) -> str:
    """The only line of stderr, which must be an error line."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0][:300]
    return lines[0]
