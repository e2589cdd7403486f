"""Retries that never double-provision, end to end against the fake SendGrid over loopback."""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from sendgrid_ipam import (
    AuthenticationError,
    BadRequestError,
    NotFoundError,
    PermissionDeniedError,
    RequestTimeoutError,
    RetryBudget,
    RetryPolicy,
    SendGridIPAM,
    ServerError,
)
from sendgrid_ipam.testing import FakeSendGrid, Fault, FaultRates

KEY = "SG.e2e-retries"
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.02)


@pytest.fixture
async def fake() -> AsyncIterator[FakeSendGrid]:
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1", "acct-7"]) as server:
        yield server


@pytest.fixture
async def sg(fake: FakeSendGrid) -> AsyncIterator[SendGridIPAM]:
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as client:
        yield client


AMBIGUOUS_SHAPES = {
    "applied-then-502": [Fault.applied_error(502)],
    "applied-then-dropped": [Fault.applied_drop()],
    "503-then-applied-then-504": [Fault.error(503), Fault.applied_error(504)],
    "html-500-after-applying": [Fault.html(500, applied=True)],
}


@pytest.mark.parametrize("faults", AMBIGUOUS_SHAPES.values(), ids=AMBIGUOUS_SHAPES.keys())
async def test_add_ips_after_an_ambiguous_failure_buys_exactly_once(
    fake: FakeSendGrid, sg: SendGridIPAM, faults: list[Fault]
) -> None:
    await sg.provisioning.add_ips("acct-7", count=2, region="us")  # an IP to mark below
    before = fake.account_ips("acct-7")
    for fault in faults:
        fake.script("AddAccountIps", fault)

    added = await sg.provisioning.add_ips("acct-7", count=3, region="us")

    after = fake.account_ips("acct-7")
    new = [ip for ip in after if ip not in before]
    assert sorted(added.ips) == sorted(new)
    assert len(new) == 3
    assert added.reconciled
    assert fake.count("AddAccountIps", applied=True, account_id="acct-7") == 2  # one per call


async def _resent_then_reconciled(fake: FakeSendGrid, sg: SendGridIPAM) -> None:
    fake.script("AddAccountIps", Fault.error(503))
    fake.script("AddAccountIps", Fault.applied_error(502))
    await sg.provisioning.add_ips("acct-1", count=2, region="us")


async def _check_failed_then_reconciled(fake: FakeSendGrid, sg: SendGridIPAM) -> None:
    fake.script("AddAccountIps", Fault.applied_error(502))
    fake.script("ListAccountIps", Fault.slow(0.0))  # the marker read before the write
    fake.script("ListAccountIps", Fault.error(503), times=4)  # the first check fails: again
    assert (await sg.provisioning.add_ips("acct-1", count=2, region="us")).reconciled


async def _given_up_after_every_attempt(fake: FakeSendGrid, sg: SendGridIPAM) -> None:
    fake.script("ListAccountIps", Fault.error(503), times=4)
    with pytest.raises(ServerError):
        await anext(aiter(sg.provisioning.list_ips("acct-1")))


async def _stopped_after_the_first_attempt(fake: FakeSendGrid, sg: SendGridIPAM) -> None:
    fake.script("ListAccountIps", Fault.error(503))
    sg.retry_budget.available = 0.0  # the budget stops the retries at once
    with pytest.raises(ServerError):
        await anext(aiter(sg.provisioning.list_ips("acct-1")))


RETRY_ENDINGS = {
    "resent-then-reconciled": _resent_then_reconciled,
    "check-failed-then-reconciled": _check_failed_then_reconciled,
    "given-up-after-every-attempt": _given_up_after_every_attempt,
    "stopped-after-the-first-attempt": _stopped_after_the_first_attempt,
}


