"""Pacing end to end: a bulk run against the fake SendGrid's fixed-window rate limit.

The fake counts every request of the key in windows of ``WINDOW`` seconds (one counter for
all endpoints) and answers X-RateLimit-Limit/-Remaining/-Reset on every reply; the 429s are
counted in its request log, not timed.
"""

from __future__ import annotations

from collections import Counter

from sendgrid_ipam import ProvisionRequest, SendGridIPAM
from sendgrid_ipam.testing import FakeSendGrid

KEY = "SG.e2e-pacing"
LIMIT = 25
WINDOW = 0.2  # seconds: each real wait stays well under a second
ACCOUNTS = [f"acct-{n:03d}" for n in range(40)]


async def test_a_bulk_run_under_a_fixed_window_meets_at_most_a_handful_of_429s() -> None:
    requests = [ProvisionRequest(account, 12, "us") for account in ACCOUNTS]
    async with (
        FakeSendGrid(api_key=KEY, accounts=ACCOUNTS, rate_limit=LIMIT,
                     rate_window=WINDOW) as fake,
        SendGridIPAM(KEY, base_url=fake.url) as sg,
    ):
        result = await sg.provisioning.bulk_add_ips(requests, concurrency=8)

    assert not result.failed
    assert result.ips_added == 12 * len(ACCOUNTS)
    statuses = Counter(record.status for record in fake.log)
    assert statuses[201] == 2 * len(ACCOUNTS)  # every AddAccountIps went through once
    assert statuses[429] <= 5, f"{statuses[429]} of {len(fake.log)} requests met the limit"
    # Several windows' worth of requests: the run was paced, not under the limit by luck.
    assert len(fake.log) > 4 * LIMIT


async def test_replies_without_rate_limit_news_leave_the_client_unpaced() -> None:
    async with (
        FakeSendGrid(api_key=KEY, accounts=ACCOUNTS[:2]) as fake,  # announces 1,000,000 left
        SendGridIPAM(KEY, base_url=fake.url) as sg,
    ):
        await sg.provisioning.add_ips(ACCOUNTS[0], count=2, region="us")
        assert sg.coordinator.quiet
        assert sg.coordinator.pace("AddAccountIps") is None
