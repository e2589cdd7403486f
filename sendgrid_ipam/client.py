"""`SendGridIPAM`: configuration, the session's lifecycle, and the one request path.

Every operation goes through `SendGridIPAM._execute`: build the request (``_wire``), wait at
the rate-limit gate, send one attempt over the aiohttp session, read the reply into a model.
Only when an attempt fails does the tenacity machinery (``retry``) come in, with the
reconciliation of writes that are not safe to resend (``reconcile``).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Literal, Protocol, TypedDict, TypeVar

import aiohttp
import attrs
from yarl import URL

from . import _wire
from .errors import (
    AmbiguousResultError,
    APIError,
    AttemptRecord,
    BadRequestError,
    ClientStateError,
    ConfigurationError,
    DecodeError,
    ErrorDetail,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    SendGridError,
    TransportError,
    ValidationError,
)
from .operations import Operation
from .ratelimit import RateLimit, RateLimitGate
from .retry import (
    RetryBudget,
    RetryPolicy,
    build_retrying,
    describe,
    is_ambiguous,
    is_retryable,
    logger,
)

__all__ = ["BASE_URLS", "DEFAULT_TIMEOUT", "RequestOptions", "SendGridIPAM"]

T = TypeVar("T")

BASE_URLS = {"global": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30.0, sock_connect=10.0)
"""Per attempt: 30 s in all, of which at most 10 s to open a new connection."""
_JSON = {"Content-Type": "application/json"}


class RequestOptions(TypedDict, total=False):
    """Per-call overrides every operation accepts as keyword arguments.

    ``timeout``: seconds (or an ``aiohttp.ClientTimeout``) for each attempt of this call.
    ``retry``: a `RetryPolicy` for this call. ``on_behalf_of``: the ``On-Behalf-Of`` header
    for this call only (a subuser name, or ``account-id <id>``).
    """

    timeout: float | aiohttp.ClientTimeout
    retry: RetryPolicy
    on_behalf_of: str


_URL_CACHE_SIZE = 1024


class Reconciler(Protocol):
    """Finds out whether a failed write that is not safe to resend took effect."""

    prepares: bool

    async def prepare(self) -> None:
        """Note what is needed to recognise the write's effect later (before attempt 1)."""

    async def resolve(self) -> Any | None:
        """The write's result if it took effect, None if it did not; raise if unclear."""

    async def verify(self, result: Any) -> None:
        """After a resend that followed an ambiguous failure: raise if both took effect."""

    def is_echo(self, exc: SendGridError) -> bool:
        """True when ``exc`` may be our own earlier, ambiguous attempt answering back."""


@attrs.define
class CallTrace:
    """What one call went through (filled in for callers that ask, such as bulk runs)."""

    attempts: int = 0
    reconciled: bool = False
    records: tuple[AttemptRecord, ...] = ()


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_base_url(base_url: str) -> str:
    url = URL(base_url)
    if url.scheme not in ("https", "http") or not url.host:
        raise ConfigurationError(f"base_url must be an http(s) URL with a host, not {base_url!r}")
    if url.scheme == "http" and not _is_loopback(url.host):
        raise ConfigurationError(
            "base_url must use https unless its host is loopback (127.0.0.0/8, ::1, "
            f"localhost): {base_url!r} would send the API key in clear text"
        )
    if url.query_string or url.fragment:
        raise ConfigurationError(f"base_url must not have a query or fragment: {base_url!r}")
    return str(url).rstrip("/")


_OPTION_NAMES = frozenset(RequestOptions.__annotations__)


def _header_safe(value: object) -> bool:
    """Text that can travel in a header: one line, no control characters, not blank."""
    return isinstance(value, str) and value.isprintable() and value.strip() == value != ""


def check_options(options: RequestOptions) -> None:
    """Per-call options are keyword arguments: refuse a misspelt or mistyped one at once."""
    if unknown := options.keys() - _OPTION_NAMES:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    retry = options.get("retry")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ValidationError("retry", f"must be a RetryPolicy, not {type(retry).__name__}")
    obo = options.get("on_behalf_of")
    if obo is not None and not _header_safe(obo):
        raise ValidationError("on_behalf_of", f"must be non-empty text on one line, not {obo!r}")


