"""How many requests may be in flight: a semaphore whose free path does not await."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

__all__ = ["Slots"]


class Slots:
    """A counting semaphore for requests in flight.

    A slot given back goes straight to the longest waiter, so no newcomer can overtake it.
    The engine inlines `try_take` and `give` on its hot path; keep them in step.
    """

    __slots__ = ("free", "waiters")

    def __init__(self, size: int) -> None:
        self.free: int = size
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

    def owe(self) -> None:
        """For a holder that gave its slot back early and will give it back once more (in
        a ``finally``, with no await in between): that give-back frees nothing. A claim at
        the head of the queue receives it."""
        self.waiters.appendleft(asyncio.get_running_loop().create_future())

    def give(self) -> None:
        """Give a slot back (to the first waiter still waiting, if any)."""
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.free += 1
