"""Writes that land late (the gateway answered 504, the backend finished afterwards): the audit
finds every IP they bought, end to end against the fake.

The fake's late writes land 0.05-0.3 s after the failure here (SendGrid's: 0.5-3 s), with an
audit delay scaled the same way, to keep the tests short.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import attrs
import pytest

from sendgrid_ipam import (
    AmbiguousResultError,
    ProvisionRequest,
    RetryPolicy,
    SendGridIPAM,
    ValidationError,
)
from sendgrid_ipam.audit import AccountAudit
from sendgrid_ipam.hooks import RequestEvent, ResponseEvent
from sendgrid_ipam.testing import FakeSendGrid, Fault, FaultRates

KEY = "SG.e2e-late"
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.02)
LATE_MIN, LATE_MAX = 0.1, 0.6  # (a loaded machine checks late: some must land after)
AUDIT_DELAY = 0.65  # beyond the latest late write, as 5 s is beyond SendGrid's 3 s


@pytest.fixture
async def fake() -> AsyncIterator[FakeSendGrid]:
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1", "acct-2"], seed=1) as server:
        yield server


@pytest.fixture
async def sg(fake: FakeSendGrid) -> AsyncIterator[SendGridIPAM]:
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as client:
        yield client


async def test_a_single_call_whose_first_attempt_lands_late_is_found_by_the_audit(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    fake.add_account("acct-1", ips=2)
    fake.script("AddAccountIps", Fault.late(504, delay=0.25), account_id="acct-1")
    added = await sg.provisioning.add_ips("acct-1", count=3, region="us")
    assert added.ips
    assert len(added.ips) == 3

    audits = await sg.provisioning.audit(audit_delay=0.4)

    (audit,) = audits
    late = set(fake.account_ips("acct-1")[:6]) - set(added.ips)
    assert len(late) == 3
    assert audit.account_id == "acct-1"
    assert set(audit.excess) == late
    assert set(audit.held) == late | set(added.ips)
    assert audit.released == ()
    assert audit.error is None
    assert await sg.provisioning.audit() == (), "an audited account is forgotten"


async def test_release_excess_leaves_the_account_with_what_was_reported(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    fake.script("AddAccountIps", Fault.late_drop(delay=0.25), account_id="acct-2")
    added = await sg.provisioning.add_ips("acct-2", count=2, region="eu")
    before = await sg.provisioning.audit(["acct-1"])  # never watched: no request made
    assert before == (AccountAudit("acct-1"),)

    (audit,) = await sg.provisioning.audit(["acct-2"], audit_delay=0.4, release_excess=True)

    assert len(audit.excess) == 2
    assert audit.released == audit.excess
    assert sorted(fake.account_ips("acct-2")) == sorted(added.ips)


async def test_the_audit_waits_its_delay_on_the_clients_clock(fake: FakeSendGrid) -> None:
    now = 1_800_000_000.0
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST, wall_clock=lambda: now,
                            sleep=sleep) as sg:
        fake.script("AddAccountIps", Fault.late(503, delay=0.3), account_id="acct-1")
        await sg.provisioning.add_ips("acct-1", count=1, region="us")
        slept.clear()
        await fake.settle()
        (audit,) = await sg.provisioning.audit(audit_delay=7.5)
        assert slept == [7.5]
        assert len(audit.excess) == 1
        with pytest.raises(ValidationError, match="audit_delay"):
            await sg.provisioning.audit(audit_delay=-1)
        with pytest.raises(ValidationError, match="accounts"):
            await sg.provisioning.audit("acct-1")


async def test_a_201_whose_verification_fails_keeps_its_ips_in_found(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    """Attempt 1 fails (500, nothing applied); the check finds nothing; the resend gets a
    201; the verification of that resend cannot list the account. The 201's IPs are bought:
    they are in the error's ``.found``."""
    fake.script("AddAccountIps", Fault.error(500), account_id="acct-1")
    fake.script("ListAccountIps", Fault.slow(0.0), times=2)  # the marker GET and the check
    fake.script("ListAccountIps", Fault.error(500), times=20)  # the verification's reads

    with pytest.raises(AmbiguousResultError) as caught:
        await sg.provisioning.add_ips("acct-1", count=4, region="us")

    assert fake.count("AddAccountIps", applied=True) == 1
    assert sorted(caught.value.found) == sorted(fake.account_ips("acct-1"))
    assert len(caught.value.found) == 4


@pytest.mark.parametrize("release", [False, True], ids=["report", "release"])
async def test_a_thousand_accounts_with_late_writes_lose_nothing(release: bool) -> None:
    accounts = [f"acct-{n:04d}" for n in range(1000)]
    rng = random.Random(7)
    wanted = [ProvisionRequest(a, rng.randint(1, 3), "us") for a in accounts]
    faults = FaultRates(late=0.08, late_delay_min=LATE_MIN, late_delay_max=LATE_MAX,
                        operations=["AddAccountIps"])
    async with (
        FakeSendGrid(api_key=KEY, accounts=accounts, faults=faults, seed=11) as fake,
        # 8 attempts: with 4, one account in some 25 runs meets 4 late faults in a row and
        # fails (its IPs all reported by the audit: what the test checks besides)
        SendGridIPAM(KEY, base_url=fake.url, retry=attrs.evolve(FAST, max_attempts=8)) as sg,
    ):
        result = await sg.provisioning.bulk_add_ips(
            wanted, concurrency=128, audit_delay=AUDIT_DELAY, release_excess=release)
        assert fake.pending_late == 0, "every late write landed before the audit"
        held = {a: fake.account_ips(a) for a in accounts}
        late = fake.count("AddAccountIps", fault="late_error") + fake.count(
            "AddAccountIps", fault="late_html") + fake.count("AddAccountIps", fault="late_drop")

    assert late > 20, "the run met late writes"
    assert result.ips_excess > 0, "some of them landed after every check"
    assert result.failed == (), [(r.account_id, r.error) for r in result.failed]
    for r in result.results:
        assert set(r.ips) >= set(held[r.account_id]), "no IP is unreported"
        assert len(r.ips) - len(r.excess) == r.requested
        assert set(r.excess) <= set(r.ips)
        if release:
            assert r.released == r.excess
            assert sorted(r.held) == sorted(held[r.account_id])
            assert len(held[r.account_id]) == r.requested
        else:
            assert sorted(r.ips) == sorted(held[r.account_id])
    assert result.ips_added - result.ips_excess == result.ips_requested
    assert sum(len(ips) for ips in held.values()) == result.ips_requested + (
        0 if release else result.ips_excess)


