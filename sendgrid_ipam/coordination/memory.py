"""The in-process coordinator: the default, shared by the calls of one client."""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager

from .._text import shown
from ..errors import ErrorDetail, RateLimitError, RequestTimeoutError
from ..ratelimit import (
    PaceRules,
    PaceState,
    RateLimit,
    RateLimitGate,
    learn,
    plenty_left,
    read_limits,
    reserve,
)
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
        """Release the lease (to the next waiter, if any)."""
        if self.held:
            self.held = False
            self.coordinator._hand_on(self.key)

    async def check(self) -> None:
        """In one process a lease is lost only once released."""
        if not self.held:
            raise LeaseLostError(f"the write lease on {self.key!r} is no longer held")

    def __repr__(self) -> str:
        return f"<lease {self.key!r} token={self.token} {'held' if self.held else 'not held'}>"


class _Key:
    """One key's holder and its queue of waiters (first come, first served)."""

    __slots__ = ("held", "waiters")

    def __init__(self) -> None:
        self.held = False
        self.waiters: deque[asyncio.Future[None]] = deque()


class _Pace:
    """One paced endpoint: its `PaceState`, and the tasks waiting for news of it."""

    __slots__ = ("generation", "state", "wake")

    def __init__(self, state: PaceState, generation: int) -> None:
        self.state = state
        self.generation = generation
        self.wake: asyncio.Future[None] | None = None  # set when a reply brings news

    def notify(self) -> None:
        if self.wake is not None:
            if not self.wake.done():
                self.wake.set_result(None)
            self.wake = None


