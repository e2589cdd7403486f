"""Money-critical moments found by review: cancellation, lease waits, shared audits, a late 429."""
from __future__ import annotations

import asyncio
import time

import pytest

from sendgrid_ipam import AmbiguousResultError, RetryPolicy, SendGridError, SendGridIPAM
from sendgrid_ipam.testing import FakeSendGrid, Fault
from tests.waiting import until

KEY = "SG.review"
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.02)


async def test_cancelled_add_ips_is_watched_for_the_audit() -> None:
    """add_ips cancelled while its POST is in flight: the POST lands; audit() must find it."""
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1"]) as fake:
        fake.script("AddAccountIps", Fault.slow(0.3))
        async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
            call = asyncio.create_task(sg.provisioning.add_ips("acct-1", count=2, region="us"))
            # the marker GET is done, the slow POST in flight (it took its fault)
            await until(lambda: fake.pending_faults() == 0, "the POST reached the fake")
            assert not call.done()
            call.cancel()
            with pytest.raises(asyncio.CancelledError):
                await call
            await until(lambda: fake.count("AddAccountIps"), "the POST landed on the server")
            bought = fake.account_ips("acct-1")
            assert len(bought) == 2
            audits = await sg.provisioning.audit(["acct-1"], audit_delay=0)
            assert sorted(audits[0].excess) == sorted(bought), "bought, never reported"


async def test_a_write_that_waited_for_its_lease_still_ends_by_its_deadline() -> None:
    """Call 2 waits ~0.5 s for the lease call 1 holds; its POST then hangs. With
    deadline=0.6 and timeout=0.5 it must end by ~0.6 s, not 0.5 + 0.5."""
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1"]) as fake:
        fake.script("AddAccountIps", Fault.slow(0.5))   # call 1's POST
        fake.script("AddAccountIps", Fault.slow(0.8))   # call 2's POST hangs
        async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
            first = asyncio.create_task(sg.provisioning.add_ips("acct-1", count=1, region="us"))
            # call 1 holds the lease: its POST took the first fault
            await until(lambda: fake.pending_faults() == 1, "call 1's POST reached the fake")
            started = time.monotonic()
            with pytest.raises(SendGridError):
                await sg.provisioning.add_ips("acct-1", count=1, region="us",
                                              deadline=0.6, timeout=0.5)
            elapsed = time.monotonic() - started
            await first
            await asyncio.sleep(0.5)
            # (slack for a loaded machine; a deadline that ignored the lease wait: ~1 s)
            assert elapsed < 0.85, f"the call ran {elapsed:.2f}s past its 0.6s deadline"


async def test_audit_does_not_release_ips_another_client_of_the_coordinator_bought() -> None:
    """Two clients (processes) share one coordinator, as the docs allow. A's write fails
    ambiguously (reconciled), B then buys 2 IPs and reports them to its caller. A's audit
    must not call B's IPs excess, let alone remove them."""
    from sendgrid_ipam.coordination import MemoryCoordinator

    shared = MemoryCoordinator()
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1"]) as fake:
        fake.script("AddAccountIps", Fault.applied_error(502))
        async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST, coordinator=shared) as a, \
                SendGridIPAM(KEY, base_url=fake.url, retry=FAST, coordinator=shared) as b:
            mine = await a.provisioning.add_ips("acct-1", count=2, region="us")
            theirs = await b.provisioning.add_ips("acct-1", count=2, region="us")
            [audit] = await a.provisioning.audit(["acct-1"], audit_delay=0, release_excess=True)
        assert mine.reconciled
        assert not set(audit.released) & set(theirs.ips), (
            f"A's audit removed B's IPs {audit.released}; B was told it holds {theirs.ips}")


async def test_a_call_that_ends_on_a_429_after_an_ambiguous_attempt_checks_again() -> None:
    """Attempt 1: 504, its write lands 0.15 s later (after the check before the resend).
    Attempts 2..3: 429. The call ends with the 429: it must not say nothing was bought
    while the account holds attempt 1's IPs."""
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1"]) as fake:
        fake.script("AddAccountIps", Fault.late(504, delay=0.15))
        fake.script("AddAccountIps", Fault.error(429))
        fake.script("AddAccountIps", Fault.error(429))
        policy = RetryPolicy(max_attempts=3, initial_backoff=0.1, max_backoff=0.1,
                             settle=0.02)
        async with SendGridIPAM(KEY, base_url=fake.url, retry=policy) as sg:
            try:
                got = await sg.provisioning.add_ips("acct-1", count=2, region="us")
                told = set(got.ips)
            except AmbiguousResultError as exc:
                told = set(exc.found)
            except Exception as exc:
                told, error = set(), exc
            await fake.settle()  # attempt 1's write has landed
        bought = set(fake.account_ips("acct-1"))
        assert told == bought, f"bought {sorted(bought)}, told {sorted(told)} ({error!r})"


async def test_a_cancelled_write_holds_its_lease_for_settle_so_the_next_writer_is_exact() -> None:
    """add_ips cancelled while its POST is in flight, which then lands; another add_ips on
    the account right away, whose own POST lands and fails (ambiguous): its check must find
    its own IP only, not the cancelled call's. So the cancelled call's lease is held for
    `settle` after the cancellation (a late landing shows by then) before the next writer
    reads its marker."""
    patient = RetryPolicy(initial_backoff=0.01, max_backoff=0.05, settle=0.3)
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1"]) as fake:
        fake.script("AddAccountIps", Fault.slow(0.2))  # the first POST lands at ~0.2 s
        fake.script("AddAccountIps", Fault.applied_error(502))
        async with SendGridIPAM(KEY, base_url=fake.url, retry=patient) as sg:
            first = asyncio.create_task(sg.provisioning.add_ips("acct-1", count=2, region="us"))
            # its marker read done, the slow POST in flight (it took its fault)
            await until(lambda: fake.pending_faults() == 1, "the first POST reached the fake")
            cancelled_at = time.time()  # (before: the settle is counted from the cancel)
            first.cancel()
            with pytest.raises(asyncio.CancelledError):
                await first
            second = await sg.provisioning.add_ips("acct-1", count=1, region="us")
            bought = fake.account_ips("acct-1")
            assert len(bought) == 3
            assert len(second.ips) == 1
            assert set(second.ips) <= set(bought)
            reads = [r.received_at for r in fake.records("ListAccountIps")]
            assert reads[1] >= cancelled_at + 0.25, "the next writer's marker waited for settle"
            assert fake.records("AddAccountIps")[0].applied, "the cancelled write landed"
