"""Shared pieces of the benchmarks: the server process, machine facts, the call runner, stats.

Only the standard library is imported at module level, so a memory-measuring child can import
this module without paying for aiohttp (the contenders import their libraries when loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.metadata
import json
import os
import platform
import select
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Self

ROOT: Final = Path(__file__).resolve().parent.parent
LOOPBACK: Final = "127.0.0.1"
SERVER_START_TIMEOUT: Final = 20.0
SERVER_STOP_TIMEOUT: Final = 5.0
SERVER_MAX_LIFETIME: Final = 900.0
STATS_TIMEOUT: Final = 5.0
PROXY_VARIABLES: Final = ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy")

# Library versions printed with every result (distribution name -> label).
VERSIONED: Final = {
    "aiohttp": "aiohttp",
    "httpx": "httpx",
    "sendgrid": "sendgrid",
    "python-http-client": "python-http-client",
    "sendgrid-ipam": "sendgrid_ipam",
}


def loopback_only() -> None:
    """Drop proxy settings so urllib/httpx cannot route a loopback benchmark anywhere else."""
    for name in list(os.environ):
        if name.lower() in PROXY_VARIABLES:
            del os.environ[name]
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = f"{LOOPBACK},localhost"


def stop_on_sigterm() -> None:
    """Make SIGTERM unwind like Ctrl-C, so ``finally`` blocks stop the server and children."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


def command_line(module: str) -> str:
    """The exact command that was run, as the reader would type it from the project root."""
    try:
        python = os.path.relpath(sys.executable)
    except ValueError:
        python = sys.executable
    return shlex.join([python, "-m", module, *sys.argv[1:]])


# --------------------------------------------------------------------------------------------
# The server process


class ChildProcess:
    """A helper process as a context manager: started on entry and stopped on exit, whatever
    the exit, including a failure to start or while waiting for it to be ready (so ``stop``
    must cope with a process that never started)."""

    def _start(self) -> None:
        raise NotImplementedError

    def _wait_ready(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self._start()
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class BenchServer(ChildProcess):
    """``benchmarks._server`` in a separate process on a free loopback port.

    A context manager: the server is terminated (then killed) on exit, whatever the exit. It is
    started in its own session so the terminal's Ctrl-C reaches only us; it also stops when its
    stdin (our pipe) closes and after ``max_lifetime`` seconds, in case we die without cleanup.
    """

    def __init__(self, *, cpu: int | None = None, max_lifetime: float = SERVER_MAX_LIFETIME):
        self._cpu = cpu
        self._max_lifetime = max_lifetime
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def _start(self) -> None:
        command = [sys.executable, "-m", "benchmarks._server",
                   "--max-lifetime", str(self._max_lifetime)]
        if self._cpu is not None:
            command += ["--cpu", str(self._cpu)]
        self._process = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            start_new_session=True,
        )

    def _wait_ready(self) -> None:
        self.port = self._read_port()

    def _read_port(self) -> int:
        process = self._process
        assert process is not None
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], SERVER_START_TIMEOUT)
        line = process.stdout.readline().decode() if ready else ""
        if not line.startswith("PORT "):
            raise RuntimeError(f"bench server did not start (said {line!r}, "
                               f"exit code {process.poll()})")
        return int(line.split()[1])

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(SERVER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(SERVER_STOP_TIMEOUT)
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


async def server_stats(port: int) -> dict[str, float]:
    """The server's request and connection counters (its own stats call is not counted)."""
    async with asyncio.timeout(STATS_TIMEOUT):
        reader, writer = await asyncio.open_connection(LOOPBACK, port)
        try:
            writer.write(b"GET /_bench/stats HTTP/1.1\r\nHost: bench\r\n"
                         b"Connection: close\r\n\r\n")
            raw = await reader.read()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"bench server stats failed: {head[:80]!r}")
    stats: dict[str, float] = json.loads(body)
    return stats


