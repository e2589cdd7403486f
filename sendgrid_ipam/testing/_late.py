"""Late writes: requests answered with a failure whose write takes effect seconds afterwards.

Each pending write is a timer on the event loop, not a task, so a fake that is never closed
leaves nothing behind that could warn; closing the fake lands every pending write at once, as
a backend that finishes its work although the gateway in front of it gave up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class LateWrites:
    """The late writes not landed yet, and the tasks waiting for them all to land."""

    def __init__(self) -> None:
        self._pending: dict[int, tuple[asyncio.TimerHandle, Callable[[], None]]] = {}
        self._next_key = 0
        # Futures rather than an asyncio.Event: an Event binds to the first loop that waits
        # on it, and a fake may outlive one test's loop.
        self._waiters: list[asyncio.Future[None]] = []

    def __len__(self) -> int:
        return len(self._pending)

    def schedule(self, delay: float, land: Callable[[], None]) -> None:
        """Call `land` in `delay` seconds (from the running loop)."""
        key = self._next_key
        self._next_key += 1
        handle = asyncio.get_running_loop().call_later(delay, self._land, key)
        self._pending[key] = (handle, land)

    def land_all(self) -> int:
        """Land every pending write now, in the order their timers would have fired."""
        keys = sorted(self._pending, key=lambda key: self._pending[key][0].when())
        for key in keys:
            self._pending[key][0].cancel()
            self._land(key)
        return len(keys)

    async def settle(self) -> None:
        """Return once no write is pending (at once if none is)."""
        if self._pending:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _land(self, key: int) -> None:
        _, land = self._pending.pop(key)
        try:
            land()
        finally:
            if not self._pending:
                waiters, self._waiters = self._waiters, []
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)
