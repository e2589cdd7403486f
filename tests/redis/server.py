"""A real Redis for the tests: ``redis-server`` on a free loopback port, stopped by its PID
(`sendgrid_ipam.redis._local.LocalRedis`).

Without the binary or redis-py the tests that need them skip, saying how to install them; in
CI (``CI=true``) they fail instead, so that a CI run can never pass by skipping them. Nothing
here imports redis-py at import time, so the test modules load (and skip) without it.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sendgrid_ipam.redis import RedisCoordinator
    from sendgrid_ipam.redis._local import LocalRedis as RedisServer

__all__ = ["RedisServer", "coordinator", "redis_binary", "running_server"]

INSTALL = "apt-get install redis-server (and pip install -e '.[redis]')"


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: CI must run the Redis tests ({INSTALL})")
    pytest.skip(f"{reason}: {INSTALL}")


def redis_binary() -> str:
    """The redis-server binary (and redis-py importable), or skip/fail as `_missing` says."""
    try:
        import redis  # noqa: F401
    except ImportError:
        _missing("redis-py is not installed")
    binary = shutil.which("redis-server")
    if binary is None:
        _missing("redis-server is not installed")
    assert binary is not None
    return binary


def running_server(directory: str | None = None) -> Iterator[RedisServer]:
    """A started server, stopped when the generator closes (the fixtures' body); with
    `directory`, one that keeps its data there (fsynced on every write) across restarts."""
    binary = redis_binary()
    from sendgrid_ipam.redis._local import LocalRedis

    server = LocalRedis(binary, directory=directory)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.stop()


def coordinator(url: str, **options: Any) -> RedisCoordinator:
    """``RedisCoordinator.from_url(url, **options)`` (imported only when a test runs)."""
    from sendgrid_ipam.redis import RedisCoordinator

    return RedisCoordinator.from_url(url, **options)


async def run_worker(script: Path, args: list[str], key: str, together: asyncio.Barrier) -> Any:
    """Run a worker script in a subprocess that says "ready", waits for "go" (sent once every
    worker of ``together`` is ready, so that all start at once) and prints its JSON report.
    The process is killed (by its own PID) if the test fails or takes over 60 s."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, str(script), *args, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "SENDGRID_API_KEY": key},
    )
    assert process.stdout is not None
    try:
        async with asyncio.timeout(60):
            ready = await process.stdout.readline()
            assert ready == b"ready\n", ready
            await together.wait()
            out, err = await process.communicate(b"go\n")
    except BaseException:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, err.decode()
    return json.loads(out)
