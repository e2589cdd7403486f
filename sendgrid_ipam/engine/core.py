"""`Engine`: the one request path every operation takes.

``execute`` builds the request (``_wire``), and then:

- a read, or a write that is safe to resend, sends its first attempt (`Attempt`) and only
  on failure hands over to `Flow` (retries);
- a write whose safety rests on reconciliation first takes its *write lease* from the
  coordinator (so no other writer on the same account, pool name or IPAM account can
  interleave), lets its reconciler note what it needs (the account's newest IP, say), and
  then runs the same way, all within the call's deadline: the reads its checks make inherit
  that deadline (a context variable), so no check gets a fresh one.
"""

from __future__ import annotations

import contextvars
import inspect
import random
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from .. import _wire
from ..coordination import Coordinator, Lease
from ..errors import ClientStateError, DecodeError, SendGridError, TransportError
from ..operations import Operation
from ..retry import RetryPolicy
from .attempt import Attempt
from .body import ERROR_BODY_LIMIT, Secret, redact
from .flow import CallTrace, Flow, Reconciler
from .options import RequestOptions, as_timeout, check_options
from .slots import Slots

__all__ = ["Engine"]

T = TypeVar("T")

_JSON = {"Content-Type": "application/json"}
_URL_CACHE_SIZE = 1024

# The deadline of the write a read is checking for, if any: the check's reads end with it.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "sendgrid_ipam_deadline", default=None)

# Whether aiohttp takes ``auto_decompress`` per request (newer releases): a session the user
# passes in keeps its own setting otherwise.
_PER_REQUEST_DECOMPRESS = "auto_decompress" in inspect.signature(
    aiohttp.ClientSession._request).parameters


