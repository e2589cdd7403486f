"""The paces of one process's endpoints: `Pacer`, the in-process coordinator's rate limiter.

It keeps a `PaceState` per paced endpoint and runs the pure steps of
`sendgrid_ipam.ratelimit` (`reserve`, `learn`, `agrees`) on them. What it adds:

- **tickets**: a request's ticket goes from its reservation to its reply's observe in a
  context variable of its task (both run in the task of the call), so no signature carries it;
- **waiting**: tasks held by a pace sleep until the pace's delay is over or a reply brings
  news of it (a probe's reply lets the others go at once);
- **sharing**: endpoints whose replies show one counter (same limit and reset, counts that
  agree) share one pace, and leave it as soon as a reply disagrees (see `agrees`).
"""

from __future__ import annotations

import asyncio
import contextvars
import random
from collections.abc import Awaitable, Callable, Mapping

from .._turns import idle
from ..errors import ErrorDetail, RateLimitError
from ..ratelimit import (
    PaceRules,
    PaceState,
    RateLimit,
    agrees,
    learn,
    plenty_left,
    read_limits,
    reserve,
    unanswered,
)
from ..retry import logger

__all__ = ["Pacer"]


class _Pace:
    """One pace: its state, the endpoints it paces, and the tasks waiting for news of it."""

    __slots__ = ("endpoints", "generation", "state", "wake")

    def __init__(self, state: PaceState, generation: int, endpoint: str) -> None:
        self.state = state
        self.generation = generation  # tells this pace's tickets from an earlier one's
        self.endpoints = {endpoint}
        self.wake: asyncio.Future[None] | None = None

    def notify(self) -> None:
        if self.wake is not None:
            if not self.wake.done():
                self.wake.set_result(None)
            self.wake = None


# The task's last reservation: (the pace's generation, the ticket).
_TICKET: contextvars.ContextVar[tuple[int, int] | None] = contextvars.ContextVar(
    "sendgrid_ipam_pace_ticket", default=None)


class Pacer:
    """Per-endpoint paces for the calls of one process.

    Args:
        rules: the pacing constants.
        wall_clock: Unix time, which paces are kept in.
        sleep: how to wait while held (injected by tests).
        rng: draws the jitter added after a 429.
    """

    def __init__(
        self,
        rules: PaceRules,
        wall_clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        rng: random.Random,
    ) -> None:
        self.rules = rules
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._rng = rng
        self._paces: dict[str, _Pace] = {}
        self._generations = 0

    def __repr__(self) -> str:
        return f"<Pacer paced={sorted(self._paces)}>"

    @property
    def idle(self) -> bool:
        """True while no endpoint is paced."""
        return not self._paces

    def pace(self, endpoint: str) -> PaceState | None:
        """The pace of ``endpoint``, or None while it is not paced."""
        pace = self._paces.get(endpoint)
        return None if pace is None else pace.state

    def shares(self, endpoint: str, other: str) -> bool:
        """True when both endpoints are paced by one pace (one counter)."""
        pace = self._paces.get(endpoint)
        return pace is not None and pace is self._paces.get(other)

    def held_for(self, endpoint: str) -> float:
        """Seconds until a request to ``endpoint`` could start (0: now); reserves nothing."""
        pace = self._paces.get(endpoint)
        if pace is None:
            return 0.0
        return reserve(pace.state, self._wall_clock(), self.rules)[0]

    def try_start(self, endpoint: str) -> bool:
        """True when a request to ``endpoint`` may start now; it is then counted."""
        pace = self._paces.get(endpoint)
        return pace is None or not self._try_reserve(pace, self._wall_clock())

    def _try_reserve(self, pace: _Pace, now: float) -> float:
        delay, state = reserve(pace.state, now, self.rules)
        if not delay:
            pace.state = state
            _TICKET.set((pace.generation, state.sent))
        return delay

    async def wait(self, endpoint: str, within: float) -> float:
        """Wait until a request to ``endpoint`` may start (and count it); the seconds waited.

        Raises:
            RateLimitError: it would wait longer than ``within`` seconds.
        """
        started = self._wall_clock()
        while True:
            pace = self._paces.get(endpoint)
            now = self._wall_clock()
            waited = max(0.0, now - started)
            if pace is None or not (delay := self._try_reserve(pace, now)):
                return waited
            if waited + delay > within:
                raise RateLimitError(
                    429, [ErrorDetail(f"rate-limit window closed for {delay:.1f}s more")],
                    "", {}, RateLimit(reset_at=now + delay),
                )
            logger.debug("holding a request to %s %.3fs for the rate limit", endpoint, delay,
                         extra={"sendgrid_ipam_event": "rate_limited", "operation": endpoint,
                                "wait": delay})
            async with idle():  # a bulk run's account gives its turn up meanwhile
                await self._news_or(pace, delay)

    async def _news_or(self, pace: _Pace, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if a reply brings news of the pace."""
        if pace.wake is None:
            pace.wake = asyncio.get_running_loop().create_future()
        sleeping = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait((pace.wake, sleeping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()

    def observe(self, endpoint: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a reply to ``endpoint`` that carries rate-limit headers, or a 429."""
        pace = self._paces.get(endpoint)
        limited = status == 429
        if pace is None and not limited and plenty_left(headers, self.rules.pace_below):
            return  # the common case of a reply with rate-limit headers: nothing to do
        now = self._wall_clock()
        reply = read_limits(headers, now)
        ticket = self._ticket(pace)
        if not limited:
            regrouped = self._regroup(endpoint, pace, reply, ticket)
            if regrouped is not pace:
                pace, ticket = regrouped, None  # the ticket was another pace's
        state = learn(None if pace is None else pace.state, reply, now, limited=limited,
                      ticket=ticket, jitter=self._rng.random(),
                      rules=self.rules)
        if pace is None:
            if state is not None:
                self._generations += 1
                self._paces[endpoint] = _Pace(state, self._generations, endpoint)
        elif state is None:
            for member in pace.endpoints:
                del self._paces[member]
            pace.notify()
        elif state is not pace.state:
            pace.state = state
            pace.notify()

    def unanswered(self, endpoint: str) -> None:
        """This task's last request to ``endpoint`` ended with no news: if it was the probe,
        let the next request probe now (see `sendgrid_ipam.ratelimit.unanswered`)."""
        pace = self._paces.get(endpoint)
        ticket = self._ticket(pace)
        if pace is None or ticket is None:
            return
        state = unanswered(pace.state, ticket)
        if state is not pace.state:
            pace.state = state
            pace.notify()

    @staticmethod
    def _ticket(pace: _Pace | None) -> int | None:
        """The ticket of this task's request to ``pace``, if it made one (then forgotten)."""
        mine = _TICKET.get()
        if mine is None or pace is None or mine[0] != pace.generation:
            return None
        _TICKET.set(None)
        return mine[1]

    def _regroup(self, endpoint: str, pace: _Pace | None, reply: RateLimit,
                 ticket: int | None) -> _Pace | None:
        """The pace this reply belongs to: leave a shared pace it disagrees with, join one
        whose counter it shows."""
        if pace is not None:
            state = pace.state
            fresh = ticket is not None and ticket > state.seen
            if (len(pace.endpoints) == 1 or not fresh or reply.reset_at != state.reset_at
                    or agrees(state, reply, ticket)):
                return pace
            pace.endpoints.discard(endpoint)  # its own counter after all
            del self._paces[endpoint]
        for other in {id(p): p for p in self._paces.values()}.values():
            if agrees(other.state, reply, None):
                other.endpoints.add(endpoint)
                self._paces[endpoint] = other
                return other
        return None