@pytest.mark.parametrize("ending", RETRY_ENDINGS.values(), ids=RETRY_ENDINGS.keys())
async def test_retried_calls_leave_no_garbage_cycles_of_their_own(
    fake: FakeSendGrid, sg: SendGridIPAM,
    ending: Callable[[FakeSendGrid, SendGridIPAM], Awaitable[None]],
) -> None:
    """However a retried call ends, it leaves nothing for the cycle collector (whose full
    collections are long pauses in a bulk run): not tenacity's engine, not the errors."""
    gc.collect()
    gc.disable()  # so that only the collection below finds what the call left
    try:
        await ending(fake, sg)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        ours = [o for o in gc.garbage
                if (type(o).__module__.startswith(("sendgrid_ipam", "tenacity"))
                    and not type(o).__module__.startswith("sendgrid_ipam.testing"))
                or (type(o).__name__ == "frame"
                    and "sendgrid_ipam" in o.f_code.co_filename
                    and "testing" not in o.f_code.co_filename)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not ours, sorted({type(o).__qualname__ for o in ours})


async def test_a_plain_5xx_is_resent_and_buys_once(fake: FakeSendGrid, sg: SendGridIPAM) -> None:
    fake.script("AddAccountIps", Fault.error(503), times=2)
    added = await sg.provisioning.add_ips("acct-1", count=4, region="eu")
    assert sorted(added.ips) == sorted(fake.account_ips("acct-1"))
    assert len(added.ips) == 4
    assert not added.reconciled
    assert fake.count("AddAccountIps", applied=True) == 1


async def test_pool_create_after_applied_then_500_returns_the_pool_once(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    ips = list((await sg.provisioning.add_ips("acct-1", count=3, region="us")).ips)
    fake.script("CreateIpPool", Fault.applied_error(500))

    pool = await sg.pools.create("transactional", ips=ips)

    assert pool.reconciled
    assert pool.name == "transactional"
    assert sorted(pool.ips) == sorted(ips)
    pools = [p async for p in sg.pools.list()]
    assert [p.name for p in pools] == ["transactional"]
    assert fake.count("CreateIpPool", applied=True) == 1


@pytest.mark.parametrize("applied", [True, False], ids=["applied", "not-applied"])
async def test_a_pool_create_that_gives_up_is_checked_with_the_calls_options(
    fake: FakeSendGrid, sg: SendGridIPAM, applied: bool
) -> None:
    """No retry left (one attempt): the check still runs, and its reads carry the call's
    own options (they reach the reconciler, which is built only once the write failed)."""
    ips = list((await sg.provisioning.add_ips("acct-1", count=2, region="us")).ips)
    fake.log.clear()
    fake.script("CreateIpPool", Fault.applied_error(500) if applied else Fault.error(500))
    once = RetryPolicy(max_attempts=1, settle=0.01)

    if applied:
        pool = await sg.pools.create("tx", ips=ips, retry=once, on_behalf_of="sub-1")
        assert (pool.name, sorted(pool.ips), pool.reconciled) == ("tx", sorted(ips), True)
    else:
        with pytest.raises(ServerError):  # checked: no pool by that name, the error stands
            await sg.pools.create("tx", ips=ips, retry=once, on_behalf_of="sub-1")
        assert fake.pools() == []

    checks = ["ListIpPool", "ListIpAssignedToIpPool"] if applied else ["ListIpPool"]
    assert [r.operation_id for r in fake.log] == ["CreateIpPool", *checks]
    assert {r.on_behalf_of for r in fake.log} == {"sub-1"}


async def test_ips_add_after_applied_then_drop_returns_the_one_ip(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    fake.script("AddIp", Fault.applied_drop())
    added = await sg.ips.add(is_auto_warmup=False, is_parent_assigned=True)
    listed = [ip.ip async for ip in sg.ips.list()]
    assert listed == [added.ip]
    assert added.reconciled
    assert fake.count("AddIp", applied=True) == 1


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.error(400), BadRequestError),
        (Fault.error(403), PermissionDeniedError),
    ],
)
async def test_scripted_4xx_are_sent_once_and_typed(
    fake: FakeSendGrid, sg: SendGridIPAM, fault: Fault, error: type[Exception]
) -> None:
    fake.script("AddAccountIps", fault)
    with pytest.raises(error) as caught:
        await sg.provisioning.add_ips("acct-1", count=1, region="us")
    assert fake.count("AddAccountIps") == 1
    details = caught.value.errors  # type: ignore[attr-defined]
    assert details
    assert details[0].error_id


