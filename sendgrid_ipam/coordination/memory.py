"""The in-process coordinator: the default, shared by the calls of one client."""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager

from .._text import shown
from ..errors import RequestTimeoutError
from ..ratelimit import PaceRules, PaceState, check_max_closure, plenty_left
from ..retry import RetryBudget
from .base import Coordinator, Lease, LeaseLostError
from .pacer import Pacer

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
        if not coordinator._waiters:  # (uncontended, the usual case: no lookup)
            del coordinator._held[self.key]
            return
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


_new_lease = object.__new__


class MemoryCoordinator(Coordinator):
    """Pacer, retry budget and leases for the calls of one process.

    Rate limits are paced per endpoint (see `sendgrid_ipam.ratelimit`): once a reply says
    at most ``pace_below`` requests remain, that endpoint's requests share one budget until
    its reset, and a 429 holds that endpoint alone. Endpoints whose replies carry no
    rate-limit headers, or plenty of budget, are not paced and cost nothing.

    Leases here never expire: a holder in this process always releases at the end of its
    ``async with`` block (its call's deadline bounds how long that is). Keys with no holder
    and no waiter are forgotten; only each key's last token is kept (one integer per key
    ever written), so that tokens of one key grow by one per holding.

    Args:
        budget: the retry budget (default: a fresh `RetryBudget`).
        clock: unused by pacing (kept for callers that pass it).
        wall_clock: Unix time, which paces are kept in.
        sleep: how to wait while an endpoint is held (injected by tests).
        max_closure: the longest one reply may hold an endpoint, in seconds (then a request
            goes through as a probe).
        pace_below: pace an endpoint once at most this many of its requests remain (keep
            it above the requests that can be in flight at once).
        rng: draws the jitter after a 429.

    Raises:
        ValueError: ``max_closure`` is not a positive finite number, or ``pace_below`` is
            not a positive integer.
    """

    def __init__(
        self,
        *,
        budget: RetryBudget | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_closure: float = 60.0,
        pace_below: int = 128,
        rng: random.Random | None = None,
    ) -> None:
        check_max_closure(max_closure)
        if isinstance(pace_below, bool) or not isinstance(pace_below, int) or pace_below < 1:
            raise ValueError(f"pace_below must be a positive integer, not {shown(pace_below)}")
        self.budget: RetryBudget = budget or RetryBudget()
        self.rules: PaceRules = PaceRules(max_closure=float(max_closure), pace_below=pace_below)
        self.plenty: int | None = pace_below
        """The pacing constants."""
        self.pacer: Pacer = Pacer(self.rules, wall_clock, sleep, rng or random.Random())
        """The per-endpoint paces."""
        self._held: dict[str, _MemoryLease] = {}  # each held key's lease
        self._waiters: dict[str, deque[asyncio.Future[None]]] = {}  # only while contended
        self._tokens: dict[str, int] = {}  # each key's last token
        self.quiet: bool = True

    def __repr__(self) -> str:
        return f"<MemoryCoordinator {self.budget!r} {self.pacer!r} leases held={len(self._held)}>"

    # ---------------------------------------------------------------- pacing

    def pace(self, endpoint: str) -> PaceState | None:
        """The pace of ``endpoint``, or None while it is not paced."""
        return self.pacer.pace(endpoint)

    def held_for(self, endpoint: str) -> float:
        """Seconds until a request to ``endpoint`` could start (0: now); reserves nothing."""
        return self.pacer.held_for(endpoint)

    def gate_open(self, endpoint: str) -> bool:
        """True when a request to ``endpoint`` may start now; it is then counted."""
        if self.pacer.idle:
            self.quiet = True
            return True
        return self.pacer.try_start(endpoint)

    async def wait_at_gate(self, endpoint: str, *, within: float,
                           lease: Lease | None = None) -> float:
        """Wait for ``endpoint``'s pace to let a request start, within ``within`` seconds.

        ``lease`` is not needed: a lease held in one process cannot be lost.

        Waiters wake when the wait is over or when a reply brings news of the endpoint.

        Raises:
            RateLimitError: the endpoint stays held longer than ``within`` seconds.
        """
        return await self.pacer.wait(endpoint, within)

    def observe(self, endpoint: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a reply that carries rate-limit headers (or is a 429)."""
        if self.quiet and status != 429 and plenty_left(headers, self.rules.pace_below):
            return  # the usual reply: nothing paced, plenty left
        self.pacer.observe(endpoint, status, headers)
        if not self.pacer.idle:
            self.quiet = False

    def unanswered(self, endpoint: str) -> None:
        """This task's last request to ``endpoint`` ended with no news (see `Coordinator`)."""
        if not self.pacer.idle:
            self.pacer.unanswered(endpoint)

    # ---------------------------------------------------------------- leases

    def lease(
        self, key: str, *, wait: float, deferred: bool = False
    ) -> AbstractAsyncContextManager[Lease]:
        """Hold ``key`` for the block, waiting (at most ``wait`` s) behind other holders
        (taken on entry, ``deferred`` or not: no round trip to save)."""
        return _MemoryLease(self, key, wait)

    def try_lease(self, key: str) -> Lease | None:
        """The lease on ``key`` if nobody holds it (no await: the uncontended case)."""
        held = self._held
        if key in held:
            return None
        # (No __init__ call, and no ``wait``, which only `_take` reads: the hot path.)
        held[key] = lease = _new_lease(_MemoryLease)
        lease.coordinator = self
        lease.key = key
        lease.token = self._tokens[key] = self._tokens.get(key, 0) + 1
        lease.held = True
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
                with contextlib.suppress(ValueError):  # a release may have dropped it already
                    waiters.remove(waiter)
                if not waiters and self._waiters.get(key) is waiters:
                    del self._waiters[key]
            if isinstance(exc, TimeoutError):
                raise RequestTimeoutError(
                    f"the call's deadline was reached waiting for the write lease on {key!r} "
                    "(another write to it is in flight)", request_sent=False,
                ) from None
            raise
