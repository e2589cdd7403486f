"""Rate-limit headers, and the client-wide gate that holds requests until a window reopens.

SendGrid answers ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` on its replies, and 429
when a key is over its limit. The reset is documented as a Unix timestamp in seconds, but one
SendGrid spec calls it "seconds until reset": values of at least 1e9 are read as a timestamp,
smaller ones as a delay. Header names are matched case-insensitively.

A header that cannot be read (not ASCII, not a number, a number that is negative, not
finite or absurdly long, a date that cannot exist) is treated as absent: no header can make a
call fail. What a reply can do to the client-wide gate is clamped by ``max_closure``.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import re
import sys
import time
from collections.abc import Awaitable, Callable, Mapping

import attrs
from multidict import CIMultiDict, CIMultiDictProxy

from ._text import shown

__all__ = ["RateLimit", "RateLimitGate"]

_EPOCH_THRESHOLD = 1e9
# A 429 that says nothing of when the window reopens still closes the gate for this long,
# so that a crowd of tasks does not each retry straight back into the limit.
_UNKNOWN_WINDOW = 1.0


def _header(headers: Mapping[str, str], name: str) -> str | None:
    if not isinstance(headers, CIMultiDictProxy | CIMultiDict):
        headers = CIMultiDict(headers)
    return headers.get(name)


# Plain ASCII decimal notation only: float() would also take "nan", "inf", "1_0", Arabic-Indic
# digits and surrounding whitespace of any kind.
_NUMBER = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20})?(?:[eE][+-]?[0-9]{1,4})?", re.ASCII)
_MAX_DATE_LENGTH = 64  # an HTTP date is 29 characters; obsolete forms are a little longer


def _number(text: str | None) -> float | None:
    """A non-negative finite number, or None for anything else (negatives, NaN, 1e400...)."""
    if text is None:
        return None
    text = text.strip(" \t")
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _count(text: str | None) -> int | None:
    """A count of requests (Limit, Remaining): a whole number that fits in 64 bits."""
    value = _number(text)
    return int(value) if value is not None and value < 2.0**63 else None


def _http_date(text: str | None) -> float | None:
    """The Unix time of an HTTP date, or None when it cannot be read as one.

    `email.utils` raises OverflowError, ValueError, TypeError or IndexError on dates that
    cannot exist (year 99999999999999999999, day 0, ...): all of them mean "absent".
    """
    if text is None or len(text) > _MAX_DATE_LENGTH or not text.isascii():
        return None
    try:
        return email.utils.parsedate_to_datetime(text).timestamp()
    except Exception:  # a header the server got wrong is no reason to fail the call
        return None


@attrs.frozen
class RateLimit:
    """What a reply said about the rate limit.

    ``reset_at`` is the Unix time the window reopens; ``retry_after`` the delay a
    ``Retry-After`` header asked for, in seconds, and ``retry_at`` the Unix time it points
    at. Any of them may be None when not sent or not readable. The values are what the
    server said; `RateLimitGate` clamps what it does with them.
    """

    limit: int | None = None
    remaining: int | None = None
    reset_at: float | None = None
    retry_after: float | None = None
    retry_at: float | None = None

    @classmethod
    def from_headers(cls, headers: Mapping[str, str], *, now: float | None = None) -> RateLimit:
        """Read the rate-limit headers of a reply; ``now`` is the current Unix time."""
        now = time.time() if now is None else now
        reset = _number(_header(headers, "X-RateLimit-Reset"))
        if reset is not None and reset < _EPOCH_THRESHOLD:
            reset = now + reset
        retry_after = _retry_after(_header(headers, "Retry-After"), now)
        return cls(
            limit=_count(_header(headers, "X-RateLimit-Limit")),
            remaining=_count(_header(headers, "X-RateLimit-Remaining")),
            reset_at=reset,
            retry_after=retry_after,
            retry_at=None if retry_after is None else now + retry_after,
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
    when = _http_date(text)
    return None if when is None else max(0.0, when - now)


_SKEW = 2.0  # seconds of clock difference tolerated before the server's clock is trusted
# A Date further off than this is more likely wrong than our clock (a proxy's Date of 1970,
# a server clock reset): trusting it would turn a correct reset into years. A day still
# covers a local clock set to the wrong time zone.
_MAX_SKEW = 86_400.0


def _server_now(headers: Mapping[str, str], local: float) -> float:
    """The time to measure a reset against: ours, unless the reply's Date disagrees.

    The reset is the server's clock; a local clock that is minutes off would otherwise keep
    the gate closed (or open) that much too long. Date has whole seconds, so within a
    couple of seconds the local, finer clock is kept; a Date more than a day off, or one
    that cannot be read, is ignored.
    """
    server = _http_date(_header(headers, "Date"))
    if server is None or not _SKEW < abs(server - local) <= _MAX_SKEW:
        return local
    return server


class RateLimitGate:
    """Holds every request of one client while the rate-limit window is closed.

    The gate closes after a 429, or after a reply that says no requests remain, until the
    window resets. Requests check it right before they are sent, after they hold a
    connection slot, so requests queued for a connection are held too.

    No reply closes the gate for longer than ``max_closure`` seconds (default 60, the
    default `RetryPolicy.max_rate_limit_wait`), whatever its headers say: a ``Retry-After``
    of 1e12, a reset or date years ahead. When that time is up the gate reopens and the
    next request goes through as a probe; if the limit still holds, its reply closes the
    gate again, for at most as long. So one bad reply costs at most ``max_closure``,
    never a lockout.

    Args:
        clock: monotonic seconds, for the closure (injected by tests).
        wall_clock: Unix time, to read resets and dates against.
        sleep: how to wait while the gate is closed.
        max_closure: the longest one reply may close the gate, in seconds (> 0).

    Raises:
        ValueError: ``max_closure`` is not a positive finite number.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_closure: float = 60.0,
    ) -> None:
        if isinstance(max_closure, bool) or not isinstance(max_closure, int | float) or not (
            0 < max_closure <= sys.float_info.max  # (NaN fails both comparisons)
        ):
            raise ValueError(
                f"max_closure must be a positive number of seconds, not {shown(max_closure)}"
            )
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self.max_closure: float = float(max_closure)
        """The longest one reply may close the gate, in seconds."""
        self.reopen_at: float = 0.0
        """The monotonic time the window reopens; 0 while the gate has not been closed."""
        self.closures: int = 0

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
        """Close the gate for ``seconds`` from now, at most ``max_closure``.

        Never shortens an existing closure.
        """
        reopen = self._clock() + min(seconds, self.max_closure)
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
