"""`EngineState`: what every part of the request path reads — settings, the session, the
slots, the coordinator — and how the API key is kept out of what the engine raises."""

from __future__ import annotations

import asyncio
import inspect
import itertools
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from .._observe import Observer
from ..coordination import Coordinator
from ..errors import DecodeError
from ..retry import RetryBudget, RetryPolicy
from .body import ERROR_BODY_LIMIT, Secret, pieces_of, redact
from .slots import Slots

__all__ = ["NO_REDIRECTS", "EngineState"]

_JSON: CIMultiDict[str] = CIMultiDict({"Content-Type": "application/json"})
NO_REDIRECTS: dict[str, Any] = {"allow_redirects": False}
"""What each request passes to aiohttp through a session of our own (never changed)."""

# Whether aiohttp takes ``auto_decompress`` per request (newer releases): a session the user
# passes in keeps its own setting otherwise.
_PER_REQUEST_DECOMPRESS = "auto_decompress" in inspect.signature(
    aiohttp.ClientSession._request).parameters


class EngineState:
    """The engine's settings and shared parts; `Engine` adds the request path."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        global_base: str,
        headers: dict[str, str],
        timeout: aiohttp.ClientTimeout,
        policy: RetryPolicy,
        coordinator: Coordinator,
        max_connections: int,
        max_reply_size: int,
        clock: Callable[[], float],
        wall_clock: Callable[[], float],
        sleep: Callable[[float], Awaitable[None]],
        seed: int | None,
    ) -> None:
        self.base_url = base_url
        self.global_base = global_base
        if (authorization := headers.get("Authorization")) is not None:
            headers["Authorization"] = Secret(authorization)  # its repr hides the key
        self.headers = headers
        self.timeout = timeout
        self.policy = policy
        self.coordinator = coordinator
        self.budget: RetryBudget = coordinator.budget
        self.max_reply_size = max_reply_size
        self.clock = clock
        self.wall_clock = wall_clock
        self.sleep = sleep
        self.rng: random.Random = random.Random(seed)
        self.slots: Slots = Slots(max_connections)
        self.session: aiohttp.ClientSession | None = None
        self.closed = False
        self.lingering: set[asyncio.Task[None]] = set()  # cancelled writes' leases, kept
        # What each request passes to aiohttp besides the session's own defaults: on a
        # session we own, the headers and timeout are the session's, so requests pass
        # nothing (aiohttp then merges no headers and arms no extra timer per request).
        self.get_headers: dict[str, str] | None = None
        # (A multidict: aiohttp would otherwise copy a dict into one on every request.)
        self.body_headers: Mapping[str, str] = _JSON
        self.request_timeout: aiohttp.ClientTimeout | None = None
        self.request_kwargs: dict[str, Any] = NO_REDIRECTS  # (Attempt.send spells it out)
        self.inflates: bool = True  # the engine inflates compressed bodies itself, bounded
        self.urls: dict[tuple[str, object], URL] = {}  # see url()
        # Hooks and telemetry (None when neither is on: the request path then builds nothing)
        self.observer: Observer | None = None
        self._secret = api_key.encode()
        self._secret_text = api_key
        self._secret_pieces = pieces_of(api_key)  # what scrub_headers looks for

    # ---------------------------------------------------------------- session

    def use_session(self, session: aiohttp.ClientSession, *, owned: bool) -> None:
        """Send through ``session``; one not ``owned`` keeps its own headers and settings."""
        if not owned:
            self.get_headers = self.headers
            self.body_headers = {**self.headers, **_JSON}
            self.request_timeout = self.timeout
            if _PER_REQUEST_DECOMPRESS:
                self.request_kwargs = {"allow_redirects": False, "auto_decompress": False}
            else:
                self.inflates = False  # aiohttp inflates: only the read size is bounded
        self.session = session

    # ---------------------------------------------------------------- secrets

    def scrub(self, body: bytes, *, cut: bool) -> bytes:
        """``body`` with the API key replaced, in case a server or proxy echoed it (and,
        if the body was ``cut`` short, any start of the key the cut left at its end)."""
        return redact(body, self._secret, cut=cut)

    def scrub_text(self, text: str) -> str:
        """``text`` (an aiohttp error's message: short, and often cut) with no piece of the
        API key."""
        return redact(text, self._secret_text, piece=4)

    def scrub_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """An error reply's headers with the API key replaced wherever one was echoed."""
        # One scan of them all, joined, for the usual reply, which holds no piece of the key
        # (a header per redact call scanned each for every piece: 0.1-0.6 ms a reply). A
        # piece found only across the joins costs the slower way, never a miss.
        joined = "\n".join(itertools.chain.from_iterable(headers.items()))
        if not any(piece in joined for piece in self._secret_pieces):
            return CIMultiDict(headers)
        secret = self._secret_text
        return CIMultiDict((redact(name, secret), redact(value, secret))
                           for name, value in headers.items())

    def decode_error(self, message: str, status: int, body: bytes) -> DecodeError:
        """A `DecodeError` whose ``.body`` is a bounded, key-free prefix of ``body``."""
        # Its body may be a prefix (too large to keep whole): treated as cut short.
        text = self.scrub(body[:ERROR_BODY_LIMIT], cut=True).decode("utf-8", "replace")
        return DecodeError(message, status=status, body=text)

