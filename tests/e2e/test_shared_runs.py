"""Shared bulk runs in one process: two runs of the same requests on one client and one SQLite
journal split the accounts through the client's leases (the in-process coordinator), as
workers on Redis do across processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sendgrid_ipam import ProvisionRequest, RetryPolicy, SendGridIPAM
from sendgrid_ipam.journal import SQLiteJournal
from sendgrid_ipam.testing import FakeSendGrid, FaultRates

KEY = "SG.e2e-shared"
FAST = RetryPolicy(max_attempts=8, initial_backoff=0.005, max_backoff=0.02, settle=0.02)
ACCOUNTS = [f"acct-{n:02d}" for n in range(12)]


@pytest.fixture
async def fake() -> AsyncIterator[FakeSendGrid]:
    async with FakeSendGrid(api_key=KEY, accounts=ACCOUNTS, seed=8) as server:
        server.faults = FaultRates(error=0.1, applied_error=0.1, slow=0.5, slow_delay=0.005,
                                   operations=["AddAccountIps"])
        yield server


async def test_two_runs_of_the_same_requests_split_the_accounts(
    fake: FakeSendGrid, tmp_path: Path
) -> None:
    requests = [ProvisionRequest(a, 3 + n, "us") for n, a in enumerate(ACCOUNTS)]
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg, \
            SQLiteJournal(tmp_path / "run.journal") as journal:
        first, second = await asyncio.gather(*(sg.provisioning.bulk_add_ips(
            requests, journal=journal, concurrency=3, audit_delay=0.05) for _ in range(2)))
        states = await journal.load(first.run_id or "")

    assert first.run_id == second.run_id
    mine = [{r.account_id for r in result.results} for result in (first, second)]
    assert mine[0], "both runs provisioned accounts"
    assert mine[1], "both runs provisioned accounts"
    assert not mine[0] & mine[1], "no account was provisioned by both"
    assert mine[0] | mine[1] == set(ACCOUNTS)
    assert set(first.elsewhere) == mine[1]
    assert set(second.elsewhere) == mine[0]
    for result in (first, second):
        assert result.failed == ()
        for account in result.results:
            assert sorted(account.ips) == sorted(fake.account_ips(account.account_id))
    for request in requests:
        assert len(fake.account_ips(request.account_id)) == request.count
        assert states[request.account_id].finished
