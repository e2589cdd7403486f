"""The retry budget shared through Redis, spent synchronously from a local reserve.

tenacity decides whether to retry synchronously, so a retry cannot wait for Redis. Each
process therefore holds a small *reserve* of retries taken from the shared balance, spends
from it without a round trip, and tops it up (and hands in the credit its successful calls
earned) in the round trip it already makes before each request: the gate check
(``_scripts.GATE``). A process's first request reserves before anything can fail, so its
first failure finds retries in hand. The price: at most ``batch`` retries per process sit in
reserves, not in the shared balance, and a burst of failures in one process can find its
reserve empty until its next request tops it up (those calls end with their error, as when
the budget is exhausted). `RedisCoordinator.aclose` hands the unspent reserve back.
"""

from __future__ import annotations

from ..retry import RetryBudget

__all__ = ["SharedRetryBudget"]


class SharedRetryBudget(RetryBudget):
    """A `RetryBudget` whose balance lives in Redis; ``available`` is this process's reserve.

    Args:
        capacity: the shared balance's ceiling (retries), as `RetryBudget`.
        refill: retries credited per successful call, as `RetryBudget`.
        batch: how many retries one process reserves at a time (at least 1).
    """

    def __init__(self, capacity: float = 100.0, refill: float = 0.2, batch: int = 10) -> None:
        super().__init__(capacity, refill)
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ValueError("batch must be an integer of at least 1")
        self.batch = batch
        self.available: float = 0.0  # nothing reserved until the first round trip
        self.credit: float = 0.0  # earned by successful calls, not yet handed in
        self.shared: float | None = None  # the shared balance when last seen

    def on_success(self) -> None:
        """Credit a successful call (handed in with the next gate check)."""
        if self.shared is None or self.shared < self.capacity:
            self.credit += self.refill

    def wanted(self) -> int:
        """Retries to reserve in the next round trip (0 while the reserve is over half full)."""
        return 0 if self.available * 2 > self.batch else self.batch - int(self.available)

    def settled(self, credit: float, reserved: int, shared: float | None) -> None:
        """Record a round trip that handed in ``credit`` and reserved ``reserved``."""
        self.credit -= credit
        self.available += reserved
        if shared is not None:
            self.shared = shared

    def __repr__(self) -> str:
        shared = "?" if self.shared is None else f"{self.shared:g}"
        return (f"SharedRetryBudget(reserve={self.available:g}, shared={shared}, "
                f"capacity={self.capacity:g})")
