"""Rate-limit headers, and the client-wide gate that holds requests until a window reopens.

SendGrid answers ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` on its replies, and 429
when a key is over its limit. The reset is documented as a Unix timestamp in seconds, but one
SendGrid spec calls it "seconds until reset": values of at least 1e9 are read as a timestamp,
smaller ones as a delay. Header names are matched case-insensitively.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time
from collections.abc import Awaitable, Callable, Mapping

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["RateLimit", "RateLimitGate"]

_EPOCH_THRESHOLD = 1e9
# A 429 that says nothing of when the window reopens still closes the gate for this long,
# so that a crowd of tasks does not each retry straight back into the limit.
_UNKNOWN_WINDOW = 1.0


def _header(headers: Mapping[str, str], name: str) -> str | None:
    if not isinstance(headers, CIMultiDictProxy | CIMultiDict):
        headers = CIMultiDict(headers)
    return headers.get(name)


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None  # NaN, inf, negatives: noise


@attrs.frozen
class RateLimit:
    """What a reply said about the rate limit.

    ``reset_at`` is the Unix time the window reopens; ``retry_after`` the delay a
    ``Retry-After`` header asked for, in seconds. Any of them may be None when not sent.
    """

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    retry_after: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], *, now: float | None = None) -> RateLimit:
        """Read the rate-limit headers of a reply; ``now`` is the current Unix time."""
        now = time.time() if now is None else now
        limit = _number(_header(headers, "X-RateLimit-Limit"))
        remaining = _number(_header(headers, "X-RateLimit-Remaining"))
        reset = _number(_header(headers, "X-RateLimit-Reset"))
        if reset is not None and reset < _EPOCH_THRESHOLD:
            reset = now + reset
        return cls(
            limit=None if limit is None else int(limit),
            remaining=None if remaining is None else int(remaining),
            reset_at=reset,
            retry_after=_retry_after(_header(headers, "Retry-After"), now),
        )

    def delay(self, now: float) -> float | None:
        """Seconds to wait before the next request may succeed, if the reply said."""
        if self.retry_after is not None:
            return self.retry_after
        if self.reset_at is not None:
            return max(0.0, self.reset_at - now)
        return None


def _retry_after(text: str | None, now: float) -> float | None:
    seconds = _number(text)
    if seconds is not None or text is None:
        return seconds
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


_SKEW = 2.0  # seconds of clock difference tolerated before the server's clock is trusted


def _server_now(headers: Mapping[str, str], local: float) -> float:
    """The time to measure a reset against: ours, unless the reply's Date disagrees.

    The reset is the server's clock; a local clock that is minutes off would otherwise keep
    the gate closed (or open) that much too long. Date has whole seconds, so within a
    couple of seconds the local, finer clock is kept.
    """
    date = _header(headers, "Date")
    if date is None:
        return local
    try:
        server = email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return local
    return server if abs(server - local) > _SKEW else local


class RateLimitGate:
    """Holds every request of one client while the rate-limit window is closed.

    The gate closes after a 429, or after a reply that says no requests remain, until the
    window resets. Requests check it right before they are sent, after they hold a
    connection slot, so requests queued for a connection are held too.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self.reopen_at = 0.0
        """The monotonic time the window reopens; 0 while the gate has not been closed."""
        self.closures = 0

    def closed_for(self) -> float:
        """Seconds until the gate reopens (0 when open)."""
        return max(0.0, self.reopen_at - self._clock())

    def is_closed(self) -> bool:
        """True while the window is closed (cheap when the gate has never closed)."""
        if not self.reopen_at:
            return False
        if self.reopen_at > self._clock():
            return True
        self.reopen_at = 0.0
        return False

    def reopens_at(self) -> float:
        """The Unix time at which the gate reopens (now or in the past when open)."""
        return self._wall_clock() + self.closed_for()

    def close_for(self, seconds: float) -> None:
        """Close the gate for ``seconds`` from now (never shortens an existing closure)."""
        reopen = self._clock() + seconds
        if reopen > self.reopen_at:
            self.reopen_at = reopen
            self.closures += 1

    def observe(self, status: int, headers: Mapping[str, str]) -> RateLimit | None:
        """Learn from a reply's status and headers; returns the parsed limits when relevant."""
        if status != 429 and _header(headers, "X-RateLimit-Remaining") != "0":
            return None
        now = _server_now(headers, self._wall_clock())
        limits = RateLimit.from_headers(headers, now=now)
        delay = limits.delay(now)
        if delay is None:
            delay = _UNKNOWN_WINDOW if status == 429 else 0.0
        if delay > 0:
            self.close_for(delay)
        return limits

    async def wait(self) -> float:
        """Wait until the gate is open; returns how long it waited."""
        waited = 0.0
        while (delay := self.closed_for()) > 0:
            await self._sleep(delay)
            waited += delay
        return waited
