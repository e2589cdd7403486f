"""`RedisCoordinator`: pacing, retry budget and write leases shared by processes through Redis.

Every decision that two processes could race on is one Lua script (``_scripts.py``, and
``_pacing.py`` for the pace), so Redis makes it atomically. What each API call costs, on the
happy path:

- a read: **one** round trip, the reservation on its endpoint's shared pace (plus the retry
  budget's top-up when one is due, in the same script); while the endpoint is paced (a reply
  said few requests remain, or a 429), each reply's news is one more, in the background;
- a write that holds a lease (add IPs, create a pool, add an IPAM IP): **one** round trip
  before each of its requests too. The engine asks for a *deferred* lease: entering it only
  queues behind this process's earlier holders of the key, and the script that reserves the
  write's first request (``_scripts.with_lease`` around ``_pacing.RESERVE``) takes the lease
  in Redis as well (the marker read of add IPs, in the same task, finds it in a context
  variable); the script of each later request (the POST after the marker read, a retry)
  confirms the lease as it reserves, so the check the engine makes right after is local.
  The release costs no round trip of its own: it is queued, and the next reservation script
  this process sends (``_scripts.with_releases``, any request's) carries it, before its own
  steps (so a same-key release lands before that script's take). A release that no script
  picks up within ``release_linger`` goes by itself, in the background (releases due
  together share one pipeline). The call never waits for it (`aclose` does; so does this
  process's next holder of the key, unless its own script carries it). N ``pools.create``
  calls in a row: N + 1 scripts, one awaited per call; N ``add_ips``: 2N + 1 (one per
  request). Another process waiting for the key waits up to ``release_linger`` longer. A
  lease's TTL is renewed by each confirmation and by a background task every third of the
  TTL.

Pacing is `MemoryCoordinator`'s (see `sendgrid_ipam.ratelimit`), with each endpoint's
`PaceState` kept in Redis and stepped by Lua ports of ``reserve`` and ``learn``: a 429 or
``Remaining: 0`` seen by one process holds the endpoint for all, and they spend one
remaining budget between them. Times are on Redis's clock (see ``_pacing.py``). Tickets
travel from a request's reservation to its reply in a context variable, as in
`coordination.pacer`. Unlike the in-process pacer, endpoints are never grouped into one pace
(a per-key limit shows up in each endpoint's own replies). A process's own waiters wake on
its own news; a process waiting for another's probe asks Redis again every few ms.

Fencing: a lease's token grows by one per holding of its key (``INCR``); Redis keeps a random
nonce of the holding as the lease's value, and before every write the engine sends, Redis
confirms that this holding is still the current one: in the script that reserves the
request, right before it goes out (`Lease.check` then trusts that confirmation only until
the task next yields to the event loop, and never once a TTL has passed since the script was
sent; after any wait it asks Redis again). A holder that
paused past its TTL, or whose Redis failed over without the key, finds out there and sends
nothing (`LeaseLostError`). When Redis cannot be reached, a write cannot take or
confirm its lease and is not sent (`CoordinatorUnavailableError`); a read is not sent either,
unless ``reads_without_redis`` lets it go with the holds this process saw itself (never a
read that would take a write's lease). A release that cannot reach Redis only delays the
next holder until the TTL frees the key (one carried by a script that failed, or whose
caller was cancelled, is sent again by itself at once, and logged if that fails too).

Waiting for a lease: within a process, first come first served (one local queue per key, so
only its head polls Redis); across processes, the head polls with backoff (2 to 25 ms, or
the holder's TTL left if sooner), and a coordinator that found the key held marks it as
wanted, so the releasing process's next local waiter yields to it: processes take turns.
A deferred lease that its first gate script finds held (nothing is reserved then) is waited
for so too, but not in a connection slot: the engine hands its slot back (`LeaseBusy`),
takes the lease, then takes a slot and passes the gate again (one more round trip, only
when the key is contended), all within the call's deadline and not its rate-limit wait.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random
import time
import uuid
from collections.abc import Coroutine, Mapping
from contextlib import AbstractAsyncContextManager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from ..coordination.base import Coordinator, Lease, LeaseBusy, LeaseLostError
from ..errors import ConfigurationError, ErrorDetail, RateLimitError, RequestTimeoutError
from ..operations import OPERATIONS
from ..ratelimit import (
    PaceRules,
    RateLimit,
    check_max_closure,
    learn,
    plenty_left,
    read_limits,
)
from . import _pacing, _scripts
from ._budget import SharedRetryBudget
from ._connection import FAILURES, close, connect, server_name, unavailable

__all__ = ["RedisCoordinator"]

logger: logging.Logger = logging.getLogger("sendgrid_ipam")

_FIRST_POLL = 0.002
_LAST_POLL = 0.025
_WANT_MS = 100  # a want mark outlives a waiter that gave up by at most this long
# To Redis, per coordinator made by from_url: far above what requests, renewals and
# background releases use at once (one more fails, as Redis being unreachable does).
_MAX_CONNECTIONS = 1000

# Why RESERVE says to wait (see _pacing.py), and one reason of our own.
_GO, _HELD, _SPENT, _PROBE, _HELD_HERE, _LEASE = 0, 1, 2, 3, 4, 5  # _LEASE: its holder
_UNCHANGED = 1  # what LEARN answers when the reply changed nothing

# The task's last reservation on a shared pace: (endpoint, the pace's generation, ticket).
_TICKET: contextvars.ContextVar[tuple[str, int, int] | None] = contextvars.ContextVar(
    "sendgrid_ipam_redis_pace_ticket", default=None)

# The deferred write lease the task holds and has not taken in Redis yet: its next request's
# gate check takes it (a write's marker read, say, made through another call of the engine).
_PENDING: contextvars.ContextVar[_RedisLease | None] = contextvars.ContextVar(
    "sendgrid_ipam_redis_pending_lease", default=None)


class _RedisLease(Lease):
    """A lease held in Redis; also the ``async with`` that takes and releases it."""

    __slots__ = (
        "coordinator", "deadline", "deferred", "entered", "fresh", "fresh_until", "held", "key",
        "nonce", "pending", "queued", "renewer", "token", "wait",
    )

    def __init__(self, coordinator: RedisCoordinator, key: str, wait: float,
                 deferred: bool) -> None:
        self.coordinator = coordinator
        self.key = key
        self.wait = wait
        self.deferred = deferred
        self.deadline = 0.0  # (loop time) by when it must be taken; set on entry
        self.token = 0
        self.nonce = uuid.uuid4().hex  # what Redis holds for this holding
        self.held = False  # as far as this process knows
        self.pending = False  # deferred: entered, to be taken with the first gate check
        # The task whose current step Redis confirmed the holding in (see `confirmed`).
        self.fresh: asyncio.Task[Any] | None = None
        self.fresh_until = 0.0  # (loop time) when that confirmation may have run out in Redis
        self.queued = False  # counted among this process's users of the key
        self.entered = False  # at the head of this process's queue for the key
        self.renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Lease:
        await self.coordinator._take(self)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.coordinator._give_back(self)

    async def check(self) -> None:
        """Confirm with Redis that this holding is still the current one (one round trip,
        which also renews the TTL; none when the gate check just before confirmed it).

        A deferred lease not yet taken is taken here (waiting its turn, within ``wait``).

        Raises:
            LeaseLostError: the lease was released, ran out, or was taken by another holder.
            CoordinatorUnavailableError: Redis could not confirm it (a `LeaseLostError` too).
            RequestTimeoutError: a deferred lease was not obtained in time.
        """
        if self.pending:
            await self.coordinator._take_remote(self)
            return
        if self.held:
            if self.fresh is not None and self.fresh is asyncio.current_task() \
                    and asyncio.get_running_loop().time() < self.fresh_until:
                return  # confirmed in this very step of this task: nothing ran since
            if await self.coordinator._confirm(self, "confirming a write lease"):
                return
            self.held = False
        raise self.lost()

    def lost(self) -> LeaseLostError:
        """The error for a holder that finds this lease gone."""
        return LeaseLostError(
            f"the write lease on {self.key!r} (token {self.token}) is no longer held: "
            "released, expired, or taken over by another holder; nothing was sent")

    def confirmed(self, asked: float) -> None:
        """Redis has just confirmed (or granted) this holding, in a script sent at loop time
        ``asked``: `check`, in this task, needs no round trip until the task yields to the
        event loop (the callback below runs before the task can resume), nor while the TTL
        that script restarted cannot have run out (a process paused with the reply in hand
        would otherwise send under a lease another holder may own by now)."""
        loop = asyncio.get_running_loop()
        self.fresh = asyncio.current_task()
        self.fresh_until = asked + self.coordinator.lease_ttl
        loop.call_soon(self._stale)

    def _stale(self) -> None:
        self.fresh = None

    def __repr__(self) -> str:
        state = "held" if self.held else "to be taken" if self.pending else "not held"
        return f"<redis lease {self.key!r} token={self.token} {state}>"


class _Queue:
    """This process's waiters for one key: only the head competes in Redis."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()  # first come, first served; no barging past waiters
        self.users = 0


