"""SendGrid-style rate limiting: a fixed window per API key, and the headers every reply carries."""

from __future__ import annotations

from collections.abc import Callable

import attrs

UNLIMITED = 1_000_000
"""The limit announced when the fake enforces none."""


@attrs.frozen
class RateState:
    """Where a key stands in its window: whether this request may go, and the three headers."""

    allowed: bool
    limit: int
    remaining: int
    reset: float

    def headers(self) -> dict[str, str]:
        """X-RateLimit-Limit, -Remaining and -Reset (epoch seconds; 3 decimals unless whole)."""
        reset = self.reset
        text = str(int(reset)) if reset.is_integer() else f"{reset:.3f}"
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": text,
        }


@attrs.define
class _Window:
    ends: float
    used: int = 0


class RateLimiter:
    """Up to `limit` requests per key in each window of `window` seconds.

    A window starts with the first request after the previous one ended. `block()` opens a
    window during which every request is refused, whatever the counts say.
    """

    def __init__(self, limit: int | None, window: float, clock: Callable[[], float]) -> None:
        if limit is not None and limit < 1:
            raise ValueError("rate_limit must be at least 1 (or None for no limit)")
        if window <= 0:
            raise ValueError("rate_window must be positive")
        self.enforced = limit is not None
        self.limit = UNLIMITED if limit is None else limit
        self.window = window
        self._clock = clock
        self._windows: dict[bytes, _Window] = {}
        self._blocked_until = float("-inf")

    def block(self, seconds: float) -> float:
        """Refuse every request for `seconds` from now; returns when that ends."""
        self._blocked_until = self._clock() + seconds
        return self._blocked_until

    def _current(self, key: bytes, now: float) -> _Window:
        window = self._windows.get(key)
        if window is None or now >= window.ends:
            window = self._windows[key] = _Window(now + self.window)
        return window

    def take(self, key: bytes) -> RateState:
        """Count one request of `key` and say whether it may go."""
        now = self._clock()
        if now < self._blocked_until:
            return RateState(False, self.limit, 0, self._blocked_until)
        window = self._current(key, now)
        allowed = window.used < self.limit or not self.enforced
        if allowed:
            window.used += 1
        return RateState(allowed, self.limit, max(0, self.limit - window.used), window.ends)

    def peek(self, key: bytes) -> RateState:
        """Where `key` stands, without counting a request (for replies that do not count)."""
        now = self._clock()
        window = self._windows.get(key)
        if window is None or now >= window.ends:
            return RateState(True, self.limit, self.limit, now + self.window)
        return RateState(True, self.limit, max(0, self.limit - window.used), window.ends)
