"""The in-process coordinator: the default, shared by the calls of one client."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager

from ..errors import ErrorDetail, RateLimitError, RequestTimeoutError
from ..ratelimit import RateLimit, RateLimitGate
from ..retry import RetryBudget, logger
from .base import Coordinator, Lease, LeaseLostError

__all__ = ["MemoryCoordinator"]


class _MemoryLease(Lease):
    """A lease of the in-process coordinator; also the ``async with`` that holds it."""

    __slots__ = ("coordinator", "held", "key", "token", "wait")
    losable = False  # in one process, only its holder releases it

    def __init__(self, coordinator: MemoryCoordinator, key: str, wait: float) -> None:
        self.coordinator = coordinator
        self.key = key
        self.wait = wait
        self.token = 0
        self.held = False

    async def __aenter__(self) -> Lease:
        await self.coordinator._take(self)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release_now()

    def release_now(self) -> None:
        """Release the lease, to the longest waiter still waiting if any."""
        if not self.held:
            return
        self.held = False
        coordinator = self.coordinator
        waiters = coordinator._waiters.get(self.key)
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the key stays held: ownership passes on
                return
        del coordinator._held[self.key]
        if waiters is not None:
            del coordinator._waiters[self.key]

    async def check(self) -> None:
        """In one process a lease is lost only once released."""
        if not self.held:
            raise LeaseLostError(f"the write lease on {self.key!r} is no longer held")

    def __repr__(self) -> str:
        return f"<lease {self.key!r} token={self.token} {'held' if self.held else 'not held'}>"


class MemoryCoordinator(Coordinator):
    """Gate, retry budget and leases for the calls of one process.

    Leases here never expire: a holder in this process always releases at the end of its
    ``async with`` block (its call's deadline bounds how long that is). Keys with no holder
    and no waiter are forgotten; only each key's last token is kept (one integer per key
    ever written), so that tokens of one key grow by one per holding.

    Args:
        budget: the retry budget (default: a fresh `RetryBudget`).
        clock: a monotonic clock (tests inject one so that they never wait for real).
        wall_clock: a Unix clock, for ``Retry-After`` dates and rate-limit resets.
        sleep: the async sleep of gate waits (tests inject one).
        max_closure: the longest one reply may close the gate, in seconds (then a request
            goes through as a probe).
    """

    def __init__(
        self,
        *,
        budget: RetryBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_closure: float = 60.0,
    ) -> None:
        self.budget: RetryBudget = budget or RetryBudget()
        self.gate: RateLimitGate = RateLimitGate(clock=clock, wall_clock=wall_clock, sleep=sleep,
                                                 max_closure=max_closure)
        self._held: dict[str, _MemoryLease] = {}  # each held key's lease
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}  # only while contended
        self._tokens: dict[str, int] = {}  # each key's last token
        self.quiet: bool = True

    def __repr__(self) -> str:
        return f"<MemoryCoordinator {self.budget!r} leases held={len(self._held)}>"

    # ---------------------------------------------------------------- gate

    def gate_open(self, endpoint: str) -> bool:
        """True while no reply has closed the gate (one gate for every endpoint, for now)."""
        if self.gate.reopen_at and self.gate.is_closed():
            return False
        self.quiet = True
        return True

    async def wait_at_gate(self, endpoint: str, *, within: float) -> float:
        """Wait for the gate to reopen, unless it stays closed longer than ``within``."""
        gate = self.gate
        closed_for = gate.closed_for()
        if closed_for > within:
            raise RateLimitError(
                429, [ErrorDetail(f"rate-limit window closed for {closed_for:.1f}s more")],
                "", {}, RateLimit(reset_at=gate.reopens_at()),
            )
        logger.debug("holding a request %.2fs for the rate-limit window", closed_for,
                     extra={"sendgrid_ipam_event": "rate_limited", "wait": closed_for})
        return await gate.wait()

    def observe(self, endpoint: str, status: int, headers: Mapping[str, str]) -> None:
        """Close the gate as the reply says."""
        self.gate.observe(status, headers)
        if self.gate.reopen_at:
            self.quiet = False

    # ---------------------------------------------------------------- leases

    def lease(self, key: str, *, wait: float) -> AbstractAsyncContextManager[Lease]:
        """Hold ``key`` for the block, waiting (at most ``wait`` s) behind other holders."""
        return _MemoryLease(self, key, wait)

    def try_lease(self, key: str) -> Lease | None:
        """The lease on ``key`` if nobody holds it (no await: the uncontended case)."""
        if key in self._held:
            return None
        lease = _MemoryLease.__new__(_MemoryLease)  # (no __init__ call: this is the hot path)
        lease.coordinator = self
        lease.key = key
        lease.wait = 0.0
        lease.token = self._tokens[key] = self._tokens.get(key, 0) + 1
        lease.held = True
        self._held[key] = lease
        return lease

    async def _take(self, lease: _MemoryLease) -> None:
        key = lease.key
        if key in self._held:
            await self._queue(key, lease.wait)
        lease.token = self._tokens[key] = self._tokens.get(key, 0) + 1
        lease.held = True
        self._held[key] = lease

    async def _queue(self, key: str, wait: float) -> None:
        """Wait until the holder of ``key`` hands it on to us (first come, first served)."""
        waiter = asyncio.get_running_loop().create_future()
        waiters = self._waiters.setdefault(key, deque())
        waiters.append(waiter)
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                # Handed the lease just as we gave up: take it, and pass it on at once.
                orphan = _MemoryLease(self, key, 0.0)
                orphan.held = True
                self._held[key] = orphan
                orphan.release_now()
            else:
                waiters.remove(waiter)
                if not waiters and self._waiters.get(key) is waiters:
                    del self._waiters[key]
            if isinstance(exc, TimeoutError):
                raise RequestTimeoutError(
                    f"the call's deadline was reached waiting for the write lease on {key!r} "
                    "(another write to it is in flight)", request_sent=False,
                ) from None
            raise
