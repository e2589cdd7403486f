"""Turns of a bulk run: a waiting account gives its turn up, and never keeps one after it is
done (nothing here sleeps: waits are events the test sets)."""

from __future__ import annotations

import asyncio

from sendgrid_ipam._turns import CURRENT, Turn, idle


async def test_a_wait_gives_the_turn_to_another_and_takes_one_again_after() -> None:
    turns = asyncio.Semaphore(1)
    order: list[str] = []
    go_on = asyncio.Event()

    async def waiter() -> None:
        async with Turn(turns) as turn:
            CURRENT.set(turn)
            order.append("waiter works")
            async with idle():
                await go_on.wait()
            order.append("waiter works again")

    async def other() -> None:
        await asyncio.sleep(0)  # the waiter takes the only turn first
        async with Turn(turns):
            order.append("other works")
            go_on.set()
            await asyncio.sleep(0)
            order.append("other done")

    await asyncio.gather(waiter(), other())
    assert order == ["waiter works", "other works", "other done", "waiter works again"]
    assert not turns.locked()


async def test_a_task_outliving_its_account_takes_no_turn() -> None:
    turns = asyncio.Semaphore(1)
    go_on = asyncio.Event()
    late: asyncio.Task[None] | None = None

    async def lingering() -> None:
        async with idle():
            await go_on.wait()

    async with Turn(turns) as turn:
        CURRENT.set(turn)
        late = asyncio.create_task(lingering())  # copies the context: it sees the turn
        await asyncio.sleep(0)
        assert not turns.locked(), "its wait gave the account's turn up"
        CURRENT.set(None)
    go_on.set()
    await late
    assert not turns.locked(), "the account is done: no turn is taken for it again"


async def test_without_a_turn_a_wait_is_a_plain_wait() -> None:
    async with idle():
        await asyncio.sleep(0)
    assert CURRENT.get() is None