class Engine:
    """Executes operations for one client: URLs, headers, slots, attempts, retries, leases.

    Built by `SendGridIPAM`; resources call `execute`. Not part of the public API.
    """

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
        self.budget = coordinator.budget
        self.max_reply_size = max_reply_size
        self.clock = clock
        self.wall_clock = wall_clock
        self.sleep = sleep
        self.rng = random.Random(seed)
        self.slots = Slots(max_connections)
        self.session: aiohttp.ClientSession | None = None
        self.closed = False
        # What each request passes to aiohttp besides the session's own defaults: on a
        # session we own, the headers and timeout are the session's, so requests pass
        # nothing (aiohttp then merges no headers and arms no extra timer per request).
        self.get_headers: dict[str, str] | None = None
        self.body_headers: dict[str, str] = _JSON
        self.request_timeout: aiohttp.ClientTimeout | None = None
        self.request_kwargs: dict[str, Any] = {"allow_redirects": False}
        self.inflates = True  # the engine inflates compressed bodies itself, bounded
        self.urls: dict[tuple[str, object], URL] = {}  # see url()
        self._secret = api_key.encode()
        self._secret_text = api_key

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
        secret = self._secret_text
        return CIMultiDict((redact(name, secret), redact(value, secret))
                           for name, value in headers.items())

    def decode_error(self, message: str, status: int, body: bytes) -> DecodeError:
        """A `DecodeError` whose ``.body`` is a bounded, key-free prefix of ``body``."""
        # Its body may be a prefix (too large to keep whole): treated as cut short.
        text = self.scrub(body[:ERROR_BODY_LIMIT], cut=True).decode("utf-8", "replace")
        return DecodeError(message, status=status, body=text)

    # ---------------------------------------------------------------- the request path

    async def execute(
        self,
        op: Operation,
        *,
        path: object = None,
        query: Mapping[str, object] | None = None,
        body: Any = None,
        options: RequestOptions | None = None,
        read: Callable[[Any], T] | None = None,
        reconciler: Reconciler | None = None,
        trace: CallTrace | None = None,
        lease: str | None = None,
    ) -> T:
        """Run one operation: the single path every API call takes.

        ``path`` is the value of the operation's one path parameter, if it has one;
        ``lease`` the key of the write lease the call must hold (see the module docstring).
        """
        session = self.session
        if session is None:
            raise ClientStateError(
                "the client is closed" if self.closed
                else "use the client as `async with SendGridIPAM(...) as sg:` before calling it"
            )
        url = self.url(op, path, query)
        headers = self.get_headers if body is None else self.body_headers
        policy, timeout = self.policy, self.request_timeout
        seconds = policy.deadline
        if options:
            check_options(options)
            policy = options.get("retry") or policy
            seconds = options.get("deadline", policy.deadline)
            if "timeout" in options:
                timeout = as_timeout(options["timeout"])
            if (obo := options.get("on_behalf_of")) is not None:
                headers = {**(headers or {}), "On-Behalf-Of": obo}
        data = None if body is None else _wire.dump_json(body)
        now = self.clock()
        deadline = now + seconds
        if (outer := _DEADLINE.get()) is not None and outer < deadline:
            deadline = outer
        total = (timeout or self.timeout).total
        attempt = Attempt(
            self, session, op.operation_id, op.method, url, headers, data, timeout,
            read or op.read, deadline, policy, total is None or deadline - now < total,
        )
        if reconciler is None and lease is None:
            try:
                result: T = await attempt.send()
            except SendGridError as exc:
                exc.operation = op.operation_id
                result = await Flow(op, attempt, None, trace).after(exc)
            else:
                if trace is not None:
                    trace.attempts = 1
            self.budget.on_success()
            return result
        written: T = await self._write(op, attempt, reconciler, trace, lease)
        return written

    async def _write(
        self,
        op: Operation,
        attempt: Attempt,
        reconciler: Reconciler | None,
        trace: CallTrace | None,
        key: str | None,
    ) -> Any:
        """A write that holds a lease and/or is reconciled, all within its deadline."""
        context = _DEADLINE.set(attempt.deadline)
        try:
            if key is None:
                return await self._reconciled(op, attempt, reconciler, trace, None)
            try:
                holding = self.coordinator.lease(key, wait=attempt.deadline - self.clock())
                async with holding as lease:
                    if trace is not None:
                        trace.lease_token = lease.token
                    attempt.lease = lease
                    return await self._reconciled(op, attempt, reconciler, trace, lease)
            except SendGridError as exc:
                exc.operation = exc.operation or op.operation_id
                raise
        finally:
            _DEADLINE.reset(context)

    async def _reconciled(
        self,
        op: Operation,
        attempt: Attempt,
        reconciler: Reconciler | None,
        trace: CallTrace | None,
        lease: Lease | None,
    ) -> Any:
        if reconciler is not None and reconciler.prepares:
            try:
                await reconciler.prepare(None if lease is None else lease.token)
            except SendGridError as exc:  # nothing was written: report the caller's operation
                exc.operation = op.operation_id
                if isinstance(exc, TransportError):
                    exc.request_sent = False  # the write's request, that is: never sent
                raise
        try:
            result = await attempt.send()
        except SendGridError as exc:
            exc.operation = op.operation_id
            result = await Flow(op, attempt, reconciler, trace).after(exc)
        else:
            if trace is not None:
                trace.attempts = 1
        self.budget.on_success()
        return result

    def url(self, op: Operation, path: object, query: Mapping[str, object] | None) -> URL:
        """The request's URL; reused for the same operation and path when there is no query.

        aiohttp reads a URL's host, port, origin and path on every request and yarl caches
        those on the object, so reusing it (and skipping the encoding) saves real time.
        Only text path values are cached, so that ``True`` can never pass for ``1``.
        """
        cacheable = not query and (path is None or type(path) is str)
        if cacheable and (url := self.urls.get((op.operation_id, path))) is not None:
            return url
        text = (self.global_base if op.global_only else self.base_url) + op.render(path)
        if query and (encoded := _wire.encode_query(query)):
            text = f"{text}?{encoded}"
        url = URL(text, encoded=True)
        if cacheable:
            if len(self.urls) >= _URL_CACHE_SIZE:
                self.urls.clear()  # rare, and a miss costs only the encoding
            self.urls[op.operation_id, path] = url
        return url
