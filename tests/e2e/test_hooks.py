"""Hooks see every request a call makes, in order, as the fake SendGrid received them; a hook
that raises never breaks a call; with no hook and no telemetry nothing observes at all."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from sendgrid_ipam import (
    ConfigurationError,
    RequestEvent,
    ResponseEvent,
    RetryPolicy,
    SendGridIPAM,
    ServerError,
    ValidationError,
    _observe,
)
from sendgrid_ipam.testing import FakeSendGrid, Fault

KEY = "SG.hooks-key-7Qv2Lm"
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, settle=0.02)
PATH = "/v3/partners/accounts/acct-1/ips"
TEMPLATE = "/v3/partners/accounts/{account_id}/ips"


@pytest.fixture
async def fake() -> AsyncIterator[FakeSendGrid]:
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1"]) as server:
        yield server


async def test_every_request_of_a_retried_reconciled_add_ips_in_order(
    fake: FakeSendGrid,
) -> None:
    seen: list[RequestEvent | ResponseEvent] = []
    fake.script("AddAccountIps", Fault.error(503))  # not applied: checked, then resent
    fake.script("AddAccountIps", Fault.applied_error(502))  # applied: the check finds it
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST,
                            on_request=seen.append, on_response=seen.append) as sg:
        added = await sg.provisioning.add_ips("acct-1", count=2, region="us")
    assert added.reconciled
    assert sorted(added.ips) == sorted(fake.account_ips("acct-1"))

    # Each request is announced, then ended, before the next one starts.
    requests, responses = seen[0::2], seen[1::2]
    assert all(isinstance(e, RequestEvent) for e in requests)
    assert all(isinstance(e, ResponseEvent) for e in responses)
    for request, response in zip(requests, responses, strict=True):
        assert (request.operation_id, request.method, request.path, request.attempt) == (
            response.operation_id, response.method, response.path, response.attempt)
    received = [(r.operation_id, r.method, r.path, r.status) for r in fake.log]
    assert [(e.operation_id, e.method, e.path, e.status) for e in responses] == received
    assert [(e.operation_id, e.status, e.error_type, e.attempt) for e in responses] == [
        ("ListAccountIps", 200, None, 1),  # the newest IP, noted before writing
        ("AddAccountIps", 503, "ServerError", 1),
        ("ListAccountIps", 200, None, 1),  # the check: no effect, so it is resent
        ("AddAccountIps", 502, "ServerError", 2),
        ("ListAccountIps", 200, None, 1),  # the check: it took effect
    ]
    assert {e.url_template for e in seen} == {TEMPLATE}
    assert all(e.duration >= 0 for e in responses)
    for event in responses:  # the fake rate-limits like SendGrid: every reply says so
        assert event.rate_limit is not None
        assert event.rate_limit.limit is not None
        assert event.headers["X-RateLimit-Limit"] == str(event.rate_limit.limit)
    for event in seen:
        assert KEY not in repr(event)
        assert all(KEY not in f"{name}: {value}" for name, value in getattr(
            event, "headers", {}).items())


async def test_a_raising_hook_is_logged_and_the_call_goes_on(
    fake: FakeSendGrid, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(event: object) -> None:
        raise RuntimeError("hook bug")

    fake.script("ListIpPool", Fault.error(503))
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST,
                            on_request=broken, on_response=broken) as sg:
        pools = [pool async for pool in sg.pools.list()]
    assert pools == []
    assert fake.count("ListIpPool") == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING
                and r.name == "sendgrid_ipam"]
    assert [r.getMessage() for r in warnings] == [
        f"{hook} hook for ListIpPool raised; ignored"
        for _ in range(2) for hook in ("request", "response")]
    assert all(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in warnings)


async def test_one_calls_on_response_sees_that_calls_replies_only(fake: FakeSendGrid) -> None:
    everything: list[ResponseEvent] = []
    mine: list[ResponseEvent] = []
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST,
                            on_response=everything.append) as sg:
        created = await sg.pools.create("first")
        fake.script("GetIpPool", Fault.error(500))
        pool = await sg.pools.get(created.id, on_response=mine.append)
        await sg.pools.get(created.id)
    assert pool.name == "first"
    assert [(e.operation_id, e.status, e.attempt) for e in mine] == [
        ("GetIpPool", 500, 1), ("GetIpPool", 200, 2)]
    assert mine[-1].ok
    assert "content-type" in mine[-1].headers  # the successful reply's own headers
    assert len(everything) == 4  # the client's hook sees every call's


async def test_one_calls_on_response_without_client_hooks(fake: FakeSendGrid) -> None:
    mine: list[ResponseEvent] = []
    async with SendGridIPAM(KEY, base_url=fake.url) as sg:
        assert sg._engine.observer is None
        await sg.pools.create("solo", on_response=mine.append)
        assert sg._engine.observer is None  # the call's own hook is not kept
    assert [(e.operation_id, e.status) for e in mine] == [("CreateIpPool", 201)]


async def test_failed_call_ends_with_a_failed_response(fake: FakeSendGrid) -> None:
    seen: list[ResponseEvent] = []
    fake.script("ListIp", Fault.error(500), times=2)
    async with SendGridIPAM(KEY, base_url=fake.url, retry=RetryPolicy(max_attempts=2),
                            on_response=seen.append) as sg:
        with pytest.raises(ServerError):
            [ip async for ip in sg.ips.list()]
    assert [(e.status, e.error_type, e.ok) for e in seen] == [
        (500, "ServerError", False), (500, "ServerError", False)]


def test_nothing_observes_when_nothing_is_turned_on() -> None:
    assert SendGridIPAM(KEY)._engine.observer is None


def test_a_hook_must_be_a_plain_function() -> None:
    async def coroutine_hook(event: object) -> None:
        pass

    with pytest.raises(ConfigurationError, match="on_request must be a plain function"):
        SendGridIPAM(KEY, on_request=coroutine_hook)
    with pytest.raises(ConfigurationError, match="on_response must be callable"):
        SendGridIPAM(KEY, on_response="print")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="telemetry must be True or False"):
        SendGridIPAM(KEY, telemetry=1)  # type: ignore[arg-type]


async def test_a_calls_on_response_is_checked_before_sending(fake: FakeSendGrid) -> None:
    async def coroutine_hook(event: object) -> None:
        pass

    async with SendGridIPAM(KEY, base_url=fake.url) as sg:
        with pytest.raises(ValidationError, match="on_response"):
            await sg.pools.get("1", on_response=coroutine_hook)
    assert fake.log == []


async def test_one_writes_on_response_sees_its_checks_reads_too(fake: FakeSendGrid) -> None:
    mine: list[ResponseEvent] = []
    fake.script("AddAccountIps", Fault.applied_error(502))
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
        added = await sg.provisioning.add_ips("acct-1", count=1, region="us",
                                              on_response=mine.append)
        await sg.provisioning.add_ips("acct-1", count=1, region="us")
    assert added.reconciled
    assert [(e.operation_id, e.status) for e in mine] == [
        ("ListAccountIps", 200), ("AddAccountIps", 502), ("ListAccountIps", 200)]


async def test_with_nothing_on_no_call_is_observed(
    fake: FakeSendGrid, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object) -> None:
        raise AssertionError("an observer was built with nothing turned on")

    monkeypatch.setattr(_observe.Call, "__init__", never)
    monkeypatch.setattr(_observe.Observer, "__init__", never)
    fake.script("CreateIpPool", Fault.error(503))  # a retried write: the flow too
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
        pool = await sg.pools.create("quiet")
        assert (await sg.pools.get(pool.id)).name == "quiet"
    assert fake.count() == 4  # the 503, its check, the resend and the GET