@pytest.mark.parametrize("lands", ["before the resend", "after the resend"])
async def test_a_bulk_chunk_landing_after_its_check_is_found_by_the_audit_without_a_verify(
    fake: FakeSendGrid, lands: str
) -> None:
    """Attempt 1 answers 504 and lands later: after the check that found nothing, just
    before or just after the resend. The bulk run does not verify the resend (its audit
    lists the account anyway): the audit finds the late IPs, every IP is reported, and the
    late ones are the excess."""
    fake.script("AddAccountIps", Fault.late(504, delay=60.0), account_id="acct-1")

    def land(event: RequestEvent | ResponseEvent) -> None:
        if event.operation_id == "AddAccountIps" and event.attempt == 2:
            assert fake.land_late_writes() == 1

    hooks = ({"on_request": land} if lands == "before the resend" else {"on_response": land})
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST, **hooks) as sg:
        result = await sg.provisioning.bulk_add_ips(
            [ProvisionRequest("acct-1", 3, "us")], concurrency=1, audit_delay=0.05)

    (account,) = result.results
    held = fake.account_ips("acct-1")
    assert fake.count("AddAccountIps", applied=True) == 2, "the late write and the resend"
    assert len(held) == 6
    assert sorted(account.ips) == sorted(held), "nothing bought goes unreported"
    assert len(account.excess) == 3
    assert account.error is None
    assert fake.count("ListAccountIps") == 3, "marker, check, audit: no verification"


async def test_a_single_call_still_verifies_its_resend(fake: FakeSendGrid) -> None:
    """Outside a bulk run nothing audits the account unless asked: the resend is verified,
    and an earlier attempt that landed just before it makes the call raise with both."""
    fake.script("AddAccountIps", Fault.late(504, delay=60.0), account_id="acct-1")

    def land(event: RequestEvent) -> None:
        if event.operation_id == "AddAccountIps" and event.attempt == 2:
            fake.land_late_writes()

    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST, on_request=land) as sg:
        with pytest.raises(AmbiguousResultError) as caught:
            await sg.provisioning.add_ips("acct-1", count=3, region="us")

    assert sorted(caught.value.found) == sorted(fake.account_ips("acct-1"))
    assert len(caught.value.found) == 6
    assert fake.count("ListAccountIps") == 3, "marker, check, verification"


async def test_a_bulk_resend_whose_reply_never_comes_is_checked_not_bought_again(
    fake: FakeSendGrid,
) -> None:
    """Attempt 1 answers 500 (nothing applied); the check finds nothing; the resend lands
    but its connection drops. Without a verification to lean on, the next attempt checks
    first, finds the resend's IPs and sends nothing more; the audit finds nothing else."""
    fake.script("AddAccountIps", Fault.error(500), account_id="acct-1")
    fake.script("AddAccountIps", Fault.applied_drop(), account_id="acct-1")
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
        result = await sg.provisioning.bulk_add_ips(
            [ProvisionRequest("acct-1", 3, "us")], concurrency=1, audit_delay=0.05)

    (account,) = result.results
    assert fake.count("AddAccountIps") == 2
    assert fake.count("AddAccountIps", applied=True) == 1
    assert sorted(account.ips) == sorted(fake.account_ips("acct-1"))
    assert len(account.ips) == 3
    assert account.excess == ()
    assert account.error is None
    assert fake.count("ListAccountIps") == 4, "marker, check, check, audit"


async def test_a_chunk_before_the_last_still_verifies_so_the_late_ips_count(
    fake: FakeSendGrid,
) -> None:
    """12 IPs: a chunk of 10, then one of 2. The first chunk's attempt 1 answers 504 and
    lands just before its resend. That chunk is verified: the late IPs are found at once
    and count towards the account, so the second chunk is never bought."""
    fake.script("AddAccountIps", Fault.late(504, delay=60.0), account_id="acct-1")

    def land(event: RequestEvent) -> None:
        if event.operation_id == "AddAccountIps" and event.attempt == 2:
            fake.land_late_writes()

    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST, on_request=land) as sg:
        result = await sg.provisioning.bulk_add_ips(
            [ProvisionRequest("acct-1", 12, "us")], concurrency=1, audit_delay=0.05)

    (account,) = result.results
    held = fake.account_ips("acct-1")
    assert fake.count("AddAccountIps") == 2, "no second chunk: the late IPs cover it"
    assert len(held) == 20
    assert sorted(account.ips) == sorted(held)
    assert len(account.excess) == 8
