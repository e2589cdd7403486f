"""A real Redis for the tests: ``redis-server`` on a free loopback port, stopped by its PID.

Without the binary (or redis-py) the tests that need it skip, saying how to install it; in
CI (``CI=true``) they fail instead, so that a CI run can never pass by skipping them.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

INSTALL = "apt-get install redis-server (and pip install -e '.[redis]')"
_READY_WITHIN = 5.0


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason}: CI must run the Redis tests ({INSTALL})")
    pytest.skip(f"{reason}: {INSTALL}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1; ``url`` for clients, ``stop``/``start``."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        until = time.monotonic() + _READY_WITHIN
        while time.monotonic() < until:
            if self.process.poll() is not None:
                pytest.fail(f"redis-server exited at start ({self.process.returncode})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.01)
        self.stop()
        pytest.fail(f"redis-server did not answer on port {self.port} within {_READY_WITHIN}s")

    def stop(self) -> None:
        """Stop the server (SIGTERM to its PID, then SIGKILL if it lingers)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


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


def running_server() -> Iterator[RedisServer]:
    """A started server, stopped when the generator closes (the fixtures' body)."""
    server = RedisServer(redis_binary())
    server.start()
    try:
        yield server
    finally:
        server.stop()
