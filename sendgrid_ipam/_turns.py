"""Turns: a bulk run's concurrency counts the accounts at work, not those waiting.

A bulk run of ``concurrency`` N lets N accounts work at once. An account that waits — out a
retry's backoff, a settle before a check, its endpoint's pace — gives its turn up for the
wait, so that another account can send meanwhile, and takes a turn again before it goes on.
So waits do not leave the run's concurrency idle, and no more than N accounts are ever
sending at once. (How many accounts may be under way, working or waiting, is the bulk
run's to bound.)

The turn rides in a context variable of the account's task, so the waits of the calls it
makes (whose tasks copy that context) find it, and nothing else passes it along. Outside a
bulk run there is no turn, and a wait is a plain wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

_T = TypeVar("_T")

__all__ = ["Turn", "idle", "over", "without_turn"]


class Turn:
    """One account's turn among the ``concurrency`` at work (``async with`` holds it)."""

    __slots__ = ("closed", "held", "turns")

    def __init__(self, turns: asyncio.Semaphore) -> None:
        self.turns = turns
        self.held = False
        self.closed = False  # the account is done: nothing takes a turn for it again

    async def __aenter__(self) -> Turn:
        await self.turns.acquire()
        self.held = True
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.closed = True
        self.give_up()

    def close(self) -> None:
        """The account's work is over (what is left is waiting): give the turn up for good."""
        self.closed = True
        self.give_up()

    def give_up(self) -> bool:
        """Give the turn up (for a wait); True if it was held."""
        if not self.held:
            return False
        self.held = False
        self.turns.release()
        return True

    async def take_again(self) -> None:
        """Take a turn again after a wait (unless the account is done meanwhile)."""
        if self.closed:
            return
        await self.turns.acquire()
        if self.closed:  # (a task of the account's outlived it)
            self.turns.release()
            return
        self.held = True


CURRENT: contextvars.ContextVar[Turn | None] = contextvars.ContextVar(
    "sendgrid_ipam_turn", default=None)


@contextlib.asynccontextmanager
async def idle() -> AsyncIterator[None]:
    """Wait in the block without the task's turn, if it has one."""
    turn = CURRENT.get()
    if turn is None or not turn.give_up():
        yield
        return
    yield  # a wait cut short (cancelled) takes no turn again: its task is ending
    await turn.take_again()


def over() -> None:
    """The task's account needs no turn again (what is left of it is waiting): give its turn,
    if it has one, up for good."""
    turn = CURRENT.get()
    if turn is not None:
        turn.close()


async def without_turn(awaitable: Awaitable[_T]) -> _T:
    """Await `awaitable` without the task's turn, if it has one: `idle` in one coroutine,
    for a wait on a hot path (as there, a wait that raised takes no turn again)."""
    turn = CURRENT.get()
    if turn is None or not turn.give_up():
        return await awaitable
    result = await awaitable
    await turn.take_again()
    return result
