"""FakeSendGrid: the 18 operations as an aiohttp.web application on a loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import time
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Unpack

import attrs
from aiohttp import web

from ._faults import Fault, FaultKind, FaultPlan, FaultRates
from ._ipam import ip_details
from ._late import LateWrites
from ._log import LogFilter, RequestRecord, select
from ._operations import OPERATIONS, Operation
from ._ratelimit import RateLimiter, RateState
from ._replies import (
    TOO_MANY_REQUESTS,
    Api,
    Call,
    Refused,
    Reply,
    html_reply,
    refusal_reply,
    status_reply,
    truncated,
)
from ._state import AddressesExhausted, State

_WebHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.frozen
class PoolView:
    """A snapshot of one IP pool: its id (a numeric string), name and IPs."""

    id: str
    name: str
    ips: tuple[str, ...]


def _loopback(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ValueError(f"FakeSendGrid only listens on a loopback address, not {host!r}")
    return host


def _bearer(header: str | None) -> bytes | None:
    if header is None or not header.startswith("Bearer "):
        return None
    return header[len("Bearer ") :].encode()


class FakeSendGrid:
    """A stateful fake of SendGrid's IP Address Management and IP Provisioning APIs.

    It serves all 18 operations of the official specs on a loopback port, keeps IPs, pools,
    subusers and partner accounts in memory, enforces the specs' rules with their error
    bodies, rate-limits like SendGrid and injects faults on demand. Every request is logged.

    Use it as ``async with FakeSendGrid() as fake:`` and point a client at ``fake.url``;
    or call `start()` and `close()`; or serve `fake.app` with aiohttp's own test server.

    Each request is checked in this order: authentication (401), rate limit (429), injected
    fault, then the operation itself (400/404 for bad input, else its success status).

    A late fault (`Fault.late`, `Fault.late_drop`, `FaultRates.late`) answers its failure at
    once and carries the write out `delay` seconds later, as the backend behind a gateway
    that timed out; until then the state, list replies and ``applied`` in the log do not show
    it. `pending_late` counts those writes, ``await settle()`` waits until they have landed,
    `land_late_writes()` lands them now, and closing the fake lands any still pending.

    Args:
        api_key: the only key accepted in ``Authorization: Bearer <key>``.
        accounts: ids of the partner accounts that exist (others get 404).
        host: a loopback address to listen on; anything else is refused.
        port: the port; 0 picks a free one.
        rate_limit: requests per window per key; None enforces none (the headers still come,
            announcing a large limit).
        rate_window: the window's length in seconds.
        faults: probabilities of random faults, drawn from ``random.Random(seed)``.
        seed: the seed of the random faults.
        ipam_ips: how many IPAM IPs exist from the start (their flags vary, so filters have
            something to filter; one in three is in "eu").
        clock: the time source for rate-limit windows, ``added_at`` and the log.
    """

    def __init__(
        self,
        *,
        api_key: str = "SG.test",
        accounts: Iterable[str] = ("acct-1",),
        host: str = "127.0.0.1",
        port: int = 0,
        rate_limit: int | None = None,
        rate_window: float = 1.0,
        faults: FaultRates | None = None,
        seed: int = 0,
        ipam_ips: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.api_key = api_key
        self._key = api_key.encode()
        self._host = _loopback(host)
        self._port = port
        self._clock = clock
        self._state = State()
        self._limiter = RateLimiter(rate_limit, rate_window, clock)
        self._faults = FaultPlan(faults, seed)
        self.log: list[RequestRecord] = []
        """One record per request, oldest first."""
        self.app: web.Application = self._build_app()
        """The aiohttp application."""
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._closing: asyncio.Event | None = None
        self._late = LateWrites()
        for account_id in [accounts] if isinstance(accounts, str) else accounts:
            self.add_account(account_id)
        self._seed_ipam(ipam_ips)

    def __repr__(self) -> str:
        return f"<FakeSendGrid {self._url or 'not started'}>"

    # lifecycle
    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:54321``, once started."""
        if self._url is None:
            raise RuntimeError("FakeSendGrid is not started")
        return self._url

    async def start(self) -> None:
        """Start listening."""
        if self._runner is not None:
            raise RuntimeError("FakeSendGrid is already started")
        self._closing = asyncio.Event()
        runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        try:
            await web.TCPSite(runner, self._host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self._url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop listening; slow replies in progress end at once. Safe to call twice."""
        if self._closing is not None:
            self._closing.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeSendGrid:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # state
    def add_account(self, account_id: str, *, ips: int = 0, region: str = "us") -> list[str]:
        """Make a partner account exist (if new) and hand it `ips` new IPs; returns those IPs.

        Args:
            account_id: the account (created if the fake does not know it).
            ips: how many new IPs to add to it at once (no request is logged).
            region: the region of those IPs, ``"us"`` or ``"eu"``.

        Raises:
            ValueError: fewer than `ips` addresses are left (see `addresses_left`).
        """
        self._state.accounts.setdefault(account_id, [])
        try:
            return self._state.add_account_ips(account_id, ips, region) if ips else []
        except AddressesExhausted:
            raise ValueError(f"only {self.addresses_left} addresses are left") from None

    @property
    def addresses_left(self) -> int:
        """How many addresses the fake can still hand out (AddIp, AddAccountIps, seeding).

        Addresses come from non-routable networks only (RFC 5737 documentation networks, then
        RFC 2544's 198.18.0.0/15), each once; when none is left those operations answer 400.
        """
        return self._state.addresses.remaining

    @property
    def accounts(self) -> tuple[str, ...]:
        """The partner accounts that exist."""
        return tuple(self._state.accounts)

    def account_ips(self, account_id: str) -> list[str]:
        """A partner account's IPs, newest first, as they are now (late writes not landed yet
        excluded).

        Args:
            account_id: the account.

        Raises:
            KeyError: the fake does not know the account.
        """
        return self._state.accounts[account_id][::-1]

    def ipam_ips(self) -> list[str]:
        """The IPAM IPs, in the order ListIp pages through them (oldest first)."""
        return [record.ip for record in self._state.ipam_order]

    def ipam_ip(self, ip: str) -> dict[str, Any]:
        """One IPAM IP as GetIp with include_region=true answers it, plus its ``subusers``.

        Args:
            ip: the IP address, as the fake lists it.

        Raises:
            KeyError: the IP is not among the fake's IPAM IPs.
        """
        record = self._state.ipam[ip]
        return ip_details(self._state, record, True) | {"subusers": list(record.subusers)}

    def pools(self) -> list[PoolView]:
        """Snapshots of the IP pools, by id."""
        return [
            PoolView(str(pool.id), pool.name, tuple(self._state.pool_ips(pool)))
            for pool in self._state.pools.values()
        ]

    def _seed_ipam(self, count: int) -> None:
        if count > self._state.addresses.remaining:
            raise ValueError(f"ipam_ips must be at most {self._state.addresses.remaining}")
        now = int(self._clock())
        for index in range(count):
            self._state.add_ipam_ip(
                region="eu" if index % 3 == 2 else "us",
                added_at=now - count + index + 1,  # one second apart, the last one now
                is_auto_warmup=index % 2 == 1,
                is_parent_assigned=True,
                is_leased=index % 5 != 4,
            )

    # faults and rate limits
    def script(
        self, operation_id: str, fault: Fault, *, times: int = 1, account_id: str | None = None
    ) -> None:
        """Give `fault` to the next `times` calls of `operation_id`.

        Scripted faults queue up per operation and come before random ones. A read meets a
        write's fault as a read (never applied, never landing late).

        Args:
            operation_id: the operation, by its operationId (``"AddAccountIps"``...).
            fault: what goes wrong, e.g. ``Fault.applied_error(502)``.
            times: how many calls get it.
            account_id: only calls for this partner account get it (None: any call).

        Raises:
            ValueError: an unknown operationId, or `times` below 1.
        """
        self._faults.script(operation_id, fault, times, account_id)

    @property
    def faults(self) -> FaultRates | None:
        """The random fault rates; assign new ones (or None) at any time."""
        return self._faults.rates

    @faults.setter
    def faults(self, rates: FaultRates | None) -> None:
        self._faults.rates = rates

    def pending_faults(self) -> int:
        """How many scripted faults have not met their call yet."""
        return self._faults.pending()

    def clear_faults(self) -> None:
        """Drop every scripted fault (random rates stay)."""
        self._faults.clear()

    @property
    def pending_late(self) -> int:
        """How many late writes were answered but have not landed yet."""
        return len(self._late)

    async def settle(self) -> None:
        """Wait until every pending late write has landed (returns at once if none is)."""
        await self._late.settle()

    def land_late_writes(self) -> int:
        """Carry out every pending late write now, oldest first; returns how many landed."""
        return self._late.land_all()

    def rate_limit_window(self, seconds: float) -> float:
        """Answer 429 to every request for `seconds` from now.

        Args:
            seconds: how long the window stays closed.

        Returns:
            When it reopens, on the fake's monotonic clock.
        """
        return self._limiter.block(seconds)

    # log
    def records(
        self, operation_id: str | None = None, **filters: Unpack[LogFilter]
    ) -> list[RequestRecord]:
        """The logged requests of `operation_id` matching every filter given, in order.

        Args:
            operation_id: the operation (None: any).
            **filters: ``applied``, ``account_id``, ``status``, ``fault`` (a fault's name, as
                `Fault.name`); a filter left out or None matches any value.
        """
        return select(self.log, operation_id, filters)

    def count(self, operation_id: str | None = None, **filters: Unpack[LogFilter]) -> int:
        """How many logged requests `records()` would return for the same filters.

        Args:
            operation_id: the operation (None: any).
            **filters: as for `records`.
        """
        return len(select(self.log, operation_id, filters))

    def reset_log(self) -> None:
        """Forget the logged requests."""
        self.log.clear()

    # serving
    def _build_app(self) -> web.Application:
        @web.middleware
        async def unrouted(request: web.Request, handler: _WebHandler) -> web.StreamResponse:
            error = request.match_info.http_exception
            if error is None:
                return await handler(request)
            return self._unrouted(request, error.status)

        async def land_late_writes(_: web.Application) -> None:
            self._late.land_all()

        app = web.Application(middlewares=[unrouted])
        app.on_cleanup.append(land_late_writes)
        for operation in OPERATIONS:
            app.router.add_route(
                operation.method,
                operation.path,
                self._handler(operation),
                name=operation.operation_id,
            )
        return app

    def _handler(self, operation: Operation) -> _WebHandler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._serve(operation, request)

        return handle

    def _unrouted(self, request: web.Request, status: int) -> web.StreamResponse:
        """404/405 for a path or method no operation has, in the API's error shape."""
        received = self._clock()
        api = Api.PROVISIONING if request.path.startswith("/v3/partners/") else Api.IPAM
        rate = self._limiter.peek(_bearer(request.headers.get("Authorization")) or b"")
        reply = status_reply(api, status)
        self._record(request, None, received, reply, applied=False, fault=None)
        return self._respond(reply, rate)

    async def _serve(self, operation: Operation, request: web.Request) -> web.StreamResponse:
        received = self._clock()
        if ":" in operation.path and ":" not in request.rel_url.raw_path:
            return self._unrouted(request, 404)  # ':' must be sent literally, not as %3A
        body = await request.read()
        account_id = request.match_info.get("accountID")
        token = _bearer(request.headers.get("Authorization"))
        fault: Fault | None = None
        applied = False
        reply: Reply | None
        call: Call | None = None
        if token is None or not hmac.compare_digest(token, self._key):
            rate = self._limiter.peek(token or b"")
            reply = status_reply(operation.api, 401)
        else:
            rate = self._limiter.take(token)
            if not rate.allowed:
                reply = TOO_MANY_REQUESTS
            else:
                fault = self._faults.next_fault(operation.operation_id, account_id)
                if fault is not None and not operation.write:
                    fault = fault.for_read()
                call = Call(request.match_info, request.query, body, received)
                reply, applied = await self._answer(operation, call, fault)
        self._record(request, operation, received, reply, applied=applied, fault=fault)
        if fault is not None and fault.lands_late and call is not None:
            self._schedule_late(operation, call, fault.delay)
        if reply is None:
            if request.transport is not None:
                request.transport.close()
            return web.Response()  # never sent: aiohttp sees the closed connection and gives up
        return self._respond(reply, rate)

    async def _answer(
        self, operation: Operation, call: Call, fault: Fault | None
    ) -> tuple[Reply | None, bool]:
        """The reply (None to drop the connection) and whether the state changed."""
        if fault is not None and fault.kind is FaultKind.SLOW:
            await self._pause(fault.delay)
            fault = None
        handled = None
        if fault is None or fault.applied or fault.kind is FaultKind.MALFORMED:
            handled = self._handle(operation, call)
        applied = handled is not None and operation.write and handled.status < 300
        if fault is None or fault.kind is FaultKind.MALFORMED:
            assert handled is not None
            return (handled if fault is None else truncated(handled)), applied
        if fault.kind is FaultKind.DROP:
            return None, applied
        assert fault.status is not None
        if fault.kind is FaultKind.HTML:
            return html_reply(fault.status), applied
        return status_reply(operation.api, fault.status), applied

    def _schedule_late(self, operation: Operation, call: Call, delay: float) -> None:
        index = len(self.log) - 1
        record = self.log[index]

        def land() -> None:
            now = self._clock()
            handled = self._handle(operation, attrs.evolve(call, now=now))
            # reset_log() may have dropped the record meanwhile: then there is none to update
            if index < len(self.log) and self.log[index] is record:
                landed = attrs.evolve(record, applied=handled.status < 300, landed_at=now)
                self.log[index] = landed

        self._late.schedule(delay, land)

    def _handle(self, operation: Operation, call: Call) -> Reply:
        try:
            return operation.handler(self._state, call)
        except Refused as refusal:
            return refusal_reply(operation.api, refusal)

    async def _pause(self, delay: float) -> None:
        if self._closing is None:  # served by someone else's runner (aiohttp's TestServer)
            self._closing = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), delay)

    @staticmethod
    def _respond(reply: Reply, rate: RateState) -> web.Response:
        return web.Response(
            status=reply.status,
            body=reply.body or None,
            content_type=reply.content_type,
            headers=rate.headers(),
        )

    def _record(
        self,
        request: web.Request,
        operation: Operation | None,
        received: float,
        reply: Reply | None,
        *,
        applied: bool,
        fault: Fault | None,
    ) -> None:
        self.log.append(
            RequestRecord(
                operation_id=operation.operation_id if operation else None,
                method=request.method,
                path=request.rel_url.raw_path,
                query=dict(request.query),
                status=reply.status if reply else None,
                applied=applied,
                fault=fault.name if fault else None,
                account_id=request.match_info.get("accountID"),
                on_behalf_of=request.headers.get("On-Behalf-Of"),
                received_at=received,
                answered_at=self._clock(),
            )
        )
