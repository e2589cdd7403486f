"""Fault injection: scripted and random (seeded), and what state and log hold afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sendgrid_ipam.testing import FakeSendGrid, Fault, FaultKind, FaultRates
from tests.testing import SpecClient, spec_client

ACCOUNT = "/v3/partners/accounts/acct-1/ips"
ADD = {"count": 2, "region": "us"}


@pytest.fixture
async def api() -> AsyncIterator[SpecClient]:
    async with FakeSendGrid(accounts=["acct-1", "acct-2"]) as fake, spec_client(fake) as client:
        yield client


async def test_applied_error_changes_the_state_then_answers_the_status(api: SpecClient) -> None:
    api.fake.script("AddAccountIps", Fault.applied_error(502))
    reply = await api.call("POST", ACCOUNT, json=ADD)  # the 502 body is documented: validated
    assert reply.status == 502
    assert reply.errors == [{"message": "Bad Gateway", "field": "", "error_id": "10-50200"}]
    assert len(api.fake.account_ips("acct-1")) == 2
    (record,) = api.fake.log
    assert (record.status, record.applied, record.fault) == (502, True, "applied_error")
    assert api.fake.count("AddAccountIps", applied=True, status=502, account_id="acct-1") == 1


async def test_error_answers_the_status_and_changes_nothing(api: SpecClient) -> None:
    api.fake.script("CreateIpPool", Fault.error(500))
    reply = await api.call("POST", "/v3/send_ips/pools", json={"name": "pool"})
    assert (reply.status, reply.errors) == (
        500,
        [{"field": "", "message": "internal server error"}],
    )
    assert api.fake.pools() == []
    assert api.fake.count(applied=False, fault="error") == 1
    assert (await api.call("POST", "/v3/send_ips/pools", json={"name": "pool"})).status == 201


async def test_applied_drop_changes_the_state_and_never_replies(api: SpecClient) -> None:
    api.fake.script("AddAccountIps", Fault.applied_drop())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", ACCOUNT, json=ADD)
    assert len(api.fake.account_ips("acct-1")) == 2
    (record,) = api.fake.log
    assert (record.status, record.applied, record.fault) == (None, True, "applied_drop")
    # the session recovers on a new connection
    assert (await api.call("GET", ACCOUNT)).ok


async def test_drop_closes_the_connection_without_applying(api: SpecClient) -> None:
    api.fake.script("AddAccountIps", Fault.drop())
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", ACCOUNT, json=ADD)
    assert api.fake.account_ips("acct-1") == []
    assert api.fake.log[0].fault == "drop"
    assert api.fake.log[0].applied is False


async def test_slow_delays_the_normal_reply(api: SpecClient) -> None:
    api.fake.script("ListAccountIps", Fault.slow(0.03))
    started = time.monotonic()
    reply = await api.call("GET", ACCOUNT)
    assert reply.ok
    assert time.monotonic() - started >= 0.03
    (record,) = api.fake.log
    assert record.fault == "slow"
    assert record.answered_at - record.received_at >= 0.03


async def test_a_slow_reply_in_flight_does_not_hold_up_close() -> None:
    fake = FakeSendGrid()
    await fake.start()
    fake.script("ListAccountIps", Fault.slow(30))
    async with spec_client(fake) as api:
        request = asyncio.create_task(api.call("GET", ACCOUNT, check_response=False))
        await asyncio.sleep(0.02)
        started = time.monotonic()
        await fake.close()
        assert time.monotonic() - started < 2
        await asyncio.gather(request, return_exceptions=True)


async def test_html_answers_a_proxy_page(api: SpecClient) -> None:
    api.fake.script("AddAccountIps", Fault.html(504))
    api.fake.script("AddAccountIps", Fault.html(502, applied=True))
    first = await api.call("POST", ACCOUNT, json=ADD, check_response=False)
    assert first.status == 504
    assert first.headers["Content-Type"].startswith("text/html")
    assert b"<title>504 Gateway Timeout</title>" in first.body
    assert api.fake.account_ips("acct-1") == []
    second = await api.call("POST", ACCOUNT, json=ADD, check_response=False)
    assert second.status == 502
    assert len(api.fake.account_ips("acct-1")) == 2
    assert [record.fault for record in api.fake.log] == ["html", "applied_html"]
    assert "X-RateLimit-Limit" in second.headers


async def test_malformed_applies_and_cuts_the_json_short(api: SpecClient) -> None:
    api.fake.script("AddAccountIps", Fault.malformed())
    reply = await api.call("POST", ACCOUNT, json=ADD, check_response=False)
    assert reply.status == 201
    assert reply.headers["Content-Type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        reply.json()
    assert len(api.fake.account_ips("acct-1")) == 2
    assert api.fake.log[0].applied is True
    # an operation that answers 204 gets a 200 with broken JSON instead
    api.fake.script("RemoveAccountIps", Fault.malformed())
    ips = api.fake.account_ips("acct-1")
    removed = await api.call("DELETE", ACCOUNT, json={"ips": ips}, check_response=False)
    assert removed.status == 200
    with pytest.raises(json.JSONDecodeError):
        removed.json()
    assert api.fake.account_ips("acct-1") == []


async def test_on_a_read_an_applied_fault_acts_as_its_plain_twin(api: SpecClient) -> None:
    api.fake.script("ListAccountIps", Fault.applied_error(503))
    api.fake.script("ListAccountIps", Fault.applied_drop())
    assert (await api.call("GET", ACCOUNT)).status == 503
    assert (await api.call("GET", ACCOUNT)).status == 200  # aiohttp resent the dropped GET
    assert [(r.status, r.fault, r.applied) for r in api.fake.log] == [
        (503, "error", False),
        (None, "drop", False),
        (200, None, False),
    ]


async def test_aiohttp_itself_resends_a_dropped_idempotent_request(api: SpecClient) -> None:
    """Not the fake's doing, but what a client on aiohttp meets: aiohttp sends a GET, PUT or
    DELETE again by itself when the connection closes before the reply. A DELETE dropped
    after it was applied thus comes back as a 400: nothing is left to remove."""
    ips = api.fake.add_account("acct-1", ips=2)
    api.fake.script("RemoveAccountIps", Fault.applied_drop())
    reply = await api.call("DELETE", ACCOUNT, json={"ips": ips})
    assert (reply.status, reply.errors[0]["error_id"]) == (400, "10-40006")
    assert [(r.status, r.applied) for r in api.fake.records("RemoveAccountIps")] == [
        (None, True),
        (400, False),
    ]


async def test_an_applied_fault_on_a_refused_request_applies_nothing(api: SpecClient) -> None:
    api.fake.script("AddAccountIps", Fault.applied_error(502))
    reply = await api.call("POST", ACCOUNT, json={"count": 11, "region": "us"}, check_request=False)
    assert reply.status == 502
    assert api.fake.log[0].applied is False
    assert api.fake.account_ips("acct-1") == []


async def test_scripted_faults_queue_up_in_order(api: SpecClient) -> None:
    api.fake.script("ListAccountIps", Fault.error(500), times=2)
    api.fake.script("ListAccountIps", Fault.error(503))
    assert api.fake.pending_faults() == 3
    statuses = [(await api.call("GET", ACCOUNT)).status for _ in range(4)]
    assert statuses == [500, 500, 503, 200]
    assert api.fake.pending_faults() == 0


async def test_a_scripted_fault_can_wait_for_one_account(api: SpecClient) -> None:
    api.fake.script("AddAccountIps", Fault.error(500), account_id="acct-2")
    assert (await api.call("POST", ACCOUNT, json=ADD)).status == 201
    other = "/v3/partners/accounts/acct-2/ips"
    assert (await api.call("POST", other, json=ADD)).status == 500
    assert (await api.call("POST", other, json=ADD)).status == 201


async def test_refused_and_throttled_requests_do_not_use_up_a_scripted_fault(
    api: SpecClient,
) -> None:
    api.fake.script("ListAccountIps", Fault.error(500))
    api.fake.rate_limit_window(60)
    assert (await api.call("GET", ACCOUNT, check_response=False)).status == 429
    assert (await api.call("GET", ACCOUNT, key="SG.wrong", check_request=False)).status == 401
    assert api.fake.pending_faults() == 1
    api.fake.clear_faults()
    assert api.fake.pending_faults() == 0


async def _random_run(seed: int, calls: int = 60) -> list[tuple[int | None, str | None]]:
    rates = FaultRates(
        error=0.2, applied_error=0.2, applied_drop=0.1, slow=0.1, html=0.1, malformed=0.1,
        slow_delay=0.0,
    )  # fmt: skip
    async with FakeSendGrid(faults=rates, seed=seed) as fake, spec_client(fake) as api:
        for _ in range(calls):
            with contextlib.suppress(aiohttp.ServerDisconnectedError):
                await api.call(
                    "POST", ACCOUNT, json={"count": 1, "region": "us"}, check_response=False
                )
        outcomes = [(record.status, record.fault) for record in fake.log]
        assert len(fake.account_ips("acct-1")) == fake.count(applied=True)
    return outcomes


async def test_random_faults_repeat_under_the_same_seed() -> None:
    first, again, other = await _random_run(7), await _random_run(7), await _random_run(8)
    assert first == again
    assert first != other
    kinds = {fault for _, fault in first}
    assert kinds == {None, "error", "applied_error", "applied_drop", "slow", "html", "malformed"}
    assert {status for status, fault in first if fault == "error"} <= {500, 502, 503, 504}


async def test_random_faults_only_hit_the_operations_named() -> None:
    rates = FaultRates(error=1.0, statuses=(503,), operations=["AddAccountIps"])
    async with FakeSendGrid(faults=rates) as fake, spec_client(fake) as api:
        assert (await api.call("GET", ACCOUNT)).status == 200
        assert (await api.call("POST", ACCOUNT, json=ADD, check_response=False)).status == 503
        fake.faults = None
        assert (await api.call("POST", ACCOUNT, json=ADD)).status == 201


async def test_scripted_faults_come_before_random_ones() -> None:
    async with FakeSendGrid(faults=FaultRates(error=1.0, statuses=(500,))) as fake:
        fake.script("ListAccountIps", Fault.slow(0))
        async with spec_client(fake) as api:
            assert (await api.call("GET", ACCOUNT)).status == 200
            assert (await api.call("GET", ACCOUNT)).status == 500


def test_faults_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="error status"):
        Fault(FaultKind.ERROR)
    with pytest.raises(ValueError, match="error status"):
        Fault.error(200)
    with pytest.raises(ValueError, match="error status"):
        Fault(FaultKind.DROP, 500)
    with pytest.raises(ValueError, match="more than 1"):
        FaultRates(error=0.6, applied_error=0.6)
    with pytest.raises(ValueError, match="between 0 and 1"):
        FaultRates(slow=-0.1)
    with pytest.raises(ValueError, match="unknown operationId"):
        FaultRates(error=0.1, operations=["AddIps"])
    with pytest.raises(ValueError, match="statuses"):
        FaultRates(statuses=())
    fake = FakeSendGrid()
    with pytest.raises(ValueError, match="unknown operationId"):
        fake.script("AddIps", Fault.error())
    with pytest.raises(ValueError, match="at least 1"):
        fake.script("AddIp", Fault.error(), times=0)


def test_fault_names() -> None:
    names = [
        Fault.error().name,
        Fault.applied_error().name,
        Fault.drop().name,
        Fault.applied_drop().name,
        Fault.slow().name,
        Fault.html().name,
        Fault.html(applied=True).name,
        Fault.malformed().name,
        Fault.applied_error().for_read().name,
        Fault.malformed().for_read().name,
    ]
    assert names == [
        "error",
        "applied_error",
        "drop",
        "applied_drop",
        "slow",
        "html",
        "applied_html",
        "malformed",
        "error",
        "malformed",
    ]
