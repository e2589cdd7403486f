"""The coordination interface: the state that the calls of one client (or of many) share.

Three things are shared:

- the **rate-limit gate**: requests wait while SendGrid has said an endpoint's window is
  closed (a 429, or ``X-RateLimit-Remaining: 0``);
- the **retry budget**: a client-wide allowance of retries, so a dead upstream is not hammered;
- **write leases**: a write whose safety rests on reconciliation (the check "did my failed
  write take effect?") holds a lease on what that check reads — an account, a pool name, the
  IP Address Management account — for its whole span, so that no other writer's work can
  look like its own.

A lease has a *token* that grows by one each time its key is taken. A holder that knows the
token it held last can tell whether anyone else wrote in between (a bulk run uses it to keep
its marker across chunks). A lease may be *lost* (its time-to-live ran out in a long pause,
or a shared store failed over); `Lease.check` raises `LeaseLostError` then, and the engine
checks before every write it sends.

Methods that may need a round trip to a shared store are async; the gate also has a cheap
synchronous `Coordinator.gate_open` so that the in-process default costs nothing on the
happy path, and the retry budget is synchronous (see `Coordinator.budget`).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager

from ..errors import SendGridError
from ..retry import RetryBudget

__all__ = ["Coordinator", "CoordinatorUnavailableError", "Lease", "LeaseBusy", "LeaseLostError"]


class LeaseLostError(SendGridError):
    """A write lease ran out or was taken over before the write was sent; nothing was sent."""


class CoordinatorUnavailableError(LeaseLostError):
    """The shared store behind a coordinator (Redis) could not be reached or failed, so the
    request that needed it was not sent.

    A write that cannot take or confirm its lease is treated as one that lost it (hence a
    `LeaseLostError`): nothing more is sent, and if an earlier attempt of the call failed
    ambiguously the call ends with `AmbiguousResultError`, as no check can run safely. A read
    raises it when the shared rate-limit gate cannot be consulted, unless the coordinator
    was told to let reads go without it.
    """

    request_sent = False
    """Always False: the request this error stopped was never sent."""


class LeaseBusy(Exception):
    """`Coordinator.wait_at_gate` was to take a deferred lease with the request's gate check,
    and another holder has it: nothing was reserved, nothing may be sent yet.

    The engine does not wait for the lease holding a connection slot: it hands the slot
    back, awaits ``lease.check()`` (which takes a deferred lease, waiting its turn, within
    the call's deadline), then takes a slot and passes the gate again. Never reaches a
    caller of the client.
    """

    def __init__(self, lease: Lease) -> None:
        super().__init__(f"the write lease on {lease.key!r} is held by another holder")
        self.lease: Lease = lease
        """The deferred lease to take before the request can go."""


class Lease(abc.ABC):
    """One holder's claim on a key; obtained from `Coordinator.lease`."""

    key: str
    """What the lease covers (e.g. ``account:acct-1``)."""
    token: int
    """Grows by one each time the key is taken: the fencing token of this holding (0 while
    a deferred lease is not yet taken; see `Coordinator.lease`)."""
    losable: bool = True
    """Whether the lease can be lost while held (False: `check` need not be awaited)."""

    def release_now(self) -> None:  # noqa: B027 (only for leases from try_lease)
        """Release a lease taken with `Coordinator.try_lease` (no round trip needed)."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Raise `LeaseLostError` if this lease is no longer held (call before each write)."""


class Coordinator(abc.ABC):
    """The state calls share: rate-limit gate, retry budget and write leases."""

    lease_ttl: float = 30.0
    """Seconds a lease lives unless renewed (a holder renews it while it works)."""

    # ---------------------------------------------------------------- rate-limit gate

    quiet: bool = False
    plenty: int | None = None
    """While `quiet`: a reply whose ``X-RateLimit-Remaining`` is above this carries no news,
    and the engine need not call `observe` for it (None: every such reply is news)."""
    """True only while no gate can hold a request, so the engine may skip `gate_open`
    (a fast path: an implementation that cannot know keeps it False)."""

    @abc.abstractmethod
    def gate_open(self, endpoint: str) -> bool:
        """True when a request to ``endpoint`` may go now without awaiting (cheap)."""

    @abc.abstractmethod
    async def wait_at_gate(self, endpoint: str, *, within: float,
                           lease: Lease | None = None) -> float:
        """Wait until ``endpoint`` may be called; returns the seconds waited.

        ``lease`` is the write lease the request will be sent under: a shared coordinator
        may confirm it (or take it, if deferred) in the same round trip as the gate, so
        that the `Lease.check` the engine makes right after needs none. ``within`` bounds
        the wait for the endpoint's pace only: a deferred lease that another holder has is
        not waited for here (`LeaseBusy`).

        Raises:
            RateLimitError: the window stays closed longer than ``within`` seconds.
            LeaseLostError: ``lease`` is no longer held (nothing may be sent under it).
            LeaseBusy: the deferred lease to take is another holder's (nothing reserved).
        """

    @abc.abstractmethod
    def observe(self, endpoint: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from a reply that carries rate-limit news (a 429 or no requests left)."""

    def unanswered(self, endpoint: str) -> None:  # noqa: B027 (optional: see below)
        """This task's last request to ``endpoint`` failed without rate-limit news (its
        connection was lost, or its reply carried no rate-limit headers).

        If it was the probe others wait for, they need not wait out the probe's timeout:
        the next request probes at once. (A coordinator that does not implement it leaves
        them to the timeout.)
        """

    # ---------------------------------------------------------------- retry budget

    budget: RetryBudget
    """The retry budget. Its methods are synchronous (tenacity's stop decision is): a shared
    implementation keeps a local allowance that it reserves from the shared store in batches."""

    # ---------------------------------------------------------------- write leases

    @abc.abstractmethod
    def lease(
        self, key: str, *, wait: float, deferred: bool = False
    ) -> AbstractAsyncContextManager[Lease]:
        """Hold the lease on ``key`` for the ``async with`` block.

        Waits its turn behind other holders, at most ``wait`` seconds.

        Args:
            key: what the lease guards: an account, a pool name, the IPAM account.
            wait: the most seconds to wait for it (what is left of the call's deadline).
            deferred: the holder sends every request under it through the engine (so each
                passes `wait_at_gate` and `Lease.check` first) and needs its token only
                afterwards: a shared coordinator may then take it together with the first
                request's gate check (one round trip for both), the block entering once
                the holders before it in this process are done. Until then its token is
                0; `Lease.check` takes it at once.

        Raises:
            RequestTimeoutError: the lease was not obtained within ``wait`` (nothing sent).
        """

    def try_lease(self, key: str) -> Lease | None:
        """The lease on ``key`` at once if it is free and can be taken without waiting or a
        round trip (an uncontended in-process lease), else None: then use `lease`.

        A lease taken this way is released with ``release_now``.

        Args:
            key: what the lease guards, as for `lease`.
        """
        return None

    async def aclose(self) -> None:  # noqa: B027 (optional: most coordinators hold nothing)
        """Release what the coordinator holds (connections); the in-process one holds none."""
