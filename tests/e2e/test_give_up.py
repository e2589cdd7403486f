"""However a call ends, a write that may have taken effect is checked, and nothing bought is
unreported. End to end against the fake SendGrid over loopback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from sendgrid_ipam import (
    AmbiguousResultError,
    BulkProgress,
    DecodeError,
    ProvisionRequest,
    RetryBudget,
    RetryPolicy,
    SendGridIPAM,
    ServerError,
)
from sendgrid_ipam.testing import FakeSendGrid, Fault, FaultRates

KEY = "SG.e2e-give-up"
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.02)
ACCOUNTS = [f"acct-{n}" for n in range(1, 21)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSendGrid]:
    async with FakeSendGrid(api_key=KEY, accounts=ACCOUNTS) as server:
        yield server


@pytest.mark.parametrize(
    ("policy", "budget"),
    [
        (RetryPolicy(max_attempts=1, settle=0.02), RetryBudget()),
        (FAST, RetryBudget(capacity=0)),
    ],
    ids=["max_attempts=1", "empty budget"],
)
async def test_a_write_that_took_effect_is_returned_when_retries_stop(
    fake: FakeSendGrid, policy: RetryPolicy, budget: RetryBudget
) -> None:
    fake.script("AddAccountIps", Fault.applied_error(502))
    async with SendGridIPAM(KEY, base_url=fake.url, retry=policy, retry_budget=budget) as sg:
        added = await sg.provisioning.add_ips("acct-1", count=3, region="us")
    assert added.reconciled
    assert sorted(added.ips) == sorted(fake.account_ips("acct-1"))
    assert fake.count("AddAccountIps") == 1, "nothing was resent"


async def test_a_write_that_took_no_effect_keeps_its_error_when_retries_stop(
    fake: FakeSendGrid,
) -> None:
    fake.script("AddAccountIps", Fault.error(503))
    async with SendGridIPAM(KEY, base_url=fake.url,
                            retry=RetryPolicy(max_attempts=1, settle=0.02)) as sg:
        with pytest.raises(ServerError):
            await sg.provisioning.add_ips("acct-1", count=3, region="us")
    assert fake.account_ips("acct-1") == []


async def test_a_bulk_run_with_an_empty_budget_reports_every_ip_bought(
    fake: FakeSendGrid,
) -> None:
    fake.faults = FaultRates(applied_error=0.3, error=0.1, operations={"AddAccountIps"})
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST,
                            retry_budget=RetryBudget(capacity=0)) as sg:
        result = await sg.provisioning.bulk_add_ips(
            [ProvisionRequest(a, 12, "us") for a in ACCOUNTS], audit_delay=0.05)
    for account in result.results:
        assert sorted(account.ips) == sorted(fake.account_ips(account.account_id))
    assert result.reconciled > 0


async def test_the_settle_wait_lets_a_slow_write_land_before_the_check(
    fake: FakeSendGrid,
) -> None:
    fake.script("AddAccountIps", Fault.slow(0.3))
    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.4)
    async with SendGridIPAM(KEY, base_url=fake.url, retry=policy) as sg:
        added = await sg.provisioning.add_ips("acct-1", count=2, region="us", timeout=0.1)
    assert added.reconciled
    assert sorted(added.ips) == sorted(fake.account_ips("acct-1"))
    assert fake.count("AddAccountIps", applied=True) == 1


async def test_a_write_that_lands_after_the_check_is_reported_with_all_it_bought(
    fake: FakeSendGrid,
) -> None:
    """With no settle wait, the check (at ~0.4 s) runs before a slow first attempt lands
    (at 0.6 s); the resend lands after it (at ~0.75 s). The check after the resend sees
    both, and the call raises with every IP bought instead of returning half of them."""
    fake.script("AddAccountIps", Fault.slow(0.6))
    fake.script("AddAccountIps", Fault.slow(0.35))
    no_settle = RetryPolicy(initial_backoff=0.0, max_backoff=0.0, settle=0.0)
    async with SendGridIPAM(KEY, base_url=fake.url, retry=no_settle) as sg:
        with pytest.raises(AmbiguousResultError) as caught:
            await sg.provisioning.add_ips("acct-1", count=2, region="us", timeout=0.4)
    held = fake.account_ips("acct-1")
    assert len(held) == 4, "both attempts landed: the case the settle wait exists to avoid"
    assert sorted(caught.value.found) == sorted(held)


async def test_a_short_reply_is_checked_not_trusted(fake: FakeSendGrid) -> None:
    fake.script("AddAccountIps", Fault.malformed())
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
        added = await sg.provisioning.add_ips("acct-1", count=4, region="us")
    assert added.reconciled
    assert sorted(added.ips) == sorted(fake.account_ips("acct-1"))
    assert fake.count("AddAccountIps", applied=True) == 1


@pytest.mark.parametrize("fault", [Fault.applied_error(500), Fault.applied_drop()])
async def test_a_resent_delete_that_finds_nothing_is_done(
    fake: FakeSendGrid, fault: Fault
) -> None:
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
        ips = list((await sg.provisioning.add_ips("acct-1", count=2, region="us")).ips)
        pool = await sg.pools.create("to-delete", ips=ips)
        fake.script("DeleteIpPool", fault)
        fake.script("DeleteIpsFromIpPool", fault)
        fake.script("RemoveAccountIps", fault)
        await sg.pools.remove_ips(pool.id, ips[:1])
        await sg.pools.delete(pool.id)
        await sg.provisioning.remove_ips("acct-1", ips=ips)
    assert fake.pools() == []
    assert fake.account_ips("acct-1") == []


async def test_a_failing_progress_callback_loses_nothing(
    fake: FakeSendGrid, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(event: BulkProgress) -> None:
        raise RuntimeError("callback bug")

    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
        with caplog.at_level(logging.ERROR, logger="sendgrid_ipam"):
            result = await sg.provisioning.bulk_add_ips(
                [ProvisionRequest(a, 3, "us") for a in ACCOUNTS[:4]], on_progress=explode)
    assert result.failed == ()
    assert result.ips_added == 12
    assert any("on_progress raised" in r.getMessage() for r in caplog.records)


async def test_a_bad_option_to_a_bulk_run_is_refused_up_front(fake: FakeSendGrid) -> None:
    async with SendGridIPAM(KEY, base_url=fake.url) as sg:
        with pytest.raises(TypeError, match="timeot"):
            await sg.provisioning.bulk_add_ips(
                [ProvisionRequest("acct-1", 1, "us")], timeot=1)  # type: ignore[call-arg]
        with pytest.raises(TypeError, match="timeot"):
            sg.pools.list(timeot=1)  # type: ignore[call-arg]
    assert fake.log == []


async def test_a_reply_without_ips_never_makes_bulk_buy_on(fake: FakeSendGrid) -> None:
    """A 2xx that lists no IPs is a DecodeError, checked, and ends the account's run."""
    fake.faults = FaultRates(malformed=1.0, operations={"AddAccountIps"})
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
        result = await sg.provisioning.bulk_add_ips([ProvisionRequest("acct-1", 30, "us")],
                                                    audit_delay=0.05)
    (account,) = result.results
    # every malformed reply was applied, and found by the check: all of it is reported
    assert sorted(account.ips) == sorted(fake.account_ips("acct-1"))
    assert len(account.ips) == 30
    assert fake.count("AddAccountIps", applied=True) == 3
    assert not isinstance(account.error, DecodeError)


async def test_a_failed_check_is_tried_again_not_given_up(fake: FakeSendGrid) -> None:
    """The check's reads fail four times over (one whole inner retry run): the call waits and
    checks again instead of resending or reporting the outcome unknown."""
    fake.script("AddAccountIps", Fault.applied_error(502))

    async def fail_the_check_once_the_write_is_in() -> None:
        while fake.count("AddAccountIps") == 0:  # noqa: ASYNC110 - the fake has no event
            await asyncio.sleep(0.001)
        fake.script("ListAccountIps", Fault.error(502), times=5)

    policy = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.2)
    async with SendGridIPAM(KEY, base_url=fake.url, retry=policy) as sg:
        watcher = asyncio.create_task(fail_the_check_once_the_write_is_in())
        added = await sg.provisioning.add_ips("acct-1", count=2, region="us")
        await watcher
    assert added.reconciled
    assert sorted(added.ips) == sorted(fake.account_ips("acct-1"))
    assert fake.count("AddAccountIps") == 1, "never resent while the outcome was unknown"
    assert fake.count("ListAccountIps", status=502) == 5
