"""One prepared request, and how one attempt of it is sent and its reply read.

Every failure becomes a `SendGridError`. aiohttp's exceptions are never chained into it:
some (``ClientResponseError``) hold the request's headers, Authorization included, in their
repr; the message of each is kept, with the API key scrubbed from it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import attrs
from aiohttp import hdrs
from multidict import istr
from yarl import URL

from .. import _wire
from ..coordination import LeaseBusy
from ..errors import (
    ClientStateError,
    RequestTimeoutError,
    SendGridError,
    TransportError,
)
from ..retry import RetryPolicy, logger
from .body import ERROR_BODY_LIMIT, BodyTooLarge, inflate, read_body, read_prefix
from .state import NO_REDIRECTS

if TYPE_CHECKING:
    from .._observe import Call
    from ..coordination import Lease
    from .state import EngineState

__all__ = ["Attempt"]

_DEBUG = logging.DEBUG
# Header names as multidict's case-insensitive keys: a lookup then skips folding the
# name's case, which is about half its cost (three lookups a reply).
_CONTENT_LENGTH, _CONTENT_ENCODING = hdrs.CONTENT_LENGTH, hdrs.CONTENT_ENCODING
_REMAINING = istr("X-RateLimit-Remaining")
_LEVELS: dict[int, bool] = getattr(logger, "_cache", {})  # (absent: always asks)


class Attempt:
    """Everything needed to send an attempt of one call's request."""

    __slots__ = (
        "call", "capped", "data", "deadline", "endpoint", "engine", "headers", "lease", "method",
        "policy", "read", "session", "timeout", "url",
    )

    def __init__(
        self,
        engine: EngineState,
        session: aiohttp.ClientSession,
        endpoint: str,
        method: str,
        url: URL,
        headers: Mapping[str, str] | None,
        data: bytes | None,
        timeout: aiohttp.ClientTimeout | None,
        read: Callable[[Any], Any],
        deadline: float,
        policy: RetryPolicy,
        capped: bool,
    ) -> None:
        self.engine: EngineState = engine
        self.session: aiohttp.ClientSession = session
        self.endpoint: str = endpoint
        self.method: str = method
        self.url: URL = url
        self.headers: Mapping[str, str] | None = headers
        self.data: bytes | None = data
        self.timeout: aiohttp.ClientTimeout | None = timeout
        self.read: Callable[[Any], Any] = read
        self.deadline: float = deadline
        self.policy: RetryPolicy = policy
        # Whether the deadline can cut an attempt short; retries set it, as time has passed.
        self.capped: bool = capped
        self.lease: Lease | None = None  # a write's lease, checked before each send
        self.call: Call | None = None  # the call's observer, when one is on (_observe.py)


    async def send(self, number: int = 1) -> Any:  # noqa: PLR0915 (the hot path, one frame)
        """Send attempt ``number`` and read its reply; raises a `SendGridError` on failure."""
        engine = self.engine
        debug = _LEVELS.get(_DEBUG)  # logging's own cache of isEnabledFor (cleared in place)
        if debug is None:
            debug = logger.isEnabledFor(_DEBUG)
        started = engine.clock() if debug else 0.0
        slots = engine.slots
        if slots.free and not slots.waiters:  # Slots.try_take(), inlined: runs on every call
            slots.free -= 1
        elif not await self._wait_for_slot():
            raise RequestTimeoutError(
                "no connection became free before the call's deadline", request_sent=False)
        failure: SendGridError | None = None
        try:
            timeout = self.timeout
            if self.capped or not (engine.coordinator.quiet
                                    or engine.coordinator.gate_open(self.endpoint)):
                timeout = await self._bounded_timeout()
            if self.lease is not None:
                # Fencing, after every wait (a free connection, the pace): a holder that lost
                # its lease meanwhile sends nothing.
                await self.lease.check()
            if (call := self.call) is not None:
                sent = call.request(number)
            try:
                kwargs = engine.request_kwargs
                if timeout is not None:
                    kwargs = {**kwargs, "timeout": timeout}
                async with (
                    # The usual request, its keywords spelt out: a call with ``**`` builds
                    # a dict, and ``request(**kwargs)`` a second (~2,900 instructions).
                    self.session.request(
                        self.method, self.url, headers=self.headers, data=self.data,
                        allow_redirects=False,
                    )
                    if kwargs is NO_REDIRECTS
                    else self.session.request(
                        self.method, self.url, headers=self.headers, data=self.data, **kwargs)
                ) as resp:
                    status, headers = resp.status, resp.headers
                    # (The header itself, not aiohttp's content_length property: a C call.)
                    length = headers.get(_CONTENT_LENGTH)
                    if (status < 300 and length is not None and engine.inflates
                            and length.isdecimal() and int(length) <= engine.max_reply_size):
                        body = await resp.read()  # the common case: exactly that much
                    else:
                        body, failure = await self._read_bounded(resp, status)
            except Exception as exc:
                failure = self._failure(exc)
        finally:
            if slots.waiters:
                slots.give()
            else:
                slots.free += 1  # Slots.give(), inlined
        if failure is None:
            try:
                data = self._reply(status, headers, body)
            except SendGridError as exc:
                failure = exc
        if debug:
            self._log(number, started, failure, status if failure is None else None)
        if call is not None:
            call.response(number, sent, failure, *((status, headers) if failure is None
                                                   else (None, None)))
        if failure is not None:
            # The error's traceback starts here: frames below (the reply's parsing) and this
            # frame's reply hold what the server sent, an echoed key included, and error
            # trackers show every frame's locals.
            headers = body = resp = None  # type: ignore[assignment]
            try:
                raise failure.with_traceback(None)  # outside any except: it chains nothing
            finally:
                del failure  # this frame, held by the error's traceback, must not hold it
        return data

    async def _read_bounded(
        self, resp: aiohttp.ClientResponse, status: int
    ) -> tuple[bytes, SendGridError | None]:
        """The body of an error reply (a bounded prefix, scrubbed), or of a success whose
        length is unknown or too large; with the failure that ends the attempt, if any."""
        engine = self.engine
        if status >= 300:  # an error reply: its status stands, its body cut
            body, cut = await read_prefix(resp)
            return engine.scrub(body, cut=cut), None
        try:
            return await read_body(resp, engine.max_reply_size), None
        except BodyTooLarge as big:
            size = "" if big.declared is None else f" (Content-Length: {big.declared})"
            return b"", engine.decode_error(
                f"the reply's body exceeds max_reply_size ({big.limit} bytes){size}",
                status, big.prefix)

    def _failure(self, exc: Exception) -> SendGridError:
        """The `SendGridError` for what sending raised; never chains it (see the module)."""
        engine = self.engine
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return RequestTimeoutError(
                f"connect timed out: {engine.scrub_text(str(exc))}", request_sent=False)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return TransportError(
                f"cannot connect: {engine.scrub_text(str(exc))}", request_sent=False)
        if isinstance(exc, TimeoutError):
            return RequestTimeoutError("the request timed out")
        if isinstance(exc, aiohttp.ClientError | OSError):
            # Also aiohttp's parser errors on a malformed status line or header.
            return TransportError(f"{type(exc).__name__}: {engine.scrub_text(str(exc))}")
        if isinstance(exc, RuntimeError) and self.session.closed:
            return ClientStateError(f"the aiohttp session was closed: {exc}")
        raise exc

    def _reply(self, status: int, headers: Mapping[str, str], body: bytes) -> Any:
        engine = self.engine
        coordinator = engine.coordinator
        remaining = headers.get(_REMAINING)
        if status == 429 or (remaining is not None and not (  # (the usual reply: no call)
                coordinator.quiet and coordinator.plenty is not None and len(remaining) < 19
                and remaining.isdecimal() and int(remaining) > coordinator.plenty)):
            coordinator.observe(self.endpoint, status, headers)  # paces the endpoint
        if engine.inflates and (encoding := headers.get(_CONTENT_ENCODING)) and body:
            body = self._inflate(status, body, encoding)
        try:
            if 200 <= status < 300:  # read_reply's success path, without its call
                bounds_depth = getattr(self.read, "bounds_depth", False)  # a list page's
                if bounds_depth and body and self.read.reads_exact and (  # type: ignore[attr-defined]
                        page := self.read.exact(body)) is not None:  # type: ignore[attr-defined]
                    return page  # read from orjson's value
                value = (_wire.load_json(body, bound_depth=not bounds_depth)
                         if body else None)
            else:  # an error status: raises its APIError
                value = _wire.read_reply(status, headers if status < 300  # (1xx)
                                         else engine.scrub_headers(headers),
                                         body, engine.wall_clock)
        except ValueError:  # (its error holds the whole body, unscrubbed: not chained)
            message = "reply is not valid JSON"
        else:
            try:
                return self.read(value)
            except SendGridError:
                raise
            except Exception as exc:
                message = f"reply does not match the spec ({type(exc).__name__})"
        raise engine.decode_error(message, status, body)

    def _inflate(self, status: int, body: bytes, encoding: str) -> bytes:
        """A compressed body, inflated within the limit. An error reply keeps its status
        with a bounded prefix, or no body if it cannot be inflated."""
        engine = self.engine
        if status >= 300:
            try:
                return engine.scrub(inflate(body, encoding, ERROR_BODY_LIMIT), cut=False)
            except BodyTooLarge as big:
                return engine.scrub(big.prefix, cut=True)
            except ValueError:
                return b""
        try:
            return inflate(body, encoding, engine.max_reply_size)
        except BodyTooLarge as big:
            message = f"the reply's body inflates past max_reply_size ({big.limit} bytes)"
            body = big.prefix
        except ValueError as exc:
            message, body = str(exc), b""
        # Raised outside the except: the error's context would hold the unscrubbed prefix.
        raise engine.decode_error(message, status, body)

    def _log(self, number: int, started: float, failure: SendGridError | None,
             status: int | None) -> None:
        outcome: object = status
        if failure is not None:
            outcome = getattr(failure, "status", None) or type(failure).__name__
        elapsed = (self.engine.clock() - started) * 1000.0
        logger.debug(
            "%s %s -> %s (attempt %d, %.1f ms)", self.method, self.url.path, outcome, number,
            elapsed, extra={
                "sendgrid_ipam_event": "request", "method": self.method,
                "path": self.url.path, "status": outcome, "attempt": number,
                "duration": elapsed / 1000.0,
            },
        )

    async def _wait_for_slot(self) -> bool:
        """Wait for a slot, within what is left of the deadline: False if none came."""
        # Real time, as aiohttp's timeouts are: requests hung elsewhere hold the slots.
        started = self.engine.clock()
        try:
            async with asyncio.timeout(max(0.0, self.deadline - self.engine.clock())):
                await self.engine.slots.take()
        except TimeoutError:
            return False
        finally:
            if (call := self.call) is not None:
                call.waited("slot", self.engine.clock() - started)
        return True

    async def _lease_outside_slot(self, lease: Lease) -> None:
        """Take a deferred lease another holder has, without holding a connection slot
        meanwhile (other calls need them): the slot is handed back, the lease waited for
        within the call's deadline, then a slot taken again. On failure the attempt holds
        no slot, and `send` gives back none."""
        slots = self.engine.slots
        slots.give()
        started = self.engine.clock()
        try:
            try:
                await lease.check()  # takes it, waiting its turn: RequestTimeoutError if late
            finally:
                if (call := self.call) is not None:
                    call.waited("lease", self.engine.clock() - started)
            if not slots.try_take() and not await self._wait_for_slot():
                raise RequestTimeoutError(
                    "no connection became free before the call's deadline", request_sent=False)
        except BaseException:
            slots.owe()  # send's finally gives back the slot it took: this one went already
            raise

    async def _bounded_timeout(self) -> aiohttp.ClientTimeout | None:
        """Wait at the gate if it is closed; the attempt's timeout, cut to the deadline."""
        engine = self.engine
        remaining = self.deadline - engine.clock()
        if not engine.coordinator.gate_open(self.endpoint):
            try:
                waited = await engine.coordinator.wait_at_gate(
                    self.endpoint, within=min(remaining, self.policy.max_rate_limit_wait),
                    lease=self.lease)  # confirmed (or taken) with the gate: a shared one
            except LeaseBusy as busy:
                await self._lease_outside_slot(busy.lease)
                return await self._bounded_timeout()  # the gate again, the lease now taken
            remaining -= waited
            if self.call is not None:
                self.call.waited("gate", waited)
        timeout = self.timeout or engine.timeout
        if timeout.total is None or remaining < timeout.total:
            if remaining <= 0:
                raise RequestTimeoutError("the call's deadline was reached", request_sent=False)
            return attrs.evolve(timeout, total=remaining)
        return self.timeout