async def test_real_4xx_replies_are_sent_once_with_parsed_details(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    with pytest.raises(NotFoundError) as not_found:
        await sg.provisioning.add_ips("no-such-account", count=1, region="us")
    assert not_found.value.errors[0].error_id == "10-40400"
    assert fake.count(status=404) == 1  # the marker GET met the 404; nothing was resent

    await sg.pools.create("dup")
    with pytest.raises(BadRequestError) as duplicate:
        await sg.pools.create("dup")
    assert duplicate.value.errors[0].field == "name"
    assert "already exists" in duplicate.value.errors[0].message
    assert fake.count("CreateIpPool", status=400) == 1

    async with SendGridIPAM("SG.wrong", base_url=fake.url, retry=FAST) as stranger:
        with pytest.raises(AuthenticationError) as unauthorised:
            await stranger.pools.get("1")
    assert unauthorised.value.status == 401
    assert fake.count("GetIpPool", status=401) == 1


async def test_gathered_calls_wait_out_a_429_window_together(fake: FakeSendGrid) -> None:
    connections = 10
    window = 0.4
    async with SendGridIPAM(KEY, base_url=fake.url, max_connections=connections) as sg:
        pool = await sg.pools.create("windowed")
        fake.rate_limit_window(window)
        window_end = time.time() + window
        fake.reset_log()
        pools = await asyncio.gather(*(sg.pools.get(pool.id) for _ in range(100)))

    assert [p.id for p in pools] == [pool.id] * 100
    limited = [r for r in fake.log if r.status == 429]
    assert 1 <= len(limited) <= connections, "only requests already in flight meet the window"
    first_answered = min(r.answered_at for r in limited)
    inside = [r for r in fake.log if first_answered < r.received_at < window_end - 0.01]
    assert len(inside) < connections, "queued requests were held at the gate"
    assert sum(1 for r in fake.log if r.status == 200) == 100


async def test_always_503_ends_at_the_deadline(fake: FakeSendGrid) -> None:
    fake.faults = FaultRates(error=1.0, statuses=(503,))
    policy = RetryPolicy(max_attempts=1000, initial_backoff=0.05, max_backoff=0.1, deadline=0.5)
    async with SendGridIPAM(KEY, base_url=fake.url, retry=policy) as sg:
        started = time.monotonic()
        # The last attempt meets a 503, or (on a loaded machine) is cut by the deadline itself
        with pytest.raises((ServerError, RequestTimeoutError)) as caught:
            await sg.pools.get("1")
        elapsed = time.monotonic() - started
    assert elapsed < 0.9, "ended near its 0.5 s deadline, not after 1,000 attempts"
    *earlier, last = caught.value.attempts
    assert len(earlier) >= 2
    assert all(a.status == 503 for a in earlier)
    assert last.status == 503 if isinstance(caught.value, ServerError) else last.status is None
    assert "deadline" in " ".join(getattr(caught.value, "__notes__", []))


async def test_always_503_stays_within_the_retry_budget(fake: FakeSendGrid) -> None:
    fake.faults = FaultRates(error=1.0, statuses=(503,))
    budget = RetryBudget(capacity=100)
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST, retry_budget=budget) as sg:
        results = await asyncio.gather(*(sg.pools.get("1") for _ in range(1000)),
                                       return_exceptions=True)
    assert all(isinstance(r, ServerError) for r in results)
    assert len(fake.log) <= 1000 + 100


async def test_retries_and_reconciliations_are_logged_without_secrets(
    fake: FakeSendGrid, sg: SendGridIPAM, caplog: pytest.LogCaptureFixture
) -> None:
    fake.script("AddAccountIps", Fault.applied_error(502))
    with caplog.at_level(logging.DEBUG, logger="sendgrid_ipam"):
        await sg.provisioning.add_ips("acct-1", count=1, region="us")
    events = [getattr(r, "sendgrid_ipam_event", None) for r in caplog.records]
    assert "retry" in events
    assert "reconcile" in events
    retry = next(r for r in caplog.records if getattr(r, "sendgrid_ipam_event", "") == "retry")
    assert retry.operation == "AddAccountIps"  # type: ignore[attr-defined]
    assert retry.attempt == 1  # type: ignore[attr-defined]
    assert "502" in retry.cause  # type: ignore[attr-defined]
    assert KEY not in caplog.text


async def test_exhausted_retries_give_the_last_typed_error_with_attempts(
    fake: FakeSendGrid, sg: SendGridIPAM
) -> None:
    fake.script("GetIpPool", Fault.error(502), times=4)
    with pytest.raises(ServerError) as caught:
        await sg.pools.get("1")
    attempts = caught.value.attempts
    assert [a.status for a in attempts] == [502, 502, 502, 502]
    assert [a.number for a in attempts] == [1, 2, 3, 4]
    assert all(a.waited > 0 for a in attempts[:-1])