# The ticket of the task's last paced request: (endpoint, generation, ticket). The reservation
# and the reply's observe run in the same task, so a context variable carries it between them.
_TICKET: contextvars.ContextVar[tuple[str, int, int] | None] = contextvars.ContextVar(
    "sendgrid_ipam_pace_ticket", default=None)


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
        RateLimitGate(max_closure=max_closure)  # the same check of max_closure
        if isinstance(pace_below, bool) or not isinstance(pace_below, int) or pace_below < 1:
            raise ValueError(f"pace_below must be a positive integer, not {shown(pace_below)}")
        self.budget = budget or RetryBudget()
        self.rules = PaceRules(max_closure=float(max_closure), pace_below=pace_below)
        """The pacing constants."""
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._paces: dict[str, _Pace] = {}
        self._generations = 0
        self._keys: dict[str, _Key] = {}
        self._tokens: dict[str, int] = {}  # each key's last token
        self.quiet = True

    def __repr__(self) -> str:
        return (f"<MemoryCoordinator {self.budget!r} paced={sorted(self._paces)} "
                f"leases held={len(self._keys)}>")

    # ---------------------------------------------------------------- pacing

    def pace(self, endpoint: str) -> PaceState | None:
        """The pace of ``endpoint``, or None while it is not paced."""
        pace = self._paces.get(endpoint)
        return None if pace is None else pace.state

    def held_for(self, endpoint: str) -> float:
        """Seconds until a request to ``endpoint`` could start (0: now); reserves nothing."""
        pace = self._paces.get(endpoint)
        if pace is None:
            return 0.0
        return reserve(pace.state, self._wall_clock(), self.rules)[0]

    def gate_open(self, endpoint: str) -> bool:
        """True when a request to ``endpoint`` may start now; it is then counted."""
        pace = self._paces.get(endpoint)
        if pace is None:
            if not self._paces:
                self.quiet = True
            return True
        return self._try_reserve(endpoint, pace, self._wall_clock()) == 0.0

    def _try_reserve(self, endpoint: str, pace: _Pace, now: float) -> float:
        delay, state = reserve(pace.state, now, self.rules)
        if not delay:
            pace.state = state
            _TICKET.set((endpoint, pace.generation, state.sent))
        return delay

    async def wait_at_gate(self, endpoint: str, *, within: float) -> float:
        """Wait for ``endpoint``'s pace to let a request start, within ``within`` seconds.

        Waiters wake when the wait is over or when a reply brings news of the endpoint.
        """
        waited = 0.0
        started = self._wall_clock()
        while True:
            pace = self._paces.get(endpoint)
            if pace is None:
                return waited
            now = self._wall_clock()
            delay = self._try_reserve(endpoint, pace, now)
            if not delay:
                return waited
            waited = max(0.0, now - started)
            if waited + delay > within:
                raise RateLimitError(
                    429, [ErrorDetail(f"rate-limit window closed for {delay:.1f}s more")],
                    "", {}, RateLimit(reset_at=now + delay),
                )
            logger.debug("holding a request to %s %.3fs for the rate limit", endpoint, delay,
                         extra={"sendgrid_ipam_event": "rate_limited", "operation": endpoint,
                                "wait": delay})
            await self._wait_for_news(pace, delay)
            waited = max(0.0, self._wall_clock() - started)

    async def _wait_for_news(self, pace: _Pace, delay: float) -> None:
        if pace.wake is None:
            pace.wake = asyncio.get_running_loop().create_future()
        wake = pace.wake
        sleeping = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait((wake, sleeping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()

    def observe(self, endpoint: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a reply that carries rate-limit headers (or is a 429)."""
        pace = self._paces.get(endpoint)
        limited = status == 429
        if pace is None and not limited and plenty_left(headers, self.rules.pace_below):
            return  # the common case of a reply with rate-limit headers: nothing to do
        ticket = None
        mine = _TICKET.get()
        if mine is not None and pace is not None and mine[0] == endpoint:
            _TICKET.set(None)
            if mine[1] == pace.generation:
                ticket = mine[2]
        now = self._wall_clock()
        jitter = self._rng.uniform(0.0, self.rules.jitter) if limited else 0.0
        state = learn(None if pace is None else pace.state, read_limits(headers, now), now,
                      limited=limited, ticket=ticket, jitter=jitter, rules=self.rules)
        if state is None:
            if pace is not None:
                del self._paces[endpoint]
                pace.notify()
            return
        if pace is None:
            self._generations += 1
            self._paces[endpoint] = _Pace(state, self._generations)
            self.quiet = False
        elif state is not pace.state:
            pace.state = state
            pace.notify()

    # ---------------------------------------------------------------- leases

    def lease(self, key: str, *, wait: float) -> AbstractAsyncContextManager[Lease]:
        """Hold ``key`` for the block, waiting (at most ``wait`` s) behind other holders."""
        return _MemoryLease(self, key, wait)

    def try_lease(self, key: str) -> Lease | None:
        """The lease on ``key`` if nobody holds it or waits for it (no await)."""
        if key in self._keys:
            return None
        state = self._keys[key] = _Key()
        state.held = True
        lease = _MemoryLease(self, key, 0.0)
        lease.token = self._tokens[key] = self._tokens.get(key, 0) + 1
        lease.held = True
        return lease

    async def _take(self, lease: _MemoryLease) -> None:
        key = lease.key
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _Key()
        if state.held or state.waiters:
            await self._queue(key, state, lease.wait)
        else:
            state.held = True
        lease.token = self._tokens[key] = self._tokens.get(key, 0) + 1
        lease.held = True

    async def _queue(self, key: str, state: _Key, wait: float) -> None:
        waiter = asyncio.get_running_loop().create_future()
        state.waiters.append(waiter)
        try:
            async with asyncio.timeout(max(wait, 0.0)):
                await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self._hand_on(key)  # handed the lease just as we gave up: pass it on
            else:
                state.waiters.remove(waiter)
                if not state.held and not state.waiters:
                    del self._keys[key]
            if isinstance(exc, TimeoutError):
                raise RequestTimeoutError(
                    f"the call's deadline was reached waiting for the write lease on {key!r} "
                    "(another write to it is in flight)", request_sent=False,
                ) from None
            raise

    def _hand_on(self, key: str) -> None:
        """Give the key to the longest waiter still waiting, or free it."""
        state = self._keys[key]
        while state.waiters:
            waiter = state.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # state.held stays True: ownership passes on
                return
        state.held = False
        del self._keys[key]
