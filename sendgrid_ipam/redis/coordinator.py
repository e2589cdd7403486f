"""`RedisCoordinator`: gate, retry budget and write leases shared by processes through Redis.

Every decision that two processes could race on is one Lua script (``_scripts.py``), so
Redis makes it atomically. What each API call costs, on the happy path:

- a read: **one** round trip, the gate check (``PTTL`` of the endpoint's closure, plus the
  retry budget's top-up when one is due, in the same script);
- a write that holds a lease (add IPs, create a pool, add an IPAM IP): take the lease (1),
  the gate check of its reconciler's read and of the write (1 each), the lease check before
  the write is sent (1), release (1). A lease's TTL is renewed by each check and by a
  background task every third of the TTL while it is held.

The gate is checked with a round trip rather than a locally cached flag refreshed over
pub/sub: it is always current (a closure seen by one process holds the next request of
every other, with no propagation delay or lost message to handle), and the per-endpoint
pacing that replaces it shares each window's remaining requests, which needs an atomic step
per request anyway. benchmarks/RESULTS.md gives its cost.

Fencing: a lease's token grows by one per holding of its key (``INCR``); Redis keeps a random
nonce of the holding as the lease's value, and `Lease.check` confirms with Redis that this
holding is still the current one before every write the engine sends. A
holder that paused past its TTL, or whose Redis failed over without the key, finds out there
and sends nothing (`LeaseLostError`). When Redis cannot be reached, a write cannot take or
confirm its lease and is not sent (`CoordinatorUnavailableError`); a read is not sent either,
unless ``reads_without_redis`` lets it go with this process's own view of the gate.

Waiting for a lease: within a process, first come first served (one local queue per key, so
only its head polls Redis); across processes, the head polls with backoff (2 to 25 ms, or
the holder's TTL left if sooner), and a coordinator that found the key held marks it as
wanted, so the releasing process's next local waiter yields to it: processes take turns.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import redis.asyncio as aioredis

from ..coordination.base import Coordinator, Lease, LeaseLostError
from ..errors import ConfigurationError, ErrorDetail, RateLimitError, RequestTimeoutError
from ..operations import OPERATIONS
from ..ratelimit import RateLimit, RateLimitGate
from . import _scripts
from ._budget import SharedRetryBudget
from ._connection import FAILURES, connect, server_name, unavailable

__all__ = ["RedisCoordinator"]

logger: logging.Logger = logging.getLogger("sendgrid_ipam")

_FIRST_POLL = 0.002
_LAST_POLL = 0.025
_WANT_MS = 100  # a want mark outlives a waiter that gave up by at most this long


class _RedisLease(Lease):
    """A lease held in Redis; also the ``async with`` that takes and releases it."""

    __slots__ = (
        "coordinator", "entered", "held", "key", "nonce", "queued", "renewer", "token", "wait",
    )

    def __init__(self, coordinator: RedisCoordinator, key: str, wait: float) -> None:
        self.coordinator = coordinator
        self.key = key
        self.wait = wait
        self.token = 0
        self.nonce = uuid.uuid4().hex  # what Redis holds for this holding
        self.held = False  # as far as this process knows
        self.queued = False  # counted among this process's users of the key
        self.entered = False  # at the head of this process's queue for the key
        self.renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Lease:
        await self.coordinator._take(self)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.coordinator._give_back(self)

    async def check(self) -> None:
        """Confirm with Redis that this holding is still the current one (one round trip;
        it also renews the TTL).

        Raises:
            LeaseLostError: the lease was released, ran out, or was taken by another holder.
            CoordinatorUnavailableError: Redis could not confirm it (a `LeaseLostError` too).
        """
        if self.held:
            if await self.coordinator._confirm(self, "confirming a write lease"):
                return
            self.held = False
        raise LeaseLostError(
            f"the write lease on {self.key!r} (token {self.token}) is no longer held: "
            "released, expired, or taken over by another holder; nothing was sent")

    def __repr__(self) -> str:
        state = "held" if self.held else "not held"
        return f"<redis lease {self.key!r} token={self.token} {state}>"


class _Queue:
    """This process's waiters for one key: only the head competes in Redis."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()  # first come, first served; no barging past waiters
        self.users = 0


