"""Several records in one step, many accounts begun at once, and other runs' unfinished
accounts, over every backend."""

from __future__ import annotations

import pytest

from sendgrid_ipam.errors import ValidationError
from sendgrid_ipam.journal import ChunkState, Journal, JournalMismatchError
from sendgrid_ipam.journal.base import Finish, Intent, Marker, Outcome
from tests.journal.conftest import JournalMaker

RUN = "run-batches"
IPS = ("192.0.2.1", "192.0.2.2")


async def test_record_all_applies_records_in_order(journal: Journal) -> None:
    await journal.begin_account(RUN, "acct-1", region="us", count=12)
    await journal.record_all(RUN, "acct-1", [Marker(None), Intent(0, 10), Intent(1, 2)])
    await journal.record_all(RUN, "acct-1", [Outcome(0, IPS), Outcome(1, ()), Finish(IPS)])

    state = (await journal.load(RUN))["acct-1"]
    assert (state.marker_known, state.marker) == (True, None)
    assert [(c.number, c.size, c.ips) for c in state.chunks] == [(0, 10, IPS), (1, 2, ())]
    assert state.finished
    assert state.final_ips == IPS


async def test_record_all_stores_nothing_when_one_record_is_refused(journal: Journal) -> None:
    await journal.begin_account(RUN, "acct-1", region="us", count=12)
    await journal.record_intent(RUN, "acct-1", 0, 10)

    with pytest.raises(JournalMismatchError, match="size 10, not 3"):
        await journal.record_all(RUN, "acct-1", [Marker("192.0.2.9"), Intent(0, 3)])

    state = (await journal.load(RUN))["acct-1"]
    assert not state.marker_known, "the marker of the refused step is not stored"


async def test_record_all_validates_every_record(journal: Journal) -> None:
    await journal.begin_account(RUN, "acct-1", region="us", count=1)
    with pytest.raises(ValidationError, match=r"records\[1\]\.ips\[0\]"):
        await journal.record_all(RUN, "acct-1", [Intent(0, 1), Outcome(0, ("not-an-ip",))])
    with pytest.raises(ValidationError, match=r"records\[0\]\.size"):
        await journal.record_all(RUN, "acct-1", [Intent(0, 0)])
    with pytest.raises(ValidationError, match=r"records\[0\]"):
        await journal.record_all(RUN, "acct-1", ["intent"])  # type: ignore[list-item]
    assert (await journal.load(RUN))["acct-1"].chunks == ()


async def test_begin_accounts_begins_all_or_none(journal: Journal) -> None:
    await journal.begin_accounts(RUN, [("acct-1", "us", 3), ("acct-2", "eu", 12)])
    states = await journal.load(RUN)
    assert {a: (s.region, s.count) for a, s in states.items()} == {
        "acct-1": ("us", 3), "acct-2": ("eu", 12)}

    await journal.begin_accounts(RUN, [("acct-1", "us", 3)])  # repeating is harmless
    with pytest.raises(JournalMismatchError, match="acct-2"):
        await journal.begin_accounts(RUN, [("acct-3", "us", 1), ("acct-2", "eu", 13)])
    assert "acct-3" not in await journal.load(RUN)


async def test_unfinished_elsewhere_names_other_runs_unfinished_accounts(
    journal: Journal,
) -> None:
    await journal.begin_accounts("old", [("acct-1", "us", 1), ("acct-2", "us", 1)])
    await journal.finish_account("old", "acct-2", ["192.0.2.7"])
    await journal.begin_accounts(RUN, [("acct-3", "us", 1)])

    assert await journal.unfinished_elsewhere(RUN, ["acct-1", "acct-2", "acct-3"]) == {
        "acct-1": "old"}
    assert await journal.unfinished_elsewhere("old", ["acct-1", "acct-3"]) == {"acct-3": RUN}
    assert await journal.unfinished_elsewhere(RUN, []) == {}


async def test_ips_of_any_form_round_trip(journal: Journal) -> None:
    ips = ("192.0.2.1", "2001:db8::1", 'fe80::1%"zone\\1', "fe80::2%eth0")
    await journal.begin_account(RUN, "acct-1", region="us", count=4)
    await journal.record_all(RUN, "acct-1", [Intent(0, 4), Outcome(0, ips), Finish(ips)])
    state = (await journal.load(RUN))["acct-1"]
    assert state.obtained == ips
    assert state.final_ips == ips


