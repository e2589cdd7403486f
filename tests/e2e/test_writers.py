"""Several writers on one account through one client: each gets exactly what it bought.

Reconciliation tells a failed write's IPs from older ones by the account's newest IP before
the write: it holds only while nobody else writes the account. The engine's write leases
make that so; these tests put several writers on one account while POSTs fail in every
ambiguous way, and check the fake's ledger against what each caller was told.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator

import pytest

from sendgrid_ipam import (
    AccountIps,
    AmbiguousResultError,
    ProvisionRequest,
    RetryPolicy,
    SendGridIPAM,
)
from sendgrid_ipam.testing import FakeSendGrid, Fault, FaultRates

KEY = "SG.e2e-writers"
# Generous attempts: with 30% faults every call should end with its IPs.
PATIENT = RetryPolicy(max_attempts=12, initial_backoff=0.005, max_backoff=0.02, settle=0.02,
                      deadline=30.0)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSendGrid]:
    accounts = ["acct-1", *(f"bulk-{n:02d}" for n in range(12))]
    async with FakeSendGrid(api_key=KEY, accounts=accounts, seed=11) as server:
        yield server


@pytest.fixture
async def sg(fake: FakeSendGrid) -> AsyncIterator[SendGridIPAM]:
    async with SendGridIPAM(KEY, base_url=fake.url, retry=PATIENT, seed=5) as client:
        client.retry_budget.available = client.retry_budget.capacity = 10_000.0
        yield client


def reported(outcome: AccountIps | BaseException) -> tuple[str, ...]:
    """The IPs a caller was told it obtained, whether its call returned or raised."""
    if isinstance(outcome, AccountIps):
        return outcome.ips
    if isinstance(outcome, AmbiguousResultError):
        return outcome.found
    return ()


def assert_each_ip_reported_once(sold: set[str], told: list[tuple[str, ...]]) -> None:
    everyone = list(itertools.chain.from_iterable(told))
    assert len(everyone) == len(set(everyone)), "an IP was reported to two callers"
    assert set(everyone) == sold, "every IP sold is reported, and only those"


async def test_two_writers_get_their_own_ips_when_the_first_meets_a_503(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    fake.add_account("acct-1") if "acct-1" not in fake.accounts else None
    before = set(fake.account_ips("acct-1"))
    fake.script("AddAccountIps", Fault.error(503))  # the first POST fails, not applied

    first, second = await asyncio.gather(
        sg.provisioning.add_ips("acct-1", count=2, region="us"),
        sg.provisioning.add_ips("acct-1", count=2, region="us"),
    )

    sold = set(fake.account_ips("acct-1")) - before
    assert len(sold) == 4  # 4 asked, 4 bought
    assert not set(first.ips) & set(second.ips)
    assert_each_ip_reported_once(sold, [first.ips, second.ips])


async def test_24_writers_on_one_account_through_ambiguous_faults(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    fake.faults = FaultRates(error=0.1, applied_error=0.1, applied_drop=0.1,
                             operations={"AddAccountIps"})
    before = set(fake.account_ips("acct-1"))

    outcomes = await asyncio.gather(
        *(sg.provisioning.add_ips("acct-1", count=2, region="us") for _ in range(24)),
        return_exceptions=True,
    )

    assert all(isinstance(o, AccountIps) for o in outcomes), outcomes
    sold = set(fake.account_ips("acct-1")) - before
    assert len(sold) == 48  # exactly what was asked
    assert_each_ip_reported_once(sold, [reported(o) for o in outcomes])
    assert fake.count("AddAccountIps", applied=True) == 24  # one applied write per call


async def test_a_bulk_run_beside_single_calls_on_its_accounts(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    fake.faults = FaultRates(error=0.1, applied_error=0.1, applied_drop=0.1,
                             operations={"AddAccountIps"})
    accounts = [f"bulk-{n:02d}" for n in range(12)]
    before = {a: set(fake.account_ips(a)) for a in accounts}

    async def single(account: str) -> AccountIps:
        await asyncio.sleep(0)  # let the bulk run start first
        return await sg.provisioning.add_ips(account, count=2, region="us")

    bulk, *singles = await asyncio.gather(
        sg.provisioning.bulk_add_ips([ProvisionRequest(a, 25, "us") for a in accounts],
                                     concurrency=12, audit_delay=0.05),
        *(single(a) for a in accounts),
    )

    assert not bulk.failed, bulk.failed
    for account, result, one in zip(accounts, bulk.results, singles, strict=True):
        sold = set(fake.account_ips(account)) - before[account]
        assert len(sold) == 27, account  # 25 by the bulk run, 2 by the single call
        assert_each_ip_reported_once(sold, [result.ips, one.ips])