class RedisCoordinator(Coordinator):
    """Gate, retry budget and write leases shared by every process using one Redis.

    Give each process's client the same ``namespace`` (one per SendGrid account or API key:
    rate limits and the retry budget are per key). Make it with `from_url`; close it with
    `aclose` once its clients are closed (a client does not close the coordinator it was
    given).

    Args:
        client: a redis-py asyncio client (``redis.asyncio.Redis``).
        namespace: the prefix of every Redis key used.
        lease_ttl: seconds a write lease lives unless renewed; its holder renews it every
            third of that while it works. A holder paused longer (a frozen VM, a stopped
            process) loses it, and its next check raises `LeaseLostError`.
        reads_without_redis: when Redis cannot be reached, let reads go without the shared
            gate (each process then honours only the rate limits it sees itself). Writes
            never go without Redis.
        retry_capacity: the shared retry budget's capacity, as `RetryBudget`'s ``capacity``.
        retry_refill: retries credited per successful call, as `RetryBudget`'s ``refill``.
        retry_batch: retries each process reserves at a time (see `SharedRetryBudget`).
        max_closure: the longest one reply may close an endpoint, in seconds.
        server: how errors name the server (set by `from_url`: host:port/db, no password).
        owns_client: close ``client`` in `aclose` (set by `from_url`).

    Raises:
        ConfigurationError: an argument out of range.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        namespace: str = "sendgrid-ipam",
        lease_ttl: float = 30.0,
        reads_without_redis: bool = False,
        retry_capacity: float = 100.0,
        retry_refill: float = 0.2,
        retry_batch: int = 10,
        max_closure: float = 60.0,
        server: str = "redis",
        owns_client: bool = False,
    ) -> None:
        if not isinstance(namespace, str) or not namespace or not namespace.isprintable() \
                or " " in namespace:
            raise ConfigurationError(
                f"namespace must be non-empty printable text without spaces, not {namespace!r}")
        if isinstance(lease_ttl, bool) or not isinstance(lease_ttl, int | float) \
                or not 0.01 <= lease_ttl <= 86_400:
            raise ConfigurationError(
                f"lease_ttl must be a number of seconds from 0.01 to 86400, not {lease_ttl!r}")
        try:
            self.budget: SharedRetryBudget = SharedRetryBudget(
                retry_capacity, retry_refill, retry_batch)
            RateLimitGate(max_closure=max_closure)  # checks it now, not at the first 429
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        self.client = client
        self.namespace = namespace
        self.lease_ttl: float = float(lease_ttl)
        self.reads_without_redis = reads_without_redis
        self.max_closure = max_closure
        self.server = server
        self.owns_client = owns_client
        self.quiet = False  # every gate check is a round trip: the engine must ask
        self._degraded = False  # reads are going without Redis (said once per outage)
        self._id = uuid.uuid4().hex
        self._ttl_ms = max(1, round(self.lease_ttl * 1000))
        self._queues: dict[str, _Queue] = {}
        self._gates: dict[str, RateLimitGate] = {}  # what this process saw itself
        self._tasks: set[asyncio.Task[Any]] = set()  # releases and closures under way
        self._renewers: set[asyncio.Task[None]] = set()
        self._budget_key = f"{namespace}:budget"
        register = client.register_script
        self._acquire = register(_scripts.ACQUIRE)
        self._confirm_script = register(_scripts.CONFIRM)
        self._release = register(_scripts.RELEASE)
        self._close = register(_scripts.CLOSE)
        self._gate = register(_scripts.GATE)
        self._settle = register(_scripts.SETTLE)

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 2.0, **options: Any) -> RedisCoordinator:
        """A coordinator on the Redis at ``url`` (e.g. ``redis://127.0.0.1:6379/0``;
        ``rediss://`` for TLS, ``unix:///path/to/socket``; a password as
        ``redis://:PASSWORD@host``, never shown in errors or reprs).

        Args:
            url: the Redis server.
            timeout: seconds to connect, and for each command's reply: a Redis that does
                not answer within it counts as unavailable.
            **options: the keyword arguments of `RedisCoordinator` (namespace, lease_ttl...).

        Raises:
            ConfigurationError: the URL or an option cannot be used.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
                or not 0 < timeout <= 3600:
            raise ConfigurationError(
                f"timeout must be a number of seconds from 0 to 3600, not {timeout!r}")
        client = connect(url, timeout=timeout)
        return cls(client, server=server_name(url), owns_client=True, **options)

    def __repr__(self) -> str:
        return (f"<RedisCoordinator {self.server} namespace={self.namespace!r} "
                f"lease_ttl={self.lease_ttl:g} {self.budget!r}>")

    # ---------------------------------------------------------------- gate

    def gate_open(self, endpoint: str) -> bool:
        """Always False: only Redis knows, so the engine awaits `wait_at_gate`."""
        return False

    async def wait_at_gate(self, endpoint: str, *, within: float) -> float:
        """Wait while any process has seen ``endpoint``'s window closed (one round trip
        when it is open, which also tops up the retry budget's reserve).

        Raises:
            RateLimitError: the window stays closed longer than ``within`` seconds.
            CoordinatorUnavailableError: Redis cannot be reached (not for a read when
                ``reads_without_redis``).
        """
        waited = 0.0
        while True:
            try:
                closed = await self._check_gate(endpoint)
                self._degraded = False
            except FAILURES as exc:
                if not (self.reads_without_redis and _is_read(endpoint)):
                    raise unavailable(self.server, exc, "checking the rate-limit gate") from None
                if not self._degraded:
                    self._degraded = True
                    logger.warning("Redis at %s is unavailable (%s): reads go without the "
                                   "shared gate until it is back", self.server,
                                   type(exc).__name__,
                                   extra={"sendgrid_ipam_event": "coordinator_unavailable"})
                closed = 0.0
            local = self._gates.get(endpoint)
            if local is not None:
                closed = max(closed, local.closed_for())
            if closed <= 0:
                return waited
            if closed > within - waited:
                raise RateLimitError(
                    429, [ErrorDetail(f"rate-limit window closed for {closed:.1f}s more")],
                    "", {}, RateLimit(reset_at=time.time() + closed),
                )
            logger.debug("holding a request %.2fs for the rate-limit window", closed,
                         extra={"sendgrid_ipam_event": "rate_limited", "wait": closed})
            await asyncio.sleep(closed)
            waited += closed

    async def _check_gate(self, endpoint: str) -> float:
        """Seconds ``endpoint`` stays closed in Redis; settles the budget on the way."""
        budget = self.budget
        credit, want = budget.credit, budget.wanted()
        ms, reserved, shared = await self._gate(
            keys=[f"{self.namespace}:gate:{endpoint}", self._budget_key],
            args=[repr(credit), want, repr(budget.capacity)],
        )
        if credit or want:
            budget.settled(credit, int(reserved), float(shared) if shared else None)
        return max(0, int(ms)) / 1000.0

    def observe(self, endpoint: str, status: int, headers: Mapping[str, str]) -> None:
        """Close ``endpoint`` for every process as the reply says (in the background: this
        process holds its own requests at once, the others from Redis's next answer)."""
        gate = self._gates.get(endpoint)
        if gate is None:
            gate = self._gates[endpoint] = RateLimitGate(max_closure=self.max_closure)
        gate.observe(status, headers)
        ms = round(gate.closed_for() * 1000)
        if ms > 0:
            self._spawn(self._close_remote(endpoint, ms))

    async def _close_remote(self, endpoint: str, ms: int) -> None:
        try:
            await self._close(keys=[f"{self.namespace}:gate:{endpoint}"], args=[ms])
        except FAILURES as exc:
            logger.warning("could not share a rate-limit closure through Redis (%s)",
                           type(exc).__name__,
                           extra={"sendgrid_ipam_event": "coordinator_unavailable"})

    # ---------------------------------------------------------------- leases

    def lease(self, key: str, *, wait: float) -> AbstractAsyncContextManager[Lease]:
        """Hold ``key`` across every process for the block, waiting at most ``wait`` s.

        Raises:
            RequestTimeoutError: not obtained within ``wait`` (nothing sent).
            CoordinatorUnavailableError: Redis cannot be reached (nothing sent).
        """
        return _RedisLease(self, key, wait)

    def _key(self, kind: str, key: str) -> str:
        return f"{self.namespace}:{kind}:{key}"

    async def _take(self, lease: _RedisLease) -> None:
        key = lease.key
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        queue.users += 1
        lease.queued = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(lease.wait, 0.0)
        try:
            try:
                async with asyncio.timeout_at(deadline):
                    await queue.lock.acquire()
            except TimeoutError:
                raise _timed_out(key) from None
            lease.entered = True
            try:
                lease.token = await self._acquire_remote(key, lease.nonce, deadline)
            except BaseException:
                # Cancelled, or Redis failed, after the script may have taken the key: free
                # it now rather than when its TTL runs out (nothing happens if it was not).
                self._spawn(self._release_remote(key, lease.nonce, quiet=True))
                raise
        except BaseException:
            self._leave(lease)
            raise
        lease.held = True
        lease.renewer = renewer = asyncio.get_running_loop().create_task(self._renew(lease))
        self._renewers.add(renewer)
        renewer.add_done_callback(self._renewers.discard)

    async def _acquire_remote(self, key: str, nonce: str, deadline: float) -> int:
        loop = asyncio.get_running_loop()
        keys = [self._key("lease", key), self._key("token", key), self._key("want", key)]
        args: list[int | str] = [self._ttl_ms, self._id, _WANT_MS, nonce]
        poll = _FIRST_POLL
        while True:
            try:
                got, value = await self._acquire(keys=keys, args=args)
            except FAILURES as exc:
                raise unavailable(self.server, exc, "taking a write lease") from None
            if got:
                return int(value)
            left = deadline - loop.time()
            if left <= 0:
                raise _timed_out(key)
            holder_left = int(value) / 1000.0 or poll  # 0: free, but another waiter's turn
            await asyncio.sleep(min(poll, left, holder_left))
            poll = min(poll * 2, _LAST_POLL)

    async def _confirm(self, lease: _RedisLease, doing: str) -> bool:
        try:
            held = await self._confirm_script(
                keys=[self._key("lease", lease.key)], args=[lease.nonce, self._ttl_ms])
        except FAILURES as exc:
            raise unavailable(self.server, exc, doing) from None
        return bool(held)

    async def _renew(self, lease: _RedisLease) -> None:
        every = self.lease_ttl / 3
        while lease.held:
            await asyncio.sleep(every)
            try:
                if not await self._confirm(lease, "renewing a write lease"):
                    lease.held = False
                    logger.warning("the write lease on %r was lost before it was released",
                                   lease.key, extra={"sendgrid_ipam_event": "lease_lost"})
            except LeaseLostError as exc:  # Redis unavailable: the next check will say so
                logger.warning("%s", exc, extra={"sendgrid_ipam_event": "coordinator_unavailable"})

    async def _give_back(self, lease: _RedisLease) -> None:
        """Release in Redis (if still held) and hand on to this process's next waiter.

        Never raises for Redis: a release that cannot reach it lets the TTL free the key.
        The release runs on even if the holder is cancelled meanwhile."""
        if lease.renewer is not None:
            lease.renewer.cancel()
            lease.renewer = None
        try:
            if lease.held:
                lease.held = False
                await asyncio.shield(self._spawn(self._release_remote(lease.key, lease.nonce)))
        finally:
            self._leave(lease)

    async def _release_remote(self, key: str, nonce: str, *, quiet: bool = False) -> None:
        try:
            await self._release(keys=[self._key("lease", key)], args=[nonce])
        except FAILURES as exc:
            if quiet:
                return
            logger.warning("could not release the write lease on %r (%s): it frees itself "
                           "when its TTL runs out", key, type(exc).__name__,
                           extra={"sendgrid_ipam_event": "coordinator_unavailable"})

    def _leave(self, lease: _RedisLease) -> None:
        """Leave this process's queue for the key (at most once: the engine exits a lease
        whose entry failed, too)."""
        if not lease.queued:
            return
        lease.queued = False
        queue = self._queues[lease.key]
        if lease.entered:
            lease.entered = False
            queue.lock.release()
        queue.users -= 1
        if not queue.users:
            del self._queues[lease.key]

    # ---------------------------------------------------------------- lifecycle

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        """Finish pending releases and closures, hand back the unspent retry reserve, and
        close the Redis connections (when made by `from_url`)."""
        for renewer in list(self._renewers):
            renewer.cancel()  # leases still held when closing: their TTL frees them
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        budget = self.budget
        if budget.available >= 1 or budget.credit:
            reserve = float(int(budget.available))
            try:
                await self._settle(keys=[self._budget_key],
                                   args=[repr(budget.credit + reserve), 0, repr(budget.capacity)])
                budget.settled(budget.credit, -int(reserve), None)
            except FAILURES:
                pass  # the reserve is lost to the shared balance; credits will refill it
        if self.owns_client:
            closing: Callable[[], Awaitable[None]] = getattr(
                self.client, "aclose", None) or self.client.close
            await closing()


def _is_read(endpoint: str) -> bool:
    op = OPERATIONS.get(endpoint)
    return op is not None and op.method == "GET"


def _timed_out(key: str) -> RequestTimeoutError:
    return RequestTimeoutError(
        f"the call's deadline was reached waiting for the write lease on {key!r} "
        "(another write to it is in flight)", request_sent=False)
