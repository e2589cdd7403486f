"""Rate-limit headers; the per-endpoint pacer's arithmetic; the older client-wide gate.

SendGrid answers ``X-RateLimit-Limit``, ``-Remaining`` and ``-Reset`` on its replies, and 429
when a key is over its limit. The reset is documented as a Unix timestamp in seconds, but one
SendGrid spec calls it "seconds until reset": values of at least 1e9 are read as a timestamp,
smaller ones as a delay. Header names are matched case-insensitively.

A header that cannot be read (not ASCII, not a number, a number that is negative, not
finite or absurdly long, a date that cannot exist) is treated as absent: no header can make a
call fail. What one reply can do to a pace (or the gate) is clamped by ``max_closure``.

Pacing
------
SendGrid limits each endpoint separately, so a coordinator keeps one `PaceState` per
endpoint (the operationId), and only for endpoints whose replies said the budget is low.
The arithmetic is two pure functions over that state, so that a shared coordinator can run
the same steps on state kept elsewhere (a Redis script); every time is Unix (wall-clock)
seconds on the client's clock (a reply's times are moved onto it with the reply's ``Date``):

``PaceState(remaining, reset_at, next_at, probe_until, sent, seen, limit)``
    ``remaining``: requests that may still start without news (never below 0);
    ``reset_at``: when the server said the budget renews; ``next_at``: no request starts
    before it (the hold after a 429); ``probe_until``: while a *probe* is out, the others
    wait for its reply until then; ``sent``: reservations made (each request's *ticket* is
    the value of ``sent`` just after its own); ``seen``: the newest ticket whose reply was
    learned (0: none); ``limit``: the last ``X-RateLimit-Limit`` (shown, not used).

``reserve(state, now, rules) -> (delay, state)``
    ``delay`` 0: the request may start, the returned state counts it (its ticket is
    ``state.sent``). Otherwise the request waits ``delay`` seconds (or until new replies are
    learned) and asks again; the state is unchanged. In order: before ``next_at``, wait for
    it; with ``remaining`` > 0, go (the budget never shrinks at a reset: a fixed window
    refills, a bucket only gains), also after ``reset_at``; with none left before
    ``reset_at``, wait for it; after it with none known, send one probe (``probe_until =
    now + rules.probe_timeout``) and hold the rest until its reply or ``probe_until``.

``learn(state, reply, now, *, limited, ticket, jitter, rules) -> state | None``
    ``reply`` the `RateLimit` read from a reply; ``limited`` whether it was a 429;
    ``ticket`` the request's ticket (None: not reserved through this pace); ``jitter`` a
    fraction the caller draws between 0 and 1: a 429's hold grows by that fraction of a
    tenth of the wait, at most ``rules.jitter`` seconds.
    A reply older than what was learned (ticket <= ``seen``, or no ticket once any
    ticketed reply was learned) changes nothing. A 429 holds the endpoint until its
    Retry-After, else its reset (one already past: not at all), else
    ``rules.unknown_window``, plus the jitter, never more than ``rules.max_closure`` from
    now. The first request after the hold is a probe, except after a 429 on an endpoint
    that was not paced (its replies had plenty left) naming when it reopens: a window
    closed for the rest of its period reopens whole, so up to ``rules.pace_below``
    requests resume at the hold's end without waiting for a probe's reply (should the
    window still be closed, their 429s find the endpoint paced, and the next hold ends
    with a probe). Later 429s of requests sent before the hold (no ticket) change only
    the hold.
    Any other reply with a Remaining and a reset (ahead, or less than 2 s past: a bucket's
    next token may be past by the time its reply arrives) sets ``remaining`` to
    Remaining less the requests reserved after this one (they may not have been counted
    yet, so the budget is never overstated while they are in flight) and ``reset_at`` to
    its reset (clamped like a 429's). None, meaning "stop pacing this endpoint", when the
    reply leaves nothing to pace by (no Remaining, no reset or one long past, and no hold), or when
    more than ``rules.pace_below`` requests remain.

``unanswered(state, ticket) -> state``
    The request of ``ticket`` ended with no news (its connection was lost): if it was the
    probe still out (the last reservation, while ``probe_until`` is set), ``probe_until``
    is cleared, so that the next request probes at once instead of after the timeout.

So a run spends each window's budget as fast as its requests come, never more, and waits at
the end of it for the reset: the full limit, without meeting it. Bucket-like servers, whose
reset is always near, are paced by the same steps (each probe's reply says how many tokens
came back). Requests keep their tickets in a context variable of their task, from the
reservation to the reply (see ``coordination/pacer.py``).
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

__all__ = [
    "PaceRules", "PaceState", "RateLimit", "RateLimitGate", "agrees", "learn", "reserve",
    "unanswered",
]

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


def check_max_closure(max_closure: object) -> None:
    """Raise ValueError unless ``max_closure`` is a positive, finite number of seconds."""
    if isinstance(max_closure, bool) or not isinstance(max_closure, int | float) or not (
        0 < max_closure <= sys.float_info.max  # (NaN fails both comparisons)
    ):
        raise ValueError(
            f"max_closure must be a positive number of seconds, not {shown(max_closure)}"
        )


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
        check_max_closure(max_closure)
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


# ------------------------------------------------------------------------------ pacing


@attrs.frozen
class PaceRules:
    """The constants of pacing (see the module's docstring).

    Args:
        max_closure: the longest one reply may hold an endpoint, in seconds.
        pace_below: an endpoint is paced once a reply says at most this many requests
            remain; keep it above the requests that can be in flight at once.
        probe_timeout: how long the others wait for a probe's reply before one more goes.
        unknown_window: how long a 429 that names no reset holds its endpoint.
        jitter: the most jitter, in seconds, added to a 429's hold (which adds at most a
            tenth of the wait).
    """

    max_closure: float = 60.0
    pace_below: int = 128
    probe_timeout: float = 0.5
    unknown_window: float = _UNKNOWN_WINDOW
    jitter: float = 0.05


@attrs.frozen
class PaceState:
    """One endpoint's pace: plain numbers, Unix seconds (see the module's docstring)."""

    remaining: int = 0
    reset_at: float = 0.0
    next_at: float = 0.0
    probe_until: float = 0.0
    sent: int = 0
    seen: int = 0
    limit: int | None = None


def reserve(state: PaceState, now: float, rules: PaceRules) -> tuple[float, PaceState]:
    """Whether a request may start now: ``(0, state counting it)`` or ``(delay, state)``."""
    if now < state.next_at:
        return state.next_at - now, state
    if state.remaining > 0:
        return 0.0, attrs.evolve(state, remaining=state.remaining - 1, sent=state.sent + 1)
    if now < state.reset_at:
        return state.reset_at - now, state
    if now < state.probe_until:
        return state.probe_until - now, state
    return 0.0, attrs.evolve(state, probe_until=now + rules.probe_timeout, sent=state.sent + 1)


def learn(
    state: PaceState | None,
    reply: RateLimit,
    now: float,
    *,
    limited: bool,
    ticket: int | None,
    jitter: float,
    rules: PaceRules,
) -> PaceState | None:
    """The pace after a reply (None: the endpoint need not be paced)."""
    if state is not None and (state.seen >= ticket if ticket is not None else state.seen):
        return state  # older news than what the pace already knows
    base = state or PaceState()
    seen = base.seen if ticket is None else ticket
    latest = now + rules.max_closure
    if limited:
        until = reply.retry_at if reply.retry_at is not None else reply.reset_at
        if state is None:
            # A closure the replies did not announce (they had plenty left): the window was
            # closed for the rest of its period, and reopens whole at the time named.
            resume = 0 if until is None else rules.pace_below
        elif ticket is None and base.next_at > now:
            resume = base.remaining  # the same closure's news, from a request sent before it
        else:
            resume = 0
        if until is None:
            until = now + rules.unknown_window
        wait = max(until - now, 0.0)  # a reset already past (a late 429) holds for a probe
        hold = min(now + wait + jitter * min(rules.jitter, wait / 10), latest)
        return attrs.evolve(base, remaining=resume, reset_at=hold,
                            next_at=max(base.next_at, hold), probe_until=0.0, seen=seen,
                            limit=reply.limit or base.limit)
    held = base.next_at > now
    # A reset just past still counts: a bucket's "next token" is often behind us by the time
    # its reply arrives. One long past says nothing of the window now.
    if reply.remaining is None or reply.reset_at is None or reply.reset_at < now - _SKEW:
        return base if held and state is not None else None
    in_flight = base.sent - (ticket if ticket is not None else 0)
    remaining = max(0, reply.remaining - in_flight)
    if remaining > rules.pace_below and not held:
        return None
    return attrs.evolve(base, remaining=remaining, reset_at=min(reply.reset_at, latest),
                        probe_until=0.0, seen=seen, limit=reply.limit or base.limit)


def unanswered(state: PaceState, ticket: int) -> PaceState:
    """The pace after the request of ``ticket`` ended without news (no reply, or one
    without rate-limit headers): if it was the probe still out, the next request probes
    at once rather than after ``probe_until``."""
    if state.probe_until and ticket == state.sent and ticket > state.seen:
        return attrs.evolve(state, probe_until=0.0)
    return state


def read_limits(headers: Mapping[str, str], local: float) -> RateLimit:
    """A reply's limits with every time on the local clock (``local`` is its Unix time now).

    The reply's times are the server's: read against its ``Date`` (when that is more than
    a couple of seconds off ours) and moved onto our clock, as the pace keeps our time.
    """
    server = _server_now(headers, local)
    limits = RateLimit.from_headers(headers, now=server)
    if server == local:
        return limits
    shift = local - server
    return attrs.evolve(
        limits,
        reset_at=None if limits.reset_at is None else limits.reset_at + shift,
        retry_at=None if limits.retry_at is None else limits.retry_at + shift,
    )


def plenty_left(headers: Mapping[str, str], floor: int) -> bool:
    """True when the reply's Remaining is readable and above ``floor`` (cheap: one lookup)."""
    text = (headers.get("X-RateLimit-Remaining") if type(headers) is CIMultiDictProxy
            else _header(headers, "X-RateLimit-Remaining"))
    if text is not None and len(text) < 19 and text.isdigit() and text.isascii():
        return int(text) > floor  # the usual form, read without the general parser
    remaining = _count(text)
    return remaining is not None and remaining > floor


SHARE_SLACK = 3
"""Requests a reply's count may be off a shared pace's (replies overtaking each other)."""


def agrees(state: PaceState, reply: RateLimit, ticket: int | None) -> bool:
    """Whether a reply of the same window fits the pace's count, as one counter would.

    Two endpoints whose replies name the same limit and reset and counts that agree are
    limited by one counter (a limit per key, not per endpoint): they share one pace. A
    member whose reply stops agreeing has a counter of its own, and leaves the pace.
    """
    if reply.remaining is None or reply.limit != state.limit or reply.reset_at != state.reset_at:
        return False
    estimate = reply.remaining - (state.sent - ticket if ticket is not None else 0)
    in_flight = state.sent - state.seen
    return state.remaining - SHARE_SLACK <= estimate <= state.remaining + in_flight + SHARE_SLACK
