"""`SendGridIPAM`: the facade. Configuration, the session's lifecycle, and the resources.

It holds no request logic: every operation goes through the engine (``engine/``), which the
resources call; state shared between calls lives behind the coordinator
(``coordination/``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Literal

import aiohttp
from yarl import URL

from . import _wire
from ._observe import HookSink, Observer, Sink, check_hook
from ._text import shown
from .coordination import Coordinator, MemoryCoordinator
from .engine import Engine, RequestOptions, as_timeout, header_safe
from .engine.body import DEFAULT_MAX_REPLY_SIZE
from .errors import ClientStateError, ConfigurationError, ValidationError
from .hooks import RequestHook, ResponseHook
from .resources import IpsResource, PoolsResource, ProvisioningResource
from .retry import RetryBudget, RetryPolicy

__all__ = ["BASE_URLS", "DEFAULT_TIMEOUT", "RequestOptions", "SendGridIPAM"]

BASE_URLS = {"global": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}
DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=30.0, sock_connect=10.0)
"""Per attempt: 30 s in all, of which at most 10 s to open a new connection."""


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _observer(
    on_request: RequestHook | None,
    on_response: ResponseHook | None,
    tracer_provider: Any,
    meter_provider: Any,
    telemetry: bool,
) -> Observer | None:
    """The engine's observer: None unless a hook or telemetry is turned on."""
    if not isinstance(telemetry, bool):
        raise ConfigurationError(f"telemetry must be True or False, not {shown(telemetry)}")
    sinks: list[Sink] = []
    if on_request is not None or on_response is not None:
        for name, hook in (("on_request", on_request), ("on_response", on_response)):
            if hook is not None:
                check_hook(name, hook)
        sinks.append(HookSink(on_request, on_response))
    if telemetry or tracer_provider is not None or meter_provider is not None:
        from .otel import Telemetry  # imports OpenTelemetry: only when asked for

        sinks.append(Telemetry(tracer_provider, meter_provider, use_global=telemetry))
    return Observer(tuple(sinks)) if sinks else None


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
        retry: the default `RetryPolicy` (per call: ``retry=``; ``deadline=`` overrides
            its deadline for one call).
        retry_budget: the client-wide `RetryBudget` (of the default coordinator).
        coordinator: what calls share — the rate-limit gate, the retry budget and write
            leases (default: a `MemoryCoordinator` of this client's own). Pass one
            coordinator to several clients, or a shared one (Redis), to coordinate them.
        max_connections: requests in flight at once (and the connection pool's size).
        max_reply_size: the most bytes of body one reply may have, after decompression
            (default 16 MiB); a longer one ends the attempt with `DecodeError`.
        user_agent: replaces the ``sendgrid-ipam/<version>`` User-Agent.
        clock: a monotonic clock (tests inject one so that they never wait for real).
        wall_clock: a Unix clock, for ``Retry-After`` dates and rate-limit resets.
        sleep: the async sleep of retry waits and gate waits (tests inject one).
        seed: seeds the backoff jitter, for reproducible tests.
        on_request: called with a `RequestEvent` before each HTTP request is sent.
        on_response: called with a `ResponseEvent` once each HTTP request has ended (its
            status, duration, rate-limit state and reply headers); see
            ``sendgrid_ipam.hooks``. Both are plain functions, called inline; one that
            raises is logged and ignored.
        tracer_provider: an OpenTelemetry ``TracerProvider``: a span per operation call
            (see ``sendgrid_ipam.otel``; needs ``pip install "sendgrid-ipam[otel]"``).
        meter_provider: an OpenTelemetry ``MeterProvider``: request durations, retries,
            reconciliations, 429s and audit excess.
        telemetry: True to use OpenTelemetry's global providers for whichever of the two
            above is not given. With none of these five, nothing is observed and the
            request path builds nothing.

    Raises:
        ConfigurationError: no API key, an unknown region, an unsafe ``base_url``, a hook
            that is not a plain function, telemetry without OpenTelemetry installed, or
            another setting out of range.
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
        coordinator: Coordinator | None = None,
        max_connections: int = 100,
        max_reply_size: int = DEFAULT_MAX_REPLY_SIZE,
        user_agent: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        seed: int | None = None,
        on_request: RequestHook | None = None,
        on_response: ResponseHook | None = None,
        tracer_provider: Any = None,
        meter_provider: Any = None,
        telemetry: bool = False,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get("SENDGRID_API_KEY")
        if not key or not isinstance(key, str) or not key.strip():
            raise ConfigurationError(
                "no API key: pass api_key= or set the SENDGRID_API_KEY environment variable"
            )
        key = key.strip()
        if not header_safe(key) or " " in key:
            raise ConfigurationError(  # never echo the key, even a broken one
                "the API key holds a control character or a space; check how it was pasted"
            )
        if on_behalf_of is not None and not header_safe(on_behalf_of):
            raise ConfigurationError(
                f"on_behalf_of must be non-empty text on one line, not {shown(on_behalf_of)}"
            )
        if region not in BASE_URLS:
            raise ConfigurationError(f"region must be 'global' or 'eu', not {region!r}")
        for name, value in (("max_connections", max_connections),
                            ("max_reply_size", max_reply_size)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigurationError(f"{name} must be an integer of at least 1: {shown(value)}")
        if coordinator is not None and retry_budget is not None:
            raise ConfigurationError(
                "pass retry_budget= or coordinator=, not both: the budget is the coordinator's")
        self.base_url: str = _check_base_url(base_url or BASE_URLS[region])
        self.region = region
        try:
            self.timeout: aiohttp.ClientTimeout = as_timeout(timeout)
        except ValidationError as exc:
            raise ConfigurationError(str(exc)) from None
        self.on_behalf_of = on_behalf_of
        self.retry: RetryPolicy = retry or RetryPolicy()
        self.max_connections = max_connections
        self.coordinator: Coordinator = coordinator or MemoryCoordinator(
            budget=retry_budget, clock=clock, wall_clock=wall_clock, sleep=sleep,
            # No one reply closes the gate for longer than a call would wait for it.
            max_closure=max(self.retry.max_rate_limit_wait, 1.0),
            # Paced once fewer requests remain than could be in flight at once.
            pace_below=max(128, 2 * max_connections))
        headers = _wire.base_headers(key, user_agent)
        # The engine inflates replies itself, within max_reply_size: ask only for what it reads.
        headers["Accept-Encoding"] = "gzip, deflate"
        if on_behalf_of is not None:
            headers["On-Behalf-Of"] = on_behalf_of
        self._engine = Engine(
            api_key=key,
            base_url=self.base_url,
            # The spec serves a few operations from the global host only (operations.py).
            global_base=self.base_url if base_url else BASE_URLS["global"],
            headers=headers, timeout=self.timeout, policy=self.retry,
            coordinator=self.coordinator, max_connections=max_connections,
            max_reply_size=max_reply_size, clock=clock, wall_clock=wall_clock, sleep=sleep,
            seed=seed,
        )
        self._engine.observer = _observer(
            on_request, on_response, tracer_provider, meter_provider, telemetry)
        self._given_session = session
        self.ips: IpsResource = IpsResource(self._engine)
        self.pools: PoolsResource = PoolsResource(self._engine)
        self.provisioning: ProvisioningResource = ProvisioningResource(self._engine)

    @property
    def retry_budget(self) -> RetryBudget:
        """The client-wide retry budget (the coordinator's)."""
        return self.coordinator.budget

    def __repr__(self) -> str:
        engine = self._engine
        state = "closed" if engine.closed else "open" if engine.session else "not started"
        return f"<SendGridIPAM base_url={self.base_url!r} api_key=<redacted> {state}>"

    async def __aenter__(self) -> SendGridIPAM:
        engine = self._engine
        if engine.closed:
            raise ClientStateError("this client is closed; create a new SendGridIPAM")
        if engine.session is None:
            if self._given_session is not None:
                engine.use_session(self._given_session, owned=False)
            else:
                session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=self.max_connections),
                    headers=engine.headers,
                    timeout=self.timeout,
                    auto_decompress=False,  # the engine inflates, within max_reply_size
                )
                # aiohttp quietly resends a GET, PUT or DELETE once when a kept-alive
                # connection drops; the client would then take a delete's "not found" for
                # the first answer. Its own retries handle drops, knowing they may have
                # taken effect. (A private switch: where it is missing, nothing changes.)
                if hasattr(session, "_retry_connection"):
                    session._retry_connection = False
                engine.use_session(session, owned=True)
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
        engine = self._engine
        engine.closed = True
        if engine.lingering:  # cancelled writes' leases, held until a late landing shows
            await asyncio.gather(*engine.lingering, return_exceptions=True)
        session, engine.session = engine.session, None
        if session is not None and session is not self._given_session:
            await session.close()
