"""``python -m sendgrid_ipam.testing`` in a subprocess: starts, answers, stops on SIGINT.

Every wait is bounded, and the process is killed if a test fails half-way, so nothing hangs.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import aiohttp
import pytest

TIMEOUT = 15


@asynccontextmanager
async def _command(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sendgrid_ipam.testing",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        await asyncio.wait_for(process.communicate(), TIMEOUT)


async def _finish(process: asyncio.subprocess.Process) -> tuple[int, str, str]:
    stdout, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def _get(url: str, key: str) -> tuple[int, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url, headers={"Authorization": f"Bearer {key}"}) as response,
    ):
        return response.status, await response.json()


async def test_serves_other_processes_and_stops_cleanly_on_sigint() -> None:
    args: Sequence[str] = ("--port", "0", "--api-key", "SG.cli", "--account", "a1")
    async with _command(*args, "--account", "a2", "--ipam-ips", "2") as process:
        assert process.stdout is not None
        line = await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
        url = line.decode().strip()
        assert url.startswith("http://127.0.0.1:")
        status, body = await _get(f"{url}/v3/partners/accounts/a2/ips", "SG.cli")
        assert (status, body) == (200, {"result": [], "pages": {}})
        status, _ = await _get(f"{url}/v3/send_ips/ips", "SG.other")
        assert status == 401
        process.send_signal(signal.SIGINT)
        returncode, stdout, stderr = await _finish(process)
    assert returncode == 0
    assert stdout == ""  # nothing after the URL line
    assert stderr == ""  # no traceback
    assert "SG.cli" not in url


async def test_stops_on_sigterm_too() -> None:
    async with _command("--port", "0") as process:
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.readline(), TIMEOUT)
        process.terminate()
        returncode, _, stderr = await _finish(process)
    assert (returncode, stderr) == (0, "")


async def test_a_taken_port_is_an_error_message_not_a_traceback() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        async with _command("--port", str(port)) as process:
            returncode, stdout, stderr = await _finish(process)
    assert returncode == 1
    assert stdout == ""
    assert f"cannot listen on port {port}" in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    "args",
    [("--fault-error", "0.8", "--fault-applied-error", "0.8"), ("--fault-operation", "Nope",
     "--fault-error", "0.1"), ("--rate-limit", "0")],
    ids=["rates-over-1", "unknown-operation", "zero-rate-limit"],
)  # fmt: skip
async def test_bad_options_are_usage_errors(args: Sequence[str]) -> None:
    async with _command("--port", "0", *args) as process:
        returncode, _, stderr = await _finish(process)
    assert returncode == 2
    assert "error:" in stderr
    assert "Traceback" not in stderr
