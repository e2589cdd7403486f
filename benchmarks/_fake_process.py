"""The fake SendGrid in a process of its own, for ``bench_bulk``.

In the benchmark's own process the fake would share the client's core and charge the client
for the fake's half of every request, of every extra request a fault causes, and of every
reconnection after a dropped connection. In its own process (as ``bench_client``'s server is)
the client is what the figure measures, as it would be against SendGrid.

`FakeProcess` starts one `sendgrid_ipam.testing.FakeSendGrid` in a child process and, after
the run, fetches a `FakeSnapshot` of what the fake saw and holds: enough for the benchmark's
correctness counts. The child stops when told, when the parent's end of the pipe closes (the
parent died), or after ``max_lifetime`` seconds, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Final

from benchmarks._common import ChildProcess

if TYPE_CHECKING:
    from sendgrid_ipam.testing import FakeSendGrid

START_TIMEOUT: Final = 30.0
REPLY_TIMEOUT: Final = 60.0
STOP_TIMEOUT: Final = 5.0


@dataclass(frozen=True, slots=True)
class FakeSettings:
    api_key: str
    accounts: tuple[str, ...]
    seed: int
    error: float = 0.0
    applied_error: float = 0.0
    applied_drop: float = 0.0
    window_every: float = 0.0  # seconds between 429 windows (0: none)
    window_length: float = 0.0  # seconds each 429 window lasts
    latency: float = 0.0  # seconds every reply waits (a 'slow' fault on every request)


@dataclass(frozen=True, slots=True)
class FakeSnapshot:
    """What the fake received and what it holds, after a run."""

    requests: int
    by_operation: dict[str, int]
    faults: dict[str, int]
    writes_applied: int  # AddAccountIps requests that took effect
    account_ips: dict[str, tuple[str, ...]]  # every account's IPs, newest first
    limited: int = 0  # requests answered 429


def make_fake(settings: FakeSettings) -> FakeSendGrid:
    """The fake these settings describe (not started)."""
    from sendgrid_ipam.testing import FakeSendGrid, FaultRates

    rates = None
    if settings.error or settings.applied_error or settings.applied_drop or settings.latency:
        rates = FaultRates(error=settings.error, applied_error=settings.applied_error,
                           applied_drop=settings.applied_drop,
                           slow=1.0 if settings.latency else 0.0, slow_delay=settings.latency)
    return FakeSendGrid(api_key=settings.api_key, accounts=settings.accounts, faults=rates,
                        seed=settings.seed)


def snapshot_of(fake: FakeSendGrid, accounts: tuple[str, ...]) -> FakeSnapshot:
    """What ``fake`` received and what ``accounts`` hold now."""
    return FakeSnapshot(
        requests=len(fake.log),
        by_operation=dict(Counter(str(r.operation_id) for r in fake.log)),
        faults=dict(Counter(r.fault for r in fake.log if r.fault)),
        writes_applied=fake.count("AddAccountIps", applied=True),
        account_ips={a: tuple(fake.account_ips(a)) for a in accounts},
        limited=fake.count(status=429),
    )


@contextlib.asynccontextmanager
async def rate_limit_windows(fake: FakeSendGrid, settings: FakeSettings) -> AsyncIterator[None]:
    """Every ``window_every`` seconds, a 429 window of ``window_length`` seconds (every
    request refused, Remaining 0, Reset its end), while the block runs."""
    if not settings.window_every:
        yield
        return

    async def windows() -> None:
        while True:
            await asyncio.sleep(settings.window_every)
            fake.rate_limit_window(settings.window_length)

    task = asyncio.create_task(windows())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _serve(settings: FakeSettings, conn: Connection, max_lifetime: float) -> None:
    """The child: serve until asked for the snapshot (or the parent is gone)."""

    async def main() -> None:
        async with make_fake(settings) as fake, rate_limit_windows(fake, settings):
            conn.send(fake.url)
            loop = asyncio.get_running_loop()
            # conn.poll blocks a worker thread, not the loop; EOF (parent gone) ends it too.
            asked = await loop.run_in_executor(None, conn.poll, max_lifetime)
            if not asked:
                return
            with contextlib.suppress(EOFError):
                conn.recv()
            conn.send(snapshot_of(fake, settings.accounts))

    with contextlib.suppress(BrokenPipeError, EOFError, KeyboardInterrupt):
        asyncio.run(main())


class FakeProcess(ChildProcess):
    """``with FakeProcess(settings) as fake:`` serve at ``fake.url``; ``fake.snapshot()``."""

    def __init__(self, settings: FakeSettings, *, max_lifetime: float = 600.0) -> None:
        context = multiprocessing.get_context("spawn")  # no inherited loop, threads or locks
        self._conn, child_conn = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(settings, child_conn, max_lifetime), daemon=True,
            name="bench-fake-sendgrid",
        )
        self._child_conn = child_conn
        self.url = ""

    def _start(self) -> None:
        self._process.start()
        self._child_conn.close()  # the child holds its own copy

    def _wait_ready(self) -> None:
        self.url = str(self._receive(START_TIMEOUT, "start"))

    def snapshot(self) -> FakeSnapshot:
        """What the fake saw and holds; the fake stops serving once it has answered."""
        self._conn.send("snapshot")
        snapshot = self._receive(REPLY_TIMEOUT, "snapshot")
        assert isinstance(snapshot, FakeSnapshot)
        return snapshot

    def _receive(self, timeout: float, what: str) -> object:
        if not self._conn.poll(timeout):
            raise RuntimeError(f"the fake SendGrid process did not answer ({what}) within "
                               f"{timeout:.0f}s (exit code {self._process.exitcode})")
        try:
            return self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the fake SendGrid process ended ({what}; exit code "
                               f"{self._process.exitcode})") from None

    def stop(self) -> None:
        """End the child, whatever state it is in."""
        self._conn.close()  # EOF for a child still waiting
        self._child_conn.close()
        if self._process.pid is None:
            return  # never started
        self._process.join(STOP_TIMEOUT)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(STOP_TIMEOUT)
