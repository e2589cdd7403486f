"""Bulk provisioning end to end against the fake SendGrid over loopback."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from sendgrid_ipam import (
    AccountResult,
    BulkProgress,
    BulkProvisioningError,
    NotFoundError,
    ProvisionRequest,
    RetryPolicy,
    SendGridIPAM,
    ServerError,
    ValidationError,
)
from sendgrid_ipam.testing import FakeSendGrid, Fault, FaultRates

KEY = "SG.e2e-bulk"
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.02)
ACCOUNTS = [f"acct-{n:03d}" for n in range(1, 41)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSendGrid]:
    async with FakeSendGrid(api_key=KEY, accounts=ACCOUNTS, seed=3) as server:
        yield server


@pytest.fixture
async def sg(fake: FakeSendGrid) -> AsyncIterator[SendGridIPAM]:
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as client:
        yield client


def by_account(results: tuple[AccountResult, ...]) -> dict[str, AccountResult]:
    return {r.account_id: r for r in results}


async def test_counts_above_ten_are_split_into_sequential_chunks(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    result = await sg.provisioning.bulk_add_ips(
        [ProvisionRequest("acct-001", 25, "us"), ProvisionRequest("acct-002", 3, "eu")]
    )
    first, second = result.results
    assert first.ok
    assert second.ok
    assert sorted(first.ips) == sorted(fake.account_ips("acct-001"))
    assert len(first.ips) == 25
    assert first.requests == 3  # 10 + 10 + 5
    assert [r.query.get("limit") for r in fake.log if r.operation_id == "ListAccountIps"
            and r.account_id == "acct-001"] == ["1"], "only the first chunk needs a marker GET"
    assert len(second.ips) == 3
    assert result.ips_requested == result.ips_added == 28
    result.raise_for_failures()


async def test_no_two_writes_are_in_flight_for_one_account(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    fake.faults = FaultRates(slow=1.0, slow_delay=0.005)
    await sg.provisioning.bulk_add_ips(
        [ProvisionRequest(a, 30, "us") for a in ACCOUNTS[:8]], concurrency=8
    )
    for account in ACCOUNTS[:8]:
        writes = [r for r in fake.log if r.operation_id == "AddAccountIps"
                  and r.account_id == account]
        assert len(writes) == 3
        for earlier, later in itertools.pairwise(writes):
            assert earlier.answered_at <= later.received_at


async def test_faults_lose_nothing_and_buy_nothing_twice(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    fake.faults = FaultRates(error=0.05, applied_error=0.05, applied_drop=0.05)
    result = await sg.provisioning.bulk_add_ips(
        [ProvisionRequest(a, 12, "us") for a in ACCOUNTS], concurrency=16, audit_delay=0.05
    )
    assert result.failed == ()
    for account in result.results:
        assert sorted(account.ips) == sorted(fake.account_ips(account.account_id))
        assert len(account.ips) == 12
    assert result.retries > 0
    assert result.reconciled > 0


async def test_one_accounts_failure_is_reported_not_raised(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    fake.script("AddAccountIps", Fault.error(500), times=10, account_id="acct-002")
    requests = [
        ProvisionRequest("acct-001", 12, "us"),
        ProvisionRequest("acct-002", 12, "us"),
        ProvisionRequest("no-such-account", 2, "us"),
    ]
    result = await sg.provisioning.bulk_add_ips(requests, audit_delay=0.05)

    accounts = by_account(result.results)
    assert accounts["acct-001"].ok
    assert isinstance(accounts["acct-002"].error, ServerError)
    assert accounts["acct-002"].ips == ()
    assert accounts["acct-002"].attempts == 4
    assert isinstance(accounts["no-such-account"].error, NotFoundError)
    assert {r.account_id for r in result.failed} == {"acct-002", "no-such-account"}
    with pytest.raises(BulkProvisioningError) as caught:
        result.raise_for_failures()
    assert len(caught.value.failed) == 2


async def test_a_partly_provisioned_account_says_which_ips_it_got(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    events: list[BulkProgress] = []
    first_chunk_done = False

    def on_progress(event: BulkProgress) -> None:
        nonlocal first_chunk_done
        events.append(event)
        if not first_chunk_done:
            first_chunk_done = True
            fake.script("AddAccountIps", Fault.error(400), account_id="acct-005")

    result = await sg.provisioning.bulk_add_ips(
        [ProvisionRequest("acct-005", 15, "us")], on_progress=on_progress
    )
    (account,) = result.results
    assert len(account.ips) == 10
    assert sorted(account.ips) == sorted(fake.account_ips("acct-005"))
    assert account.error is not None
    assert not account.ok
    assert events[-1].result == account


async def test_bad_requests_are_refused_before_anything_is_sent(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    with pytest.raises(ValidationError, match="appears twice"):
        await sg.provisioning.bulk_add_ips(
            [ProvisionRequest("acct-001", 1, "us"), ProvisionRequest("acct-001", 2, "us")]
        )
    with pytest.raises(ValidationError, match="ProvisionRequest"):
        await sg.provisioning.bulk_add_ips([("acct-001", 1, "us")])  # type: ignore[list-item]
    with pytest.raises(ValidationError, match="concurrency"):
        await sg.provisioning.bulk_add_ips([], concurrency=0)
    with pytest.raises(ValidationError, match="region"):
        ProvisionRequest("acct-001", 1, "xx")  # type: ignore[arg-type]
    assert fake.log == []


async def test_cancelling_midway_loses_nothing_and_leaves_nothing_behind(
    fake: FakeSendGrid,
) -> None:
    fake.faults = FaultRates(slow=1.0, slow_delay=0.01)
    reported: list[str] = []
    finished = asyncio.Event()

    def on_progress(event: BulkProgress) -> None:
        reported.extend(event.new_ips)
        if event.result is not None and sum(1 for _ in reported) >= 30:
            finished.set()

    tasks_before = asyncio.all_tasks()
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
        run = asyncio.create_task(sg.provisioning.bulk_add_ips(
            [ProvisionRequest(a, 25, "us") for a in ACCOUNTS], concurrency=8,
            on_progress=on_progress,
        ))
        await asyncio.wait_for(finished.wait(), timeout=10)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        writes_at_cancel = fake.count("AddAccountIps")
        await asyncio.sleep(0.05)
        assert fake.count("AddAccountIps") == writes_at_cancel, "no write starts after cancel"

    left = [t for t in asyncio.all_tasks() - tasks_before
            if t.get_coro().__qualname__ != "RequestHandler.start"]  # the fake's own handlers
    assert left == [], "no task left behind"
    handed_out = [ip for account in ACCOUNTS for ip in fake.account_ips(account)]
    assert 0 < len(handed_out) < 25 * len(ACCOUNTS), "the run was stopped midway"
    assert sorted(reported) == sorted(handed_out), "every IP bought was reported"


def most_in_flight(fake: FakeSendGrid) -> int:
    """The most requests the fake was answering at once."""
    edges = sorted([(r.received_at, 1) for r in fake.log]
                   + [(r.answered_at, -1) for r in fake.log])
    return max(itertools.accumulate(step for _, step in edges))


async def test_an_account_waiting_to_retry_lets_another_work_meanwhile(
    fake: FakeSendGrid,
) -> None:
    first, second = ACCOUNTS[:2]
    fake.script("AddAccountIps", Fault.error(503), times=1, account_id=first)
    retry = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.2)
    async with SendGridIPAM(KEY, base_url=fake.url, retry=retry) as client:
        result = await client.provisioning.bulk_add_ips(
            [ProvisionRequest(first, 12, "us"), ProvisionRequest(second, 12, "us")],
            concurrency=1, audit_delay=0.05,
        )
    result.raise_for_failures()
    failed = next(r for r in fake.log if r.status == 503)
    after = [r.account_id for r in fake.log if r.received_at > failed.answered_at]
    # the second account is provisioned while the first settles before its check
    assert after[:3] == [second] * 3
    assert after[3:] == [first] * (len(after) - 3)
    assert most_in_flight(fake) == 1, "one account at work at a time, as asked"


@pytest.mark.parametrize(
    ("fault", "listings"),
    [
        # the check finds the write landed: nothing can land later, no audit listing
        (Fault.applied_error(502), ["marker", "check"]),
        # the check finds nothing, the write is resent: the first may still land, audited
        # (no verification after the resend: the audit lists the account anyway)
        (Fault.error(500), ["marker", "check", "audit"]),
    ],
)
async def test_an_account_is_audited_only_while_a_write_may_still_land(
    fake: FakeSendGrid, sg: SendGridIPAM, fault: Fault, listings: list[str]
) -> None:
    account = ACCOUNTS[0]
    fake.script("AddAccountIps", fault, times=1, account_id=account)
    result = await sg.provisioning.bulk_add_ips(
        [ProvisionRequest(account, 10, "us")], concurrency=1, audit_delay=0.05)
    result.raise_for_failures()
    assert fake.count("ListAccountIps") == len(listings)
    assert sorted(result.results[0].ips) == sorted(fake.account_ips(account))