def _as_timeout(value: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    if isinstance(value, aiohttp.ClientTimeout):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValidationError("timeout", f"must be a positive number of seconds, not {value!r}")
    return aiohttp.ClientTimeout(total=float(value), sock_connect=min(float(value), 10.0))


class SendGridIPAM:
    """Async client for SendGrid's IP Address Management and IP Provisioning APIs.

    Use it as ``async with SendGridIPAM() as sg:``; the resources are ``sg.ips``,
    ``sg.pools`` and ``sg.provisioning``.

    Args:
        api_key: the API key; defaults to the ``SENDGRID_API_KEY`` environment variable.
        region: ``"global"`` (https://api.sendgrid.com) or ``"eu"``
            (https://api.eu.sendgrid.com, for EU regional subusers).
        base_url: overrides the region's URL; must be https unless its host is loopback.
        timeout: per attempt, seconds or an ``aiohttp.ClientTimeout`` (default 30 s in all,
            10 s to connect). Every operation also takes ``timeout=``.
        on_behalf_of: an ``On-Behalf-Of`` header for every call (per call: ``on_behalf_of=``).
        session: an ``aiohttp.ClientSession`` to use; it is never closed by this client.
        retry: the default `RetryPolicy` (per call: ``retry=``).
        retry_budget: the client-wide `RetryBudget`.
        max_connections: requests in flight at once (and the connection pool's size).
        user_agent: replaces the ``sendgrid-ipam/<version>`` User-Agent.
        clock, wall_clock, sleep, seed: a monotonic clock, a Unix clock, an async sleep and
            a jitter seed, for tests that must not wait for real.

    Raises:
        ConfigurationError: no API key, an unknown region or an unsafe ``base_url``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        region: Literal["global", "eu"] = "global",
        base_url: str | None = None,
        timeout: float | aiohttp.ClientTimeout = DEFAULT_TIMEOUT,
        on_behalf_of: str | None = None,
        session: aiohttp.ClientSession | None = None,
        retry: RetryPolicy | None = None,
        retry_budget: RetryBudget | None = None,
        max_connections: int = 100,
        user_agent: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = None,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("SENDGRID_API_KEY")
        if not key or not isinstance(key, str) or not key.strip():
            raise ConfigurationError(
                "no API key: pass api_key= or set the SENDGRID_API_KEY environment variable"
            )
        if not _header_safe(key.strip()) or " " in key.strip():
            raise ConfigurationError(  # never echo the key, even a broken one
                "the API key holds a control character or a space; check how it was pasted"
            )
        if on_behalf_of is not None and not _header_safe(on_behalf_of):
            raise ConfigurationError(
                f"on_behalf_of must be non-empty text on one line, not {on_behalf_of!r}"
            )
        if region not in BASE_URLS:
            raise ConfigurationError(f"region must be 'global' or 'eu', not {region!r}")
        if not isinstance(max_connections, int) or max_connections < 1:
            raise ConfigurationError(f"max_connections must be at least 1: {max_connections!r}")
        self.base_url = _check_base_url(base_url or BASE_URLS[region])
        self.region = region
        # The spec serves a few operations from the global host only (see operations.py).
        self._global_base = self.base_url if base_url else BASE_URLS["global"]
        try:
            self.timeout = _as_timeout(timeout)
        except ValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        self.on_behalf_of = on_behalf_of
        self.retry = retry or RetryPolicy()
        self.retry_budget = retry_budget or RetryBudget()
        self.max_connections = max_connections
        self._headers = _wire.base_headers(key.strip(), user_agent)
        if on_behalf_of is not None:
            self._headers["On-Behalf-Of"] = on_behalf_of
        # What each request passes to aiohttp besides the session's own defaults: on a
        # session we own, the headers and timeout are the session's, so requests pass
        # nothing (aiohttp then merges no headers and arms no extra timer per request).
        self._get_headers: dict[str, str] | None = None
        self._body_headers: dict[str, str] = _JSON
        self._request_timeout: aiohttp.ClientTimeout | None = None
        self._given_session = session
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._slots = _Slots(max_connections)
        self._urls: dict[tuple[str, object], URL] = {}  # see _url
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._rng = random.Random(seed)
        self.gate = RateLimitGate(clock=clock, wall_clock=wall_clock, sleep=sleep)

        from .resources import IpsResource, PoolsResource, ProvisioningResource

        self.ips = IpsResource(self)
        self.pools = PoolsResource(self)
        self.provisioning = ProvisioningResource(self)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._session else "not started"
        return f"<SendGridIPAM base_url={self.base_url!r} api_key=<redacted> {state}>"

    # ---------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> SendGridIPAM:
        if self._closed:
            raise ClientStateError("this client is closed; create a new SendGridIPAM")
        if self._session is None:
            if self._given_session is not None:
                self._get_headers = self._headers
                self._body_headers = {**self._headers, **_JSON}
                self._request_timeout = self.timeout
                self._session = self._given_session
            else:
                self._session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=self.max_connections),
                    headers=self._headers,
                    timeout=self.timeout,
                )
                # aiohttp quietly resends a GET, PUT or DELETE once when a kept-alive
                # connection drops; the client would then take a delete's "not found" for
                # the first answer. Its own retries handle drops, knowing they may have
                # taken effect. (A private switch: where it is missing, nothing changes.)
                if hasattr(self._session, "_retry_connection"):
                    self._session._retry_connection = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session this client opened (a session passed in is left open)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and session is not self._given_session:
            await session.close()

    # ---------------------------------------------------------------- the request path

    async def _execute(
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
    ) -> T:
        """Run one operation: the single path every API call takes.

        ``path`` is the value of the operation's one path parameter, if it has one.
        """
        session = self._session
        if session is None:
            raise ClientStateError(
                "the client is closed" if self._closed
                else "use the client as `async with SendGridIPAM(...) as sg:` before calling it"
            )
        url = self._url(op, path, query)
        headers = self._get_headers if body is None else self._body_headers
        policy, timeout = self.retry, self._request_timeout
        if options:
            check_options(options)
            policy = options.get("retry") or policy
            if "timeout" in options:
                timeout = _as_timeout(options["timeout"])
            if (obo := options.get("on_behalf_of")) is not None:
                headers = {**(headers or {}), "On-Behalf-Of": obo}
        data = None if body is None else _wire.dump_json(body)
        deadline = self._clock() + policy.deadline
        request = _Request(
            self, session, op.method, url, headers, data, timeout,
            read or op.read, deadline, policy,
        )
        if reconciler is not None and reconciler.prepares:
            try:
                await reconciler.prepare()
            except SendGridError as exc:  # nothing was written: report the caller's operation
                exc.operation = op.operation_id
                raise
        try:
            result: T = await request.send()
        except SendGridError as exc:
            exc.operation = op.operation_id
            if is_retryable(exc) and policy.max_attempts > 1 and (
                op.resend_safe or reconciler is not None or not is_ambiguous(exc)
            ):
                result = await self._retry(op, exc, request, policy, deadline, reconciler, trace)
            else:
                result = await self._give_up(
                    op, exc, (_record(1, exc),), reconciler, policy, deadline, trace
                )
        else:
            if trace is not None:
                trace.attempts = 1
        self.retry_budget.on_success()
        return result

    def _url(self, op: Operation, path: object, query: Mapping[str, object] | None) -> URL:
        """The request's URL; reused for the same operation and path when there is no query.

        aiohttp reads a URL's host, port, origin and path on every request and yarl caches
        those on the object, so reusing it (and skipping the encoding) saves real time.
        Only text path values are cached, so that ``True`` can never pass for ``1``.
        """
        cacheable = not query and (path is None or type(path) is str)
        if cacheable and (url := self._urls.get((op.operation_id, path))) is not None:
            return url
        text = (self._global_base if op.global_only else self.base_url) + op.render(path)
        if query and (encoded := _wire.encode_query(query)):
            text = f"{text}?{encoded}"
        url = URL(text, encoded=True)
        if cacheable:
            if len(self._urls) >= _URL_CACHE_SIZE:
                self._urls.clear()  # rare, and a miss costs only the encoding
            self._urls[op.operation_id, path] = url
        return url

    async def _retry(
        self,
        op: Operation,
        first: SendGridError,
        request: _Request,
        policy: RetryPolicy,
        deadline: float,
        reconciler: Reconciler | None,
        trace: CallTrace | None,
    ) -> Any:
        records: list[AttemptRecord] = []
        last: list[SendGridError] = [first]
        retrying = build_retrying(
            operation=op.operation_id, policy=policy, deadline=deadline,
            budget=self.retry_budget, records=records, clock=self._clock,
            wall_clock=self._wall_clock, sleep=self._sleep, rng=self._rng,
            settle=not op.resend_safe,
        )
        resent_after_ambiguity = False

        async def once(number: int) -> Any:
            nonlocal resent_after_ambiguity
            previous_ambiguous = is_ambiguous(last[-1])  # (no local: see the finally below)
            if not op.resend_safe and previous_ambiguous:
                resent_after_ambiguity = True
                try:
                    found = await self._reconcile(op, reconciler, number - 1)
                except _CheckFailed:
                    # Not knowing is no reason to resend, nor to give up while attempts
                    # remain: wait, as after the failure itself, and check again.
                    raise last[-1] from None
                if found is not None:
                    return found
            request.capped = True
            try:
                result = await request.send()
            except SendGridError as exc:
                last.append(exc)
                if op.deletes and previous_ambiguous and _not_found(exc):
                    return None  # the ambiguous attempt did delete it
                if resent_after_ambiguity and reconciler is not None and reconciler.is_echo(exc):
                    try:
                        found = await self._reconcile(op, reconciler, number)
                    except _CheckFailed as failed:
                        raise failed.unknown(op.operation_id) from failed.__cause__
                    if found is not None:
                        return found
                raise
            if resent_after_ambiguity and reconciler is not None:
                await reconciler.verify(result)  # a slow earlier attempt may have landed too
            return result

        try:
            result = await retrying.after(first, once)
        except SendGridError as exc:
            exc.operation = op.operation_id
            final = () if isinstance(exc, AmbiguousResultError) else (_record(
                len(records) + 1, exc),)
            attempts = (*records, *final)
            if stop_reason := retrying.stop.reason:
                exc.add_note(f"sendgrid-ipam gave up after {len(attempts)} attempt(s): "
                             f"{stop_reason}")
            return await self._give_up(op, exc, attempts, reconciler, policy, deadline, trace)
        finally:
            # Each error's traceback holds frames of `once` (which hold `last`) or of this
            # call (which hold `first`): let go of both, or the errors are left in cycles.
            last.clear()
            del first
        if trace is not None:
            trace.attempts = len(records) + 1
            trace.reconciled = bool(getattr(result, "reconciled", False))
            trace.records = tuple(records)
        return result

    async def _give_up(
        self,
        op: Operation,
        exc: SendGridError,
        attempts: tuple[AttemptRecord, ...],
        reconciler: Reconciler | None,
        policy: RetryPolicy,
        deadline: float,
        trace: CallTrace | None,
    ) -> Any:
        """End a call that will not be retried: raise its error, unless a write that may have
        taken effect did (whatever stopped the retries: attempts, deadline, budget)."""
        try:
            exc.attempts = attempts
            if trace is not None:
                trace.attempts = len(attempts)
                trace.records = attempts
            if op.resend_safe or reconciler is None or not is_ambiguous(exc):
                raise exc
            settle = min(policy.settle, deadline - self._clock())
            if settle > 0:
                await self._sleep(settle)
            try:
                found = await self._reconcile(op, reconciler, len(attempts))
            except _CheckFailed as failed:
                raise failed.unknown(op.operation_id) from failed.__cause__
            if found is None:
                raise exc  # checked: it took no effect, so the error stands
            if trace is not None:
                trace.reconciled = True
            return found
        finally:
            del exc  # raised from here, it would hold this frame, which holds it: a cycle

    async def _reconcile(
        self, op: Operation, reconciler: Reconciler | None, attempt: int
    ) -> Any | None:
        if reconciler is None:
            raise AmbiguousResultError(
                f"{op.operation_id} failed in a way that may have taken effect, and it is "
                "not safe to send again"
            )
        try:
            found = await reconciler.resolve()
        except AmbiguousResultError:
            raise  # the check found something other than what was asked: final
        except SendGridError as exc:
            raise _CheckFailed from exc  # the check itself failed: it may be tried again
        logger.info(
            "reconciled %s after attempt %d: %s",
            op.operation_id, attempt, "it took effect" if found is not None else "no effect",
            extra={
                "sendgrid_ipam_event": "reconcile",
                "operation": op.operation_id,
                "attempt": attempt,
                "took_effect": found is not None,
            },
        )
        return found


class _CheckFailed(SendGridError):
    """The reads that check whether a write took effect failed (the cause is chained)."""

    def unknown(self, operation_id: str) -> AmbiguousResultError:
        """The public error once no further check will be made."""
        return AmbiguousResultError(
            f"{operation_id} may have taken effect, and checking failed: {self.__cause__}"
        )


def _not_found(exc: SendGridError) -> bool:
    """The API's "not found": a 404, or a 400 whose details say so (IPAM has no 404)."""
    if isinstance(exc, NotFoundError):
        return True
    return isinstance(exc, BadRequestError) and any(
        "not found" in detail.message.lower() for detail in exc.errors
    )


def _record(number: int, exc: BaseException) -> AttemptRecord:
    return AttemptRecord(number, describe(exc), exc.status if isinstance(exc, APIError) else None)


class _Slots:
    """How many requests may be in flight: a semaphore whose free path does not await.

    A slot given back goes straight to the longest waiter, so no newcomer can overtake it.
    """

    __slots__ = ("free", "waiters")

    def __init__(self, size: int) -> None:
        self.free = size
        self.waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody is waiting."""
        if self.free and not self.waiters:
            self.free -= 1
            return True
        return False

    async def take(self) -> None:
        """Wait for a slot."""
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as we were cancelled: pass it on
            else:
                with contextlib.suppress(ValueError):  # give() may have dropped it already
                    self.waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Give a slot back (to the first waiter still waiting, if any)."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1


class _Request:
    """One prepared request: everything needed to send an attempt of it."""

    __slots__ = (
        "capped", "client", "data", "deadline", "headers", "method", "policy", "read",
        "session", "timeout", "url",
    )

    def __init__(
        self,
        client: SendGridIPAM,
        session: aiohttp.ClientSession,
        method: str,
        url: URL,
        headers: Mapping[str, str] | None,
        data: bytes | None,
        timeout: aiohttp.ClientTimeout | None,
        read: Callable[[Any], Any],
        deadline: float,
        policy: RetryPolicy,
    ) -> None:
        self.client = client
        self.session = session
        self.method = method
        self.url = url
        self.headers = headers
        self.data = data
        self.timeout = timeout
        self.read = read
        self.deadline = deadline
        self.policy = policy
        # Whether the deadline can cut an attempt short; retries set it, as time has passed.
        total = (timeout or client.timeout).total
        self.capped = total is None or policy.deadline < total

    async def send(self) -> Any:
        """Send one attempt and read its reply; raises a `SendGridError` on any failure."""
        client = self.client
        slots = client._slots
        if slots.free and not slots.waiters:  # try_take(), inlined: this runs on every call
            slots.free -= 1
        else:
            await slots.take()
        try:
            timeout = self.timeout
            if self.capped or (client.gate.reopen_at and client.gate.is_closed()):
                timeout = await self._bounded_timeout()
            try:
                async with (
                    self.session.request(
                        self.method, self.url, headers=self.headers, data=self.data,
                        allow_redirects=False,
                    )
                    if timeout is None
                    else self.session.request(
                        self.method, self.url, headers=self.headers, data=self.data,
                        allow_redirects=False, timeout=timeout,
                    )
                ) as resp:
                    body = await resp.read()
                    status, headers = resp.status, resp.headers
            except aiohttp.ConnectionTimeoutError as exc:
                raise RequestTimeoutError(f"connect timed out: {exc}", request_sent=False) from exc
            except aiohttp.ClientConnectorError as exc:
                raise TransportError(f"cannot connect: {exc}", request_sent=False) from exc
            except TimeoutError as exc:
                raise RequestTimeoutError("the request timed out") from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
            except RuntimeError as exc:
                if self.session.closed:  # the session was closed under a call in flight
                    raise ClientStateError(f"the aiohttp session was closed: {exc}") from exc
                raise
        finally:
            if slots.waiters:
                slots.give()
            else:
                slots.free += 1  # give(), inlined
        if status == 429 or headers.get("X-RateLimit-Remaining") == "0":
            client.gate.observe(status, headers)
        data = _wire.read_reply(status, headers, body, client._wall_clock)
        try:
            return self.read(data)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise DecodeError(
                f"reply does not match the spec ({exc})", status=status,
                body=body.decode("utf-8", "replace"),
            ) from exc

    async def _bounded_timeout(self) -> aiohttp.ClientTimeout | None:
        """Wait at the gate if it is closed; the attempt's timeout, cut to the deadline."""
        client = self.client
        remaining = self.deadline - client._clock()
        if client.gate.is_closed():
            remaining -= await self._wait_at_gate(remaining)
        timeout = self.timeout or client.timeout
        if timeout.total is None or remaining < timeout.total:
            if remaining <= 0:
                raise RequestTimeoutError("the call's deadline was reached", request_sent=False)
            return attrs.evolve(timeout, total=remaining)
        return self.timeout

    async def _wait_at_gate(self, remaining: float) -> float:
        gate, policy = self.client.gate, self.policy
        closed_for = gate.closed_for()
        if closed_for > min(remaining, policy.max_rate_limit_wait):
            reopen = gate.reopens_at()
            raise RateLimitError(
                429,
                [ErrorDetail(f"rate-limit window closed for {closed_for:.1f}s more")],
                "",
                {},
                RateLimit(reset_at=reopen),
            )
        logger.debug("holding a request %.2fs for the rate-limit window", closed_for,
                     extra={"sendgrid_ipam_event": "rate_limited", "wait": closed_for})
        return await gate.wait()