class RedisCoordinator(Coordinator):
    """Pacing, retry budget and write leases shared by every process using one Redis.

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
            pace (each process then honours only the 429s and ``Remaining: 0`` it sees
            itself). Writes never go without Redis.
        retry_capacity: the shared retry budget's capacity, as `RetryBudget`'s ``capacity``.
        retry_refill: retries credited per successful call, as `RetryBudget`'s ``refill``.
        retry_batch: retries each process reserves at a time (see `SharedRetryBudget`).
        max_closure: the longest one reply may hold an endpoint, in seconds.
        pace_below: pace an endpoint once a reply says at most this many of its requests
            remain, as `MemoryCoordinator`'s (keep it above the requests that all the
            processes can have in flight at once).
        rng: draws the jitter after a 429.
        release_linger: seconds a lease's release waits for this process's next script to
            carry it (any reservation on the request path: same round trip, none of its
            own) before it is sent by itself; 0 sends it at once. Another process waiting
            for the key waits at most this much longer.
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
        pace_below: int = 128,
        rng: random.Random | None = None,
        release_linger: float = 0.002,
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
            check_max_closure(max_closure)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if isinstance(release_linger, bool) or not isinstance(release_linger, int | float) \
                or not 0 <= release_linger <= 1:
            raise ConfigurationError(
                f"release_linger must be a number of seconds from 0 to 1, not {release_linger!r}")
        if isinstance(pace_below, bool) or not isinstance(pace_below, int) or pace_below < 1:
            raise ConfigurationError(
                f"pace_below must be a positive integer, not {pace_below!r}")
        self.rules: PaceRules = PaceRules(max_closure=float(max_closure), pace_below=pace_below)
        """The pacing constants."""
        self.client = client
        self.namespace = namespace
        self.lease_ttl: float = float(lease_ttl)
        self.reads_without_redis = reads_without_redis
        self.release_linger: float = float(release_linger)
        self.max_closure = max_closure
        self.server = server
        self.owns_client = owns_client
        self.quiet = False  # every gate check is a round trip: the engine must ask
        self._degraded = False  # reads are going without Redis (said once per outage)
        self._id = uuid.uuid4().hex
        self._ttl_ms = max(1, round(self.lease_ttl * 1000))
        self._queues: dict[str, _Queue] = {}
        self._rng = rng or random.Random()
        self._holds: dict[str, float] = {}  # Unix time until which this process holds each
        self._learning: dict[str, asyncio.Task[None]] = {}  # news on its way to Redis
        self._news: dict[str, asyncio.Future[None]] = {}  # wakes this process's waiters
        self._tasks: set[asyncio.Task[Any]] = set()  # releases and closures under way
        self._renewers: set[asyncio.Task[None]] = set()
        # Releases to send (key, nonce, done when sent), and each key's release under way.
        self._to_release: list[tuple[str, str, asyncio.Future[None]]] = []
        self._releases: dict[str, asyncio.Future[None]] = {}
        self._releaser: asyncio.Task[None] | None = None
        self._lingering: asyncio.Future[None] | None = None  # done: the releaser sends now
        self._hurried = False  # the releaser's next batch goes without lingering
        self._budget_key = f"{namespace}:budget"
        register = client.register_script
        self._acquire = register(_scripts.ACQUIRE)
        self._confirm_script = register(_scripts.CONFIRM)
        self._release = register(_scripts.RELEASE)
        self._generations_key = f"{namespace}:pace-generations"
        # The request path's scripts: each carries the releases given back meanwhile.
        self._reserve_script = register(_scripts.with_releases(_pacing.RESERVE))
        self._reserve_lease_script = register(
            _scripts.with_releases(_scripts.with_lease(_pacing.RESERVE)))
        self._learn = register(_pacing.LEARN)
        self._unanswered = register(_pacing.UNANSWERED)
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
        # (redis-py 8's default pool of 100 was too few at 64 calls in flight, with renewals
        # and background releases beside the requests' own scripts.)
        client = connect(url, timeout=timeout, max_connections=_MAX_CONNECTIONS)
        return cls(client, server=server_name(url), owns_client=True, **options)

    def __repr__(self) -> str:
        return (f"<RedisCoordinator {self.server} namespace={self.namespace!r} "
                f"lease_ttl={self.lease_ttl:g} {self.budget!r}>")

    # ---------------------------------------------------------------- pacing

    def gate_open(self, endpoint: str) -> bool:
        """Always False: only Redis knows, so the engine awaits `wait_at_gate`."""
        return False

    async def wait_at_gate(self, endpoint: str, *, within: float,
                           lease: Lease | None = None) -> float:
        """Wait until ``endpoint``'s shared pace lets a request start, and count it there
        (one round trip when it may start, which also tops up the retry budget's reserve).

        With ``lease`` (the write lease the request goes under), the same round trip
        confirms the lease, or takes it if it is deferred and not yet taken; `Lease.check`
        right after costs nothing. A read made under a deferred lease not yet taken (a
        write's marker read, in the same task) takes it likewise. If another holder has
        that lease, nothing is reserved and `LeaseBusy` says so: the engine waits for the
        lease (``lease.check()``) outside its connection slot, then comes back.

        A hold this process learned itself (a 429, ``Remaining: 0``) is waited out without
        asking Redis; so is this process's news of the endpoint still on its way there.

        Raises:
            RateLimitError: the endpoint stays held longer than ``within`` seconds.
            LeaseLostError: ``lease`` is no longer held (nothing may be sent under it).
            LeaseBusy: the deferred lease to take is another holder's (nothing reserved).
            CoordinatorUnavailableError: Redis cannot be reached (not for a read when
                ``reads_without_redis``, unless it has a lease to take: it then honours
                only this process's holds).
        """
        mine = _PENDING.get() if lease is None else lease
        if not isinstance(mine, _RedisLease) or mine.coordinator is not self:
            mine = None
        elif not mine.pending:
            if lease is None:
                mine = None  # a read under a lease already taken: nothing to confirm
            elif not mine.held:
                raise mine.lost()
        loop = asyncio.get_running_loop()
        started = loop.time()
        waited = 0.0  # (no wait at all is exactly 0, not a round trip's time)
        poll = _FIRST_POLL
        while True:
            why = _HELD_HERE
            delay = self._holds.get(endpoint, 0.0) - time.time()
            if delay <= 0:
                self._holds.pop(endpoint, None)
                learning = self._learning.get(endpoint)
                if learning is not None:
                    await asyncio.wait((learning,))  # our own news first (never raises)
                delay, why = await self._reserve_or_degrade(endpoint, mine)
            if why == _LEASE:  # another holder has it: not waited for in a connection slot
                assert mine is not None
                raise LeaseBusy(mine)
            if delay <= 0:
                return waited
            if delay > within - waited:
                raise RateLimitError(
                    429, [ErrorDetail(f"rate-limit window closed for {delay:.1f}s more")],
                    "", {}, RateLimit(reset_at=time.time() + delay),
                )
            logger.debug("holding a request to %s %.3fs for the rate limit", endpoint, delay,
                         extra={"sendgrid_ipam_event": "rate_limited", "operation": endpoint,
                                "wait": delay})
            if why == _PROBE:  # another process's probe: its reply reaches us only by asking
                delay, poll = min(delay, poll), min(poll * 2, _LAST_POLL)
            await self._news_or(endpoint, delay)
            waited = loop.time() - started

    async def _reserve_or_degrade(self, endpoint: str,
                                  lease: _RedisLease | None) -> tuple[float, int]:
        try:
            if lease is not None:
                return await self._reserve_leased(endpoint, lease)
            reserved = await self._reserve(endpoint)
        except FAILURES as exc:
            if lease is not None or not (self.reads_without_redis and _is_read(endpoint)):
                doing = ("checking the rate-limit gate" if lease is None else
                         "taking a write lease" if lease.pending else "confirming a write lease")
                raise unavailable(self.server, exc, doing) from None
            if not self._degraded:
                self._degraded = True
                logger.warning("Redis at %s is unavailable (%s): reads go without the "
                               "shared pace until it is back", self.server, type(exc).__name__,
                               extra={"sendgrid_ipam_event": "coordinator_unavailable"})
            return 0.0, _GO
        self._degraded = False
        return reserved

    async def _reserve_leased(self, endpoint: str, lease: _RedisLease) -> tuple[float, int]:
        """`_reserve` with ``lease`` taken (if pending) or confirmed first, in one script.
        Returns (the holder's seconds left, `_LEASE`) when the lease is not free yet.

        Raises:
            LeaseLostError: the lease held no longer (nothing reserved).
        """
        taking = lease.pending
        if taking:  # this process's last holding's release goes first: in flight, or in
            await self._released_or_queued(lease.key)  # this script, before the take
        budget = self.budget
        credit, want = budget.credit, budget.wanted()
        riding = self._riding()
        asked = asyncio.get_running_loop().time()  # Redis restarts the TTL after this
        try:
            reply = await self._reserve_lease_script(
                keys=[*[self._key("lease", key) for key, _, _ in riding],
                      self._key("pace", endpoint), self._budget_key,
                      *self._lease_keys(lease.key)],
                args=[len(riding), *[nonce for _, nonce, _ in riding],
                      *_pacing.reserve_args(self.rules, credit, want, budget.capacity),
                      _scripts.TAKE if taking else _scripts.HOLD, self._ttl_ms, self._id,
                      _WANT_MS, lease.nonce])
        except BaseException:
            self._unsent(riding)
            if taking:  # the script may have taken it: free it now rather than at its TTL
                self._spawn(self._release_remote(lease.key, lease.nonce, quiet=True))
            raise
        self._sent(riding)
        if not int(reply[0]):  # the lease step failed: nothing reserved
            if taking:
                return int(reply[1]) / 1000.0, _LEASE
            lease.held = False
            raise lease.lost()
        if taking:
            lease.token = int(reply[1])
            self._hold(lease)
        lease.confirmed(asked)
        return self._reserved(endpoint, reply[2:], credit, want)

    async def _reserve(self, endpoint: str) -> tuple[float, int]:
        """Reserve on ``endpoint``'s shared pace; settles the budget on the way.
        Returns the delay (0: reserved) and why it waits."""
        budget = self.budget
        credit, want = budget.credit, budget.wanted()
        riding = self._riding()
        try:
            reply = await self._reserve_script(
                keys=[*[self._key("lease", key) for key, _, _ in riding],
                      self._key("pace", endpoint), self._budget_key],
                args=[len(riding), *[nonce for _, nonce, _ in riding],
                      *_pacing.reserve_args(self.rules, credit, want, budget.capacity)],
            )
        except BaseException:
            self._unsent(riding)
            raise
        self._sent(riding)
        return self._reserved(endpoint, reply, credit, want)

    def _reserved(self, endpoint: str, reply: list[Any], credit: float,
                  want: int) -> tuple[float, int]:
        """What RESERVE answered: the budget settled, the ticket noted; (delay, why)."""
        delay, why, ticket, generation, reserved, shared = reply
        if credit or want:
            self.budget.settled(credit, int(reserved), float(shared) if shared else None)
        wait = float(delay)
        if wait <= 0:
            _TICKET.set((endpoint, int(generation), int(ticket)) if int(generation) else None)
        return wait, int(why)

    def observe(self, endpoint: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a reply to ``endpoint`` that carries rate-limit headers, or a 429.

        The shared pace learns in the background (one round trip, only when the endpoint is
        paced, the reply is a 429 or few requests remain); a 429 or ``Remaining: 0`` holds
        this process's next requests at once.
        """
        limited = status == 429
        mine = _TICKET.get()
        if mine is not None:
            _TICKET.set(None)
            if mine[0] != endpoint:
                mine = None
        if mine is None and not limited and plenty_left(headers, self.rules.pace_below):
            return  # not paced when this request started, and plenty left: nothing to share
        now = time.time()
        reply = read_limits(headers, now)
        jitter = self._rng.random()
        self._hold_here(endpoint, reply, now, limited, jitter)
        task = self._spawn(self._learn_remote(endpoint, reply, now, limited, mine, jitter,
                                              _pacing.window(headers)))
        self._learning[endpoint] = task
        task.add_done_callback(lambda done: self._learned(endpoint, done))

    def unanswered(self, endpoint: str) -> None:
        """This task's last request to ``endpoint`` ended without news: if it was the probe
        the shared pace waits for, the next request (of any process) probes at once rather
        than after the probe's timeout. Told to Redis in the background."""
        mine = _TICKET.get()
        if mine is None or mine[0] != endpoint:
            return
        _TICKET.set(None)
        self._spawn(self._unanswered_remote(endpoint, mine[1], mine[2]))

    async def _unanswered_remote(self, endpoint: str, generation: int, ticket: int) -> None:
        try:
            let_go = await self._unanswered(keys=[self._key("pace", endpoint)],
                                            args=[ticket, generation])
        except FAILURES as exc:  # the others then wait out the probe's timeout
            logger.warning("could not share rate-limit news through Redis (%s)",
                           type(exc).__name__,
                           extra={"sendgrid_ipam_event": "coordinator_unavailable"})
            return
        if int(let_go):
            self._wake(endpoint)

    def _hold_here(self, endpoint: str, reply: RateLimit, now: float, limited: bool,
                   jitter: float) -> None:
        """Hold this process's requests to ``endpoint`` as the reply says, without Redis."""
        if limited:
            held = learn(None, reply, now, limited=True, ticket=None, jitter=jitter,
                         rules=self.rules)
            until = 0.0 if held is None else held.next_at
        elif reply.remaining == 0 and reply.reset_at is not None:
            until = min(reply.reset_at, now + self.rules.max_closure)
        else:
            return
        if until > self._holds.get(endpoint, 0.0):
            self._holds[endpoint] = until

    async def _learn_remote(self, endpoint: str, reply: RateLimit, now: float, limited: bool,
                            mine: tuple[str, int, int] | None, jitter: float,
                            window: str) -> None:
        try:
            what, _ = await self._learn(
                keys=[self._key("pace", endpoint), self._generations_key],
                args=_pacing.learn_args(reply, now, limited=limited, jitter=jitter,
                                        ticket=None if mine is None else mine[1:],
                                        window=window, rules=self.rules),
            )
        except FAILURES as exc:
            logger.warning("could not share rate-limit news through Redis (%s)",
                           type(exc).__name__,
                           extra={"sendgrid_ipam_event": "coordinator_unavailable"})
            return
        if int(what) != _UNCHANGED:
            self._wake(endpoint)

    def _learned(self, endpoint: str, task: asyncio.Task[None]) -> None:
        if self._learning.get(endpoint) is task:
            del self._learning[endpoint]

    async def _news_or(self, endpoint: str, delay: float) -> None:
        """Sleep ``delay`` seconds, or less if this process learns news of ``endpoint``."""
        news = self._news.get(endpoint)
        if news is None:
            news = self._news[endpoint] = asyncio.get_running_loop().create_future()
        sleeping = asyncio.ensure_future(asyncio.sleep(delay))
        try:
            await asyncio.wait((news, sleeping), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()

    def _wake(self, endpoint: str) -> None:
        news = self._news.pop(endpoint, None)
        if news is not None and not news.done():
            news.set_result(None)

    # ---------------------------------------------------------------- leases

    def lease(self, key: str, *, wait: float,
              deferred: bool = False) -> AbstractAsyncContextManager[Lease]:
        """Hold ``key`` across every process for the block, waiting at most ``wait`` s.

        ``deferred``: the block enters once this process's earlier holders of ``key`` are
        done, and the lease is taken in Redis by the block's first gate check, in the same
        round trip as its reservation (its token is 0 until then).

        Raises:
            RequestTimeoutError: not obtained within ``wait`` (nothing sent).
            CoordinatorUnavailableError: Redis cannot be reached (nothing sent).
        """
        return _RedisLease(self, key, wait, deferred)

    def _key(self, kind: str, key: str) -> str:
        return f"{self.namespace}:{kind}:{key}"

    def _lease_keys(self, key: str) -> list[str]:
        return [self._key("lease", key), self._key("token", key), self._key("want", key)]

    async def _take(self, lease: _RedisLease) -> None:
        key = lease.key
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _Queue()
        queue.users += 1
        lease.queued = True
        lease.deadline = asyncio.get_running_loop().time() + max(lease.wait, 0.0)
        try:
            try:
                async with asyncio.timeout_at(lease.deadline):
                    await queue.lock.acquire()
            except TimeoutError:
                raise _timed_out(key) from None
            lease.entered = True
            if lease.deferred:
                lease.pending = True
                _PENDING.set(lease)  # this task's requests take it (see wait_at_gate)
                return
            await self._take_remote(lease)
        except BaseException:
            self._leave(lease)
            raise

    async def _take_remote(self, lease: _RedisLease) -> None:
        """Take ``lease`` in Redis now, waiting for its holder (until its deadline)."""
        await self._released(lease.key)  # this process's last holding's release goes first
        try:
            lease.token = await self._acquire_remote(lease.key, lease.nonce, lease.deadline)
        except BaseException:
            # Cancelled, or Redis failed, after the script may have taken the key: free
            # it now rather than when its TTL runs out (nothing happens if it was not).
            self._spawn(self._release_remote(lease.key, lease.nonce, quiet=True))
            raise
        self._hold(lease)

    def _hold(self, lease: _RedisLease) -> None:
        """``lease`` was taken in Redis: renew it while held."""
        lease.pending = False
        lease.held = True
        lease.renewer = renewer = asyncio.get_running_loop().create_task(self._renew(lease))
        self._renewers.add(renewer)
        renewer.add_done_callback(self._renewers.discard)

    async def _acquire_remote(self, key: str, nonce: str, deadline: float) -> int:
        loop = asyncio.get_running_loop()
        keys = self._lease_keys(key)
        args: list[int | str] = [self._ttl_ms, self._id, _WANT_MS, nonce]
        poll = _FIRST_POLL
        task = asyncio.current_task()
        while True:
            if task is not None and task.cancelling():
                # A cancel that landed as one of redis-py's sends completed, which Python
                # 3.11's asyncio.wait_for swallows (CPython gh-86296): honoured here, or the
                # cancelled caller waits on until its deadline (_take_remote frees a key taken)
                raise asyncio.CancelledError
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

    def _give_back(self, lease: _RedisLease) -> None:
        """Release in Redis (if held) and hand on to this process's next waiter.

        The release is queued: this process's next reservation script carries it (no round
        trip of its own), or, after ``release_linger`` s, the background sends it. The
        holder does not wait for it (`aclose` does, and this process's next holder of the
        key, unless its own script carries it). A release that cannot reach Redis lets the
        TTL free the key; it goes on even if the holder is cancelled."""
        if lease.renewer is not None:
            lease.renewer.cancel()
            lease.renewer = None
        lease.pending = False
        lease.fresh = None
        if _PENDING.get() is lease:
            _PENDING.set(None)
        try:
            if lease.held:
                lease.held = False
                sent = asyncio.get_running_loop().create_future()
                self._releases[lease.key] = sent
                self._to_release.append((lease.key, lease.nonce, sent))
                if self._releaser is None:
                    self._releaser = self._spawn(self._release_all())
        finally:
            self._leave(lease)

    async def _release_all(self) -> None:
        """Send the releases given back meanwhile that no reservation script carried, after
        ``release_linger``; many in one round trip (a pipeline): under load one connection
        and one reply carry them all."""
        loop = asyncio.get_running_loop()
        try:
            while self._to_release:
                if self.release_linger > 0 and not self._hurried:
                    self._lingering = lingering = loop.create_future()
                    timer = loop.call_later(self.release_linger, _finish, lingering)
                    try:
                        await lingering
                    finally:
                        timer.cancel()
                        self._lingering = None
                batch, self._to_release = self._to_release, []
                self._hurried = False
                try:
                    if len(batch) == 1:
                        await self._release_remote(batch[0][0], batch[0][1])
                    else:
                        await self._release_many([(key, nonce) for key, nonce, _ in batch])
                finally:
                    self._sent(batch)
        finally:
            self._releaser = None
            self._hurried = False

    def _hurry(self) -> None:
        """Send the queued releases now, without lingering."""
        self._hurried = self._releaser is not None
        if self._lingering is not None:
            _finish(self._lingering)

    def _riding(self) -> list[tuple[str, str, asyncio.Future[None]]]:
        """Take the queued releases, for the reservation script about to be sent."""
        riding, self._to_release = self._to_release, []
        return riding

    def _sent(self, riding: list[tuple[str, str, asyncio.Future[None]]]) -> None:
        """The releases ``riding`` were sent (by a reservation script, before its own steps,
        or by the background): this process's next holders of their keys may go on."""
        for key, _, sent in riding:
            sent.set_result(None)
            if self._releases.get(key) is sent:
                del self._releases[key]

    def _unsent(self, riding: list[tuple[str, str, asyncio.Future[None]]]) -> None:
        """The script carrying ``riding`` failed or was cancelled, perhaps before it ran:
        the background sends them again, at once (a release only frees its own holding, so
        a second one is harmless); one that cannot reach Redis is logged there."""
        if not riding:
            return
        self._to_release[:0] = riding
        if self._releaser is None:
            self._releaser = self._spawn(self._release_all())
        self._hurry()

    async def _released_or_queued(self, key: str) -> None:
        """Wait for this process's last release of ``key`` if it is under way (one still
        queued goes in the script about to be sent, before that script's take)."""
        releasing = self._releases.get(key)
        if releasing is not None and not any(sent is releasing for _, _, sent in self._to_release):
            await asyncio.wait((releasing,))

    async def _released(self, key: str) -> None:
        """Wait for this process's last release of ``key`` to land (sent now if queued)."""
        releasing = self._releases.get(key)
        if releasing is not None:
            self._hurry()
            await asyncio.wait((releasing,))

    async def _release_many(self, leases: list[tuple[str, str]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for key, nonce in leases:
            pipe.evalsha(self._release.sha, 1, self._key("lease", key), nonce)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except FAILURES as exc:
            replies = [exc] * len(leases)
        for (key, nonce), reply in zip(leases, replies, strict=True):
            if isinstance(reply, NoScriptError):  # Redis restarted: the script loads again
                await self._release_remote(key, nonce)
            elif isinstance(reply, Exception):
                _release_failed(key, reply)

    async def _release_remote(self, key: str, nonce: str, *, quiet: bool = False) -> None:
        try:
            await self._release(keys=[self._key("lease", key)], args=[nonce])
        except FAILURES as exc:
            if not quiet:
                _release_failed(key, exc)

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
        self._hurry()  # queued releases go now
        # Until none is left unfinished (one may start another). Only unfinished ones are
        # awaited: a finished task leaves the set by a callback that runs on the loop's next
        # turn, and awaiting finished tasks never yields to it (a busy loop, seen on 3.12).
        while pending := [task for task in self._tasks if not task.done()]:
            await asyncio.gather(*pending, return_exceptions=True)
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
            await close(self.client)


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _release_failed(key: str, exc: BaseException) -> None:
    logger.warning("could not release the write lease on %r (%s): it frees itself when its "
                   "TTL runs out", key, type(exc).__name__,
                   extra={"sendgrid_ipam_event": "coordinator_unavailable"})


def _is_read(endpoint: str) -> bool:
    op = OPERATIONS.get(endpoint)
    return op is not None and op.method == "GET"


def _timed_out(key: str) -> RequestTimeoutError:
    return RequestTimeoutError(
        f"the call's deadline was reached waiting for the write lease on {key!r} "
        "(another write to it is in flight)", request_sent=False)
