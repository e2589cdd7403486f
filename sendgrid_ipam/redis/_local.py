"""A throwaway ``redis-server`` on a free loopback port, for the tests and the benchmarks.

No persistence (``--save "" --appendonly no``) unless given a directory: then an append-only
file fsynced on every write (``--appendonly yes --appendfsync always``), so that a restart
keeps every write it acknowledged. Stopped by its PID (SIGTERM, then SIGKILL).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time

__all__ = ["LocalRedis"]

_READY_WITHIN = 5.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class LocalRedis:
    """One ``redis-server`` process on 127.0.0.1: `start`, `url`, `stop` (and again).

    Raises:
        FileNotFoundError: no ``redis-server`` on the PATH (from the constructor).
    """

    def __init__(self, binary: str | None = None, *, directory: str | None = None) -> None:
        found = binary or shutil.which("redis-server")
        if found is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install redis-server)")
        self.binary = found
        self.directory = directory
        self.port = _free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (on the same port as before, if restarted) and wait until it
        answers PING.

        Raises:
            RuntimeError: it exited or did not answer within 5 s (it is stopped then).
        """
        persistence = ["--appendonly", "no"] if self.directory is None else [
            "--dir", self.directory, "--appendonly", "yes", "--appendfsync", "always"]
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *persistence],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        until = time.monotonic() + _READY_WITHIN
        while time.monotonic() < until:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise RuntimeError(f"redis-server exited at start ({code})")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def stop(self, *, kill: bool = False) -> None:
        """Stop the server, if running (SIGTERM to its PID, then SIGKILL if it lingers;
        ``kill``: SIGKILL at once, as a crash would)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