# --------------------------------------------------------------------------------------------
# Machine facts


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def package_version(distribution: str, module: str) -> str:
    """Installed version, or the in-tree version for a package run from the source tree."""
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version(distribution)
    try:
        version = importlib.import_module(f"{module}._version")
    except Exception as exc:  # a library being written may fail to import: say so, go on
        return f"not importable ({type(exc).__name__}: {exc})"
    return f"{getattr(version, '__version__', '?')} (source tree)"


def machine_facts() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "load_average": [round(x, 2) for x in load],
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "versions": {
            label: package_version(dist, label.replace("-", "_"))
            for dist, label in VERSIONED.items()
        },
    }


def print_header(title: str, module: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Print the command and machine facts; return them for the JSON output."""
    facts = machine_facts()
    print(f"# {title}")
    print(f"command: {command_line(module)}")
    print(f"machine: {facts['cpu']}, {facts['cores']} cores "
          f"({facts['usable_cores']} usable), load average {facts['load_average']}")
    print(f"python:  {facts['python']} on {facts['platform']}")
    print("versions: " + ", ".join(f"{k} {v}" for k, v in facts["versions"].items()))
    for key, value in (extra or {}).items():
        print(f"{key}: {value}")
    print(flush=True)
    return {"command": command_line(module), "machine": facts, **(extra or {})}


# --------------------------------------------------------------------------------------------
# Running calls and summarising


@dataclass(frozen=True, slots=True)
class RunResult:
    completed: int  # calls that returned
    abandoned: int  # calls still in flight at ``abandon_after``, cancelled


async def run_calls(
    call: Callable[[int], Awaitable[object]],
    count: int,
    concurrency: int,
    *,
    stop_after: float | None = None,
    abandon_after: float | None = None,
) -> RunResult:
    """Make up to ``count`` calls with at most ``concurrency`` in flight.

    ``min(concurrency, count)`` workers pull call numbers from one shared iterator, so there are
    never more coroutines than calls in flight (no 10,000 tasks created up front). Two time
    bounds keep a round of a very slow client short: after ``stop_after`` seconds no new call
    starts; after ``abandon_after`` seconds the calls still in flight are cancelled and counted
    as abandoned. The first failure cancels the rest and is raised.
    """
    numbers = iter(range(count))
    completed = 0
    stop_at = None if stop_after is None else time.perf_counter() + stop_after

    async def worker() -> None:
        nonlocal completed
        for number in numbers:
            await call(number)
            completed += 1
            if stop_at is not None and time.perf_counter() >= stop_at:
                return

    tasks = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, count)))]
    try:
        done, pending = await asyncio.wait(
            tasks, timeout=abandon_after, return_when=asyncio.FIRST_EXCEPTION
        )
        for task in done:
            task.result()  # raise the first failure, if any
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return RunResult(completed, len(pending))


def parse_int_list(text: str) -> list[int]:
    values = [int(part) for part in text.split(",") if part.strip()]
    if not values or any(v < 1 for v in values):
        raise ValueError(f"expected positive integers separated by commas, got {text!r}")
    return values


def parse_choices(text: str, allowed: Sequence[str]) -> list[str]:
    values = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [v for v in values if v not in allowed]
    if unknown or not values:
        raise ValueError(f"unknown {unknown or text!r}; choose from {', '.join(allowed)}")
    return values


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


@contextlib.contextmanager
def pinned_to(cpu: int | None) -> Iterator[None]:
    """Pin this process to one CPU for the duration (no-op when ``cpu`` is None)."""
    if cpu is None:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---:" if i else "---" for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _numeric(text: str) -> bool:
    return text[:1].isdigit() or text in ("n/a", "inf")


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain table: numeric columns right-aligned, others left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    right = [all(_numeric(r[i]) for r in rows) for i in range(len(headers))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if r else c.ljust(w)
                         for c, w, r in zip(cells, widths, right, strict=True)).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, rows)])


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
        print(f"\nwrote {path}")


@dataclass(frozen=True, slots=True)
class Ratio:
    """A ratio that prints as ``0.93x`` or ``n/a``."""

    value: float | None

    @classmethod
    def of(cls, numerator: float, denominator: float) -> Ratio:
        return cls(numerator / denominator if denominator else None)

    def __str__(self) -> str:
        return "n/a" if self.value is None else f"{self.value:.2f}x"