@pytest.mark.parametrize("ips", [["192.0.2.1,192.0.2.2"], ["192.0.2.1", "192.0.2.256"],
                                 ["192.0.2.1", ""], ["192.0.2.1\n192.0.2.2"]])
async def test_a_list_of_ips_is_checked_ip_by_ip(journal: Journal, ips: list[str]) -> None:
    await journal.begin_account(RUN, "acct-1", region="us", count=2)
    await journal.record_intent(RUN, "acct-1", 0, 2)
    with pytest.raises(ValidationError, match=r"ips\[\d\]"):
        await journal.record_outcome(RUN, "acct-1", 0, ips)


async def test_record_many_answers_each_step_on_its_own(journal: Journal) -> None:
    await journal.begin_accounts(RUN, [("acct-1", "us", 2), ("acct-2", "us", 2)])
    await journal.record_intent(RUN, "acct-2", 0, 2)

    errors = await journal.record_many(RUN, [
        ("acct-1", [Marker(None), Intent(0, 2)]),
        ("acct-2", [Marker("192.0.2.1"), Intent(0, 1)]),  # another size: refused whole
        ("acct-3", [Marker(None)]),  # never begun
        ("acct-1", [Outcome(0, ("bad",))]),  # invalid
        ("acct-1", [Outcome(0, IPS), Finish(IPS)]),
    ])

    assert [type(e).__name__ if e else None for e in errors] == [
        None, "JournalMismatchError", "JournalError", "ValidationError", None]
    states = await journal.load(RUN)
    assert states["acct-1"].finished
    assert states["acct-1"].final_ips == IPS
    assert not states["acct-2"].marker_known
    assert "acct-3" not in states


async def test_steps_written_behind_are_stored_and_synced(make_journal: JournalMaker) -> None:
    """durable=False: stored once the call returns (another opening of the store reads them),
    refused like any other step, and `sync` answers once they are durable."""
    async with make_journal() as journal:
        await journal.begin_accounts(RUN, [("acct-1", "us", 2), ("acct-2", "us", 2)])
        await journal.record_many(RUN, [("acct-1", [Marker(None), Intent(0, 2)]),
                                        ("acct-2", [Marker(None), Intent(0, 2)])])
        errors = await journal.record_many(RUN, [
            ("acct-1", [Outcome(0, IPS), Finish(IPS)]),
            ("acct-2", [Intent(0, 3)]),
        ], durable=False)
        assert errors[0] is None
        assert isinstance(errors[1], JournalMismatchError)
        async with make_journal() as other:  # another connection sees them: committed
            state = (await other.load(RUN))["acct-1"]
            assert (state.finished, state.final_ips) == (True, IPS)
        await journal.sync()
    async with make_journal() as reopened:
        states = await reopened.load(RUN)
    assert states["acct-1"].chunks == (ChunkState(0, 2, IPS),)
    assert states["acct-2"].chunks == (ChunkState(0, 2, None),)


async def test_a_record_is_checked_against_what_another_writer_stored(
    make_journal: JournalMaker,
) -> None:
    """Two journals on one store (two processes, say): each checks against the store as it
    is, not against what it read or wrote before."""
    async with make_journal() as first, make_journal() as second:
        await first.begin_account(RUN, "acct-1", region="us", count=12)
        await first.record_marker(RUN, "acct-1", None)
        await second.record_intent(RUN, "acct-1", 0, 10)  # unknown to `first` so far
        with pytest.raises(JournalMismatchError, match="size 10, not 3"):
            await first.record_intent(RUN, "acct-1", 0, 3)
        await first.record_outcome(RUN, "acct-1", 0, IPS)  # its intent is the other's
        with pytest.raises(JournalMismatchError, match="other IPs"):
            await second.record_outcome(RUN, "acct-1", 0, IPS[:1])
        await second.finish_account(RUN, "acct-1", IPS)
        assert (await first.unfinished_elsewhere("run-other", ["acct-1"])) == {}
        assert (await first.load(RUN))["acct-1"].final_ips == IPS
