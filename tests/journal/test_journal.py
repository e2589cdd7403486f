"""The Journal interface, over every backend: what a run records is what a rerun reads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from sendgrid_ipam.errors import SendGridError, ValidationError
from sendgrid_ipam.journal import (
    AccountState,
    ChunkState,
    Journal,
    JournalError,
    JournalMismatchError,
)
from tests.journal.conftest import JournalMaker

RUN = "run-2026-11-28"
IPS = ("192.0.2.1", "192.0.2.2", "192.0.2.3")


async def test_a_new_account_starts_with_its_target_and_nothing_else(journal: Journal) -> None:
    state = await journal.begin_account(RUN, "acct-1", region="eu", count=25)
    assert state == AccountState(RUN, "acct-1", "eu", 25)
    assert (state.marker_known, state.chunks, state.finished, state.obtained) == (
        False, (), False, (),
    )  # fmt: skip
    assert await journal.load(RUN) == {"acct-1": state}
    assert await journal.load("another-run") == {}


async def test_every_record_round_trips(journal: Journal) -> None:
    await journal.begin_account(RUN, "acct-1", region="us", count=3)
    await journal.record_marker(RUN, "acct-1", "198.51.100.7")
    await journal.record_intent(RUN, "acct-1", 0, 2)
    await journal.record_outcome(RUN, "acct-1", 0, IPS[:2])
    await journal.record_intent(RUN, "acct-1", 1, 1)
    await journal.record_ambiguous(RUN, "acct-1", at=1_800_000_000.5)
    await journal.record_ambiguous(RUN, "acct-1", at=1_800_000_003.25)
    state = (await journal.load(RUN))["acct-1"]
    assert (state.marker_known, state.marker) == (True, "198.51.100.7")
    assert state.chunks == (ChunkState(0, 2, IPS[:2]), ChunkState(1, 1, None))
    assert state.open_chunks == (ChunkState(1, 1, None),)
    assert state.obtained == IPS[:2]
    assert state.ambiguous_at == (1_800_000_000.5, 1_800_000_003.25)
    assert state.last_ambiguous_at == 1_800_000_003.25
    assert not state.finished

    await journal.record_outcome(RUN, "acct-1", 1, IPS[2:])
    await journal.finish_account(RUN, "acct-1", IPS)
    await journal.record_excess(RUN, "acct-1", ["203.0.113.9", "203.0.113.8"])
    await journal.record_released(RUN, "acct-1", ["203.0.113.9"])
    state = (await journal.load(RUN))["acct-1"]
    assert (state.finished, state.final_ips, state.obtained) == (True, IPS, IPS)
    assert (state.excess, state.released) == (("203.0.113.9", "203.0.113.8"), ("203.0.113.9",))
    # begin_account on a known account hands back what is stored
    assert await journal.begin_account(RUN, "acct-1", region="us", count=3) == state


async def test_a_marker_of_none_is_not_an_unknown_marker(journal: Journal) -> None:
    await journal.begin_account(RUN, "empty", region="us", count=1)
    await journal.begin_account(RUN, "unknown", region="us", count=1)
    await journal.record_marker(RUN, "empty", None)
    states = await journal.load(RUN)
    assert (states["empty"].marker_known, states["empty"].marker) == (True, None)
    assert (states["unknown"].marker_known, states["unknown"].marker) == (False, None)
    with pytest.raises(JournalMismatchError, match="marker None"):
        await journal.record_marker(RUN, "empty", "192.0.2.1")


async def test_repeating_a_record_is_harmless(journal: Journal) -> None:
    for _ in range(2):
        await journal.begin_account(RUN, "acct-1", region="us", count=2)
        await journal.record_marker(RUN, "acct-1", None)
        await journal.record_intent(RUN, "acct-1", 0, 2)
        await journal.record_outcome(RUN, "acct-1", 0, IPS[:2])
        await journal.finish_account(RUN, "acct-1", IPS[:2])
        await journal.record_excess(RUN, "acct-1", IPS[2:])
    state = (await journal.load(RUN))["acct-1"]
    assert state.chunks == (ChunkState(0, 2, IPS[:2]),)
    assert (state.final_ips, state.excess) == (IPS[:2], IPS[2:])


async def test_another_target_for_an_account_is_refused(journal: Journal) -> None:
    await journal.begin_account(RUN, "acct-1", region="us", count=12)
    with pytest.raises(JournalMismatchError, match=r"12 IPs in 'us'.*13 in 'us'") as caught:
        await journal.begin_account(RUN, "acct-1", region="us", count=13)
    assert isinstance(caught.value, JournalError)
    assert isinstance(caught.value, SendGridError)
    with pytest.raises(JournalMismatchError, match="'eu'"):
        await journal.begin_account(RUN, "acct-1", region="eu", count=12)
    # another run may want anything
    await journal.begin_account("another-run", "acct-1", region="eu", count=1)
    assert (await journal.load(RUN))["acct-1"].count == 12


async def test_records_that_contradict_the_stored_ones_are_refused(journal: Journal) -> None:
    await journal.begin_account(RUN, "acct-1", region="us", count=3)
    await journal.record_marker(RUN, "acct-1", "192.0.2.200")
    await journal.record_intent(RUN, "acct-1", 0, 2)
    with pytest.raises(JournalMismatchError, match="size 2, not 3"):
        await journal.record_intent(RUN, "acct-1", 0, 3)
    await journal.record_outcome(RUN, "acct-1", 0, IPS[:2])
    with pytest.raises(JournalMismatchError, match="other IPs"):
        await journal.record_outcome(RUN, "acct-1", 0, IPS[1:])
    with pytest.raises(JournalMismatchError, match=r"marker '192\.0\.2\.200'"):
        await journal.record_marker(RUN, "acct-1", None)
    await journal.finish_account(RUN, "acct-1", IPS[:2])
    for late_record in (
        journal.record_intent(RUN, "acct-1", 1, 1),
        journal.finish_account(RUN, "acct-1", IPS),
    ):
        with pytest.raises(JournalMismatchError, match="finished"):
            await late_record
    # nothing refused was stored, and the audit may still write after the finish
    await journal.record_ambiguous(RUN, "acct-1", at=5.0)
    state = (await journal.load(RUN))["acct-1"]
    assert state.chunks == (ChunkState(0, 2, IPS[:2]),)
    assert (state.final_ips, state.ambiguous_at) == (IPS[:2], (5.0,))


async def test_records_out_of_order_are_refused(journal: Journal) -> None:
    with pytest.raises(JournalError, match="begin_account"):
        await journal.record_intent(RUN, "nobody", 0, 1)
    await journal.begin_account(RUN, "acct-1", region="us", count=1)
    with pytest.raises(JournalError, match="no intent"):
        await journal.record_outcome(RUN, "acct-1", 4, IPS[:1])
    assert await journal.load(RUN) == {"acct-1": AccountState(RUN, "acct-1", "us", 1)}


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda j: j.begin_account(RUN, 42, region="us", count=1), "account_id"),
        (lambda j: j.begin_account("", "a", region="us", count=1), "run_id"),
        (lambda j: j.begin_account("r\n1", "a", region="us", count=1), "run_id"),
        (lambda j: j.begin_account(RUN, "a" * 257, region="us", count=1), "account_id"),
        (lambda j: j.begin_account(RUN, "a", region="", count=1), "region"),
        (lambda j: j.begin_account(RUN, "a", region="us", count=0), "count"),
        (lambda j: j.begin_account(RUN, "a", region="us", count=True), "count"),
        (lambda j: j.begin_account(RUN, "a", region="us", count=2.0), "count"),
        (lambda j: j.record_marker(RUN, "a", "not-an-ip"), "marker"),
        (lambda j: j.record_intent(RUN, "a", -1, 1), "chunk"),
        (lambda j: j.record_intent(RUN, "a", 0, 0), "size"),
        (lambda j: j.record_outcome(RUN, "a", 0, "192.0.2.1"), "ips"),
        (lambda j: j.record_outcome(RUN, "a", 0, ["192.0.2.1", 7]), "ips[1]"),
        (lambda j: j.finish_account(RUN, "a", ["192.0.2.300"]), "ips[0]"),
        (lambda j: j.record_ambiguous(RUN, "a", at=float("nan")), "at"),
        (lambda j: j.record_ambiguous(RUN, "a", at="now"), "at"),
        (lambda j: j.load(None), "run_id"),
    ],
)
async def test_bad_values_raise_a_validation_error_naming_the_field(
    journal: Journal, call: Any, field: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        await call(journal)
    assert caught.value.field == field
    assert await journal.load(RUN) == {}


async def test_records_survive_closing_and_reopening(make_journal: JournalMaker) -> None:
    async with make_journal() as journal:
        await journal.begin_account(RUN, "acct-1", region="us", count=2)
        await journal.record_marker(RUN, "acct-1", None)
        await journal.record_intent(RUN, "acct-1", 0, 2)
        before = await journal.load(RUN)
    assert not journal.is_open
    async with make_journal() as reopened:
        assert await reopened.load(RUN) == before
        await reopened.record_outcome(RUN, "acct-1", 0, IPS[:2])
        with pytest.raises(JournalMismatchError):
            await reopened.begin_account(RUN, "acct-1", region="us", count=3)
    async with make_journal() as again:
        assert (await again.load(RUN))["acct-1"].obtained == IPS[:2]


async def test_a_journal_that_is_not_open_refuses_every_call(make_journal: JournalMaker) -> None:
    journal = make_journal()
    assert not journal.is_open
    with pytest.raises(JournalError, match="not open"):
        await journal.begin_account(RUN, "acct-1", region="us", count=1)
    assert await journal.open() is journal
    assert await journal.open() is journal  # opening twice is harmless
    await journal.begin_account(RUN, "acct-1", region="us", count=1)
    await journal.close()
    await journal.close()
    with pytest.raises(JournalError, match="not open"):
        await journal.load(RUN)


async def test_many_tasks_write_at_once_and_every_record_lands(
    make_journal: JournalMaker,
) -> None:
    async def one_account(journal: Journal, index: int) -> None:
        account = f"acct-{index}"
        ips = [f"198.18.{index}.1", f"198.18.{index}.2"]
        await journal.begin_account(RUN, account, region="us", count=2)
        await journal.record_marker(RUN, account, None if index % 2 else f"192.0.2.{index}")
        await journal.record_intent(RUN, account, 0, 2)
        await journal.record_outcome(RUN, account, 0, ips)
        await journal.finish_account(RUN, account, ips)

    async with make_journal() as journal:
        await asyncio.gather(*(one_account(journal, index) for index in range(200)))
        # a contradicting record among many good ones fails alone
        results = await asyncio.gather(
            journal.begin_account(RUN, "acct-3", region="eu", count=2),
            *(journal.begin_account(RUN, f"new-{n}", region="us", count=1) for n in range(20)),
            return_exceptions=True,
        )
        assert isinstance(results[0], JournalMismatchError)
        assert all(isinstance(result, AccountState) for result in results[1:])
    async with make_journal() as reopened:
        states = await reopened.load(RUN)
    assert len(states) == 220
    for index in range(200):
        state = states[f"acct-{index}"]
        assert state.finished
        assert state.final_ips == (f"198.18.{index}.1", f"198.18.{index}.2")
        assert state.marker == (None if index % 2 else f"192.0.2.{index}")


async def test_a_cancelled_caller_does_not_lose_or_break_the_journal(journal: Journal) -> None:
    await journal.begin_account(RUN, "acct-1", region="us", count=1)
    writes = [
        asyncio.create_task(journal.record_ambiguous(RUN, "acct-1", at=float(n)))
        for n in range(10)
    ]
    writes[4].cancel()
    await asyncio.gather(*writes, return_exceptions=True)
    await journal.record_ambiguous(RUN, "acct-1", at=99.0)
    moments = (await journal.load(RUN))["acct-1"].ambiguous_at
    assert moments[-1] == 99.0
    assert {0.0, 1.0, 2.0, 3.0, 5.0, 6.0, 7.0, 8.0, 9.0} <= set(moments)
