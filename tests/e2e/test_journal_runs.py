"""Bulk runs with a journal, end to end against the fake: resume, refusals, torn runs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from sendgrid_ipam import (
    BulkProgress,
    ProvisionRequest,
    RetryPolicy,
    SendGridIPAM,
    ValidationError,
)
from sendgrid_ipam.journal import JournalError, JournalMismatchError, SQLiteJournal
from sendgrid_ipam.testing import FakeSendGrid, Fault

KEY = "SG.e2e-journal"
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.02)
ACCOUNTS = [f"acct-{n}" for n in range(1, 7)]
DELAY = 0.05  # the audit delay: late writes in these tests land at once or not at all


@pytest.fixture
async def fake() -> AsyncIterator[FakeSendGrid]:
    async with FakeSendGrid(api_key=KEY, accounts=ACCOUNTS, seed=5) as server:
        yield server


@pytest.fixture
async def sg(fake: FakeSendGrid) -> AsyncIterator[SendGridIPAM]:
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as client:
        yield client


def requests(count: int = 12) -> list[ProvisionRequest]:
    return [ProvisionRequest(a, count, "us") for a in ACCOUNTS[:3]]


async def test_a_journaled_run_records_every_account_finished(
    fake: FakeSendGrid, sg: SendGridIPAM, tmp_path: Path
) -> None:
    path = tmp_path / "run.journal"
    fake.script("AddAccountIps", Fault.error(500), account_id="acct-2")  # resent: may land
    result = await sg.provisioning.bulk_add_ips(requests(), journal=path, audit_delay=DELAY)

    assert result.failed == ()
    assert result.run_id is not None
    assert result.run_id.startswith("run-")
    async with SQLiteJournal(path) as journal:
        states = await journal.load(result.run_id)
    for account in result.results:
        state = states[account.account_id]
        assert state.finished
        assert sorted(state.final_ips) == sorted(account.ips) == sorted(
            fake.account_ips(account.account_id))
        assert state.marker_known
        assert state.marker is None
    assert states["acct-2"].ambiguous_at, "the ambiguous failure is in the journal"


async def test_the_same_run_again_buys_nothing_and_reports_the_same_ips(
    fake: FakeSendGrid, sg: SendGridIPAM, tmp_path: Path
) -> None:
    path = tmp_path / "run.journal"
    first = await sg.provisioning.bulk_add_ips(requests(), journal=path)
    fake.reset_log()
    events: list[BulkProgress] = []
    again = await sg.provisioning.bulk_add_ips(requests(), journal=str(path),
                                               on_progress=events.append)

    assert fake.log == [], "finished accounts are not touched"
    assert again.run_id == first.run_id
    assert [r.ips for r in again.results] == [r.ips for r in first.results]
    assert all(r.ok for r in again.results)
    assert {e.account_id for e in events if e.result is not None} == set(ACCOUNTS[:3])
    assert all(e.found for e in events)


async def test_another_target_for_an_account_is_refused_before_anything_is_bought(
    fake: FakeSendGrid, sg: SendGridIPAM, tmp_path: Path
) -> None:
    path = tmp_path / "run.journal"
    await sg.provisioning.bulk_add_ips(requests(), journal=path, run_id="nightly")
    fake.reset_log()
    changed = [*requests()[:2], ProvisionRequest("acct-3", 13, "us"),
               ProvisionRequest("acct-4", 1, "us")]

    with pytest.raises(JournalMismatchError, match=r"acct-3.*12 IPs in 'us'.*13 in 'us'"):
        await sg.provisioning.bulk_add_ips(changed, journal=path, run_id="nightly")
    assert fake.log == []
    assert fake.account_ips("acct-4") == []


async def test_an_unfinished_account_of_another_run_is_refused(
    fake: FakeSendGrid, sg: SendGridIPAM, tmp_path: Path
) -> None:
    """The CSV was edited after a crash: its digest (the default run id) changed, but buying
    the unfinished accounts again under a new run could buy twice."""
    path = tmp_path / "run.journal"
    async with SQLiteJournal(path) as journal:  # a run that died after its first intent
        await journal.begin_account("run-old", "acct-2", region="us", count=12)
        await journal.record_marker("run-old", "acct-2", None)
        await journal.record_intent("run-old", "acct-2", 0, 10)

    with pytest.raises(JournalMismatchError, match=r"unfinished run .'run-old'.*acct-2"):
        await sg.provisioning.bulk_add_ips(requests(), journal=path)
    assert fake.log == []


async def test_a_journal_that_cannot_be_opened_stops_the_run_before_its_first_write(
    fake: FakeSendGrid, sg: SendGridIPAM, tmp_path: Path
) -> None:
    with pytest.raises(JournalError, match="does not exist"):
        await sg.provisioning.bulk_add_ips(requests(), journal=tmp_path / "no" / "run.journal")
    not_a_journal = tmp_path / "notes.txt"
    not_a_journal.write_text("hello\n" * 100)
    with pytest.raises(JournalError):
        await sg.provisioning.bulk_add_ips(requests(), journal=not_a_journal)
    assert fake.log == []


async def test_a_torn_run_resumes_buying_only_the_remainder(
    fake: FakeSendGrid, sg: SendGridIPAM, tmp_path: Path
) -> None:
    """A run killed after acct-1's second POST landed and before its outcome was recorded,
    with acct-2 finished and acct-3 never begun: the rerun lists acct-1 down to its marker,
    counts what is there, and buys only the rest."""
    path = tmp_path / "run.journal"
    fake.add_account("acct-1", ips=2)  # IPs from before the run: not the run's
    before = fake.account_ips("acct-1")
    wanted = [ProvisionRequest("acct-1", 25, "us"), ProvisionRequest("acct-2", 3, "us"),
              ProvisionRequest("acct-3", 4, "us")]
    # What the killed run did, recorded as it would have recorded it:
    first = await sg.provisioning.add_ips("acct-1", count=10, region="us")
    second = await sg.provisioning.add_ips("acct-1", count=10, region="us")
    done = await sg.provisioning.add_ips("acct-2", count=3, region="us")
    async with SQLiteJournal(path) as journal:
        run = "torn"
        for r in wanted[:2]:
            await journal.begin_account(run, r.account_id, region=r.region, count=r.count)
        await journal.record_marker(run, "acct-1", before[0])
        await journal.record_intent(run, "acct-1", 0, 10)
        await journal.record_outcome(run, "acct-1", 0, first.ips)
        await journal.record_intent(run, "acct-1", 1, 10)  # landed; outcome never recorded
        await journal.record_marker(run, "acct-2", None)
        await journal.record_intent(run, "acct-2", 0, 3)
        await journal.record_outcome(run, "acct-2", 0, done.ips)
        await journal.finish_account(run, "acct-2", done.ips)
    fake.reset_log()

    result = await sg.provisioning.bulk_add_ips(wanted, journal=path, run_id="torn",
                                                audit_delay=DELAY)

    one, two, three = result.results
    assert [r.ok for r in result.results] == [True, True, True]
    assert len(fake.account_ips("acct-1")) == 2 + 25
    assert sorted(one.ips) == sorted(set(fake.account_ips("acct-1")) - set(before))
    assert set(first.ips) | set(second.ips) <= set(one.ips)
    assert one.excess == ()
    assert two.ips == done.ips
    assert fake.count("AddAccountIps", account_id="acct-2") == 0
    assert sorted(three.ips) == sorted(fake.account_ips("acct-3"))
    assert len(three.ips) == 4
    # acct-1: one request, for the 5 missing; acct-3: one of 4
    assert fake.count("AddAccountIps", account_id="acct-1") == 1
    assert fake.count("AddAccountIps", account_id="acct-3") == 1


class _FailingJournal(SQLiteJournal):
    """An SQLite journal that cannot store the steps of accounts other than `good` (its disk
    is full for them: by account, not by count, as accounts overlap in time even at
    concurrency 1: one account's GET goes while another waits for the disk)."""

    def __init__(self, path: Path, good: str) -> None:
        super().__init__(path)
        self.good = good

    def _submit_valid(
        self, run_id: str, steps: list[tuple[str, list[Any]]], *, durable: bool
    ) -> asyncio.Future[list[BaseException | None]]:
        good = [step for step in steps if step[0] == self.good]
        stored = super()._submit_valid(run_id, good, durable=durable) if good else None
        full = JournalError("the journal could not be written: database or disk is full")

        async def answer() -> list[BaseException | None]:
            answers = iter(await stored if stored else [])
            return [next(answers) if step[0] == self.good else full for step in steps]

        return asyncio.ensure_future(answer())


async def test_a_journal_that_fails_mid_run_stops_every_write_after_it(
    fake: FakeSendGrid, sg: SendGridIPAM, tmp_path: Path
) -> None:
    """acct-1 is provisioned and finished (2 steps); acct-2's first step fails: its POST is
    never sent, and no account after it is started."""
    wanted = [ProvisionRequest(a, 2, "us") for a in ACCOUNTS]
    result = await sg.provisioning.bulk_add_ips(
        wanted, journal=_FailingJournal(tmp_path / "run.journal", good="acct-1"),
        concurrency=1)

    first, second, *rest = result.results
    assert first.ok
    assert isinstance(second.error, JournalError)
    assert second.ips == ()
    assert all(r.requests == 0 and r.ips == () for r in rest)
    assert fake.count("AddAccountIps") == 1
    assert [a for a in ACCOUNTS if fake.account_ips(a)] == ["acct-1"]


class _UnsyncedJournal(SQLiteJournal):
    """An SQLite journal whose last fsync fails (the disk went away at the end)."""

    syncs = 0

    async def _sync(self) -> None:
        self.syncs += 1
        raise JournalError("the journal could not be written: disk I/O error")


async def test_a_run_syncs_what_it_wrote_behind_before_it_returns(
    fake: FakeSendGrid, sg: SendGridIPAM, tmp_path: Path
) -> None:
    """Outcomes and finishes are committed without an fsync; the run fsyncs them before it
    returns, and if that fails, no account is reported done (a rerun resumes them all)."""
    journal = _UnsyncedJournal(tmp_path / "run.journal")
    result = await sg.provisioning.bulk_add_ips(requests(3), journal=journal)

    assert journal.syncs == 1
    assert all(isinstance(r.error, JournalError) for r in result.results)
    assert [len(r.ips) for r in result.results] == [3, 3, 3], "what was bought is reported"
    again = await sg.provisioning.bulk_add_ips(requests(3), journal=tmp_path / "run.journal")
    assert all(r.ok and r.from_journal for r in again.results)
    assert fake.count("AddAccountIps") == 3


async def test_excess_found_in_one_run_is_released_by_the_next(
    fake: FakeSendGrid, sg: SendGridIPAM, tmp_path: Path
) -> None:
    """The first run reports what a late write bought twice; the same run again, with
    release_excess, buys nothing and removes exactly that excess."""
    path = tmp_path / "run.journal"
    fake.script("AddAccountIps", Fault.late(504, delay=0.25), account_id="acct-1")
    first = await sg.provisioning.bulk_add_ips(requests(3), journal=path, audit_delay=0.4)
    (excess,) = first.excess.values()
    assert len(excess) == 3
    assert len(fake.account_ips("acct-1")) == 6
    writes = fake.count("AddAccountIps")

    again = await sg.provisioning.bulk_add_ips(requests(3), journal=path, release_excess=True)

    assert fake.count("AddAccountIps") == writes
    one = again.results[0]
    assert one.excess == excess
    assert one.released == excess
    assert sorted(one.held) == sorted(fake.account_ips("acct-1"))
    assert len(one.held) == 3
    async with SQLiteJournal(path) as journal:
        assert (await journal.load(again.run_id or ""))["acct-1"].released == excess


async def test_bad_arguments_are_refused_before_anything_is_sent(
    fake: FakeSendGrid, sg: SendGridIPAM, tmp_path: Path
) -> None:
    with pytest.raises(ValidationError, match="run_id"):
        await sg.provisioning.bulk_add_ips(requests(), run_id="x")
    with pytest.raises(ValidationError, match="run_id"):
        await sg.provisioning.bulk_add_ips(requests(), journal=tmp_path / "j", run_id="")
    with pytest.raises(ValidationError, match="audit_delay"):
        await sg.provisioning.bulk_add_ips(requests(), audit_delay=float("nan"))
    with pytest.raises(ValidationError, match="release_excess"):
        await sg.provisioning.bulk_add_ips(requests(), release_excess=1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="journal"):
        await sg.provisioning.bulk_add_ips(requests(), journal=3)  # type: ignore[arg-type]
    assert fake.log == []
    assert not (tmp_path / "j").exists()


async def test_a_resync_that_changes_the_plan_records_new_chunks(
    fake: FakeSendGrid, sg: SendGridIPAM, tmp_path: Path
) -> None:
    """acct-1 asks 25 (planned: 10, 10, 5). After its first chunk another writer adds 3 IPs
    and the second chunk's POST fails: its check finds those 3 instead of 10. The account is
    listed again, 12 remain, and they are bought as chunks of 10 and 2 with new numbers
    (a writer beside the run is the documented limit: its 3 IPs count as the run's)."""
    path = tmp_path / "run.journal"
    done_first = False

    def on_progress(event: BulkProgress) -> None:
        nonlocal done_first
        if event.new_ips and not done_first:
            done_first = True
            fake.add_account("acct-1", ips=3)
            fake.script("AddAccountIps", Fault.error(500), account_id="acct-1")

    result = await sg.provisioning.bulk_add_ips(
        [ProvisionRequest("acct-1", 25, "us")], journal=path, audit_delay=0.05,
        on_progress=on_progress)

    (one,) = result.results
    assert one.ok, one.error
    assert sorted(one.ips) == sorted(fake.account_ips("acct-1"))
    assert len(one.ips) == 25
    async with SQLiteJournal(path) as journal:
        state = (await journal.load(result.run_id or ""))["acct-1"]
    assert state.finished
    assert [(c.number, c.size) for c in state.chunks] == [
        (0, 10), (1, 10), (2, 5), (3, 10), (4, 2)]
    assert [c.number for c in state.open_chunks] == [2], "planned, never sent"
