"""Late-landing faults: the failure is answered now, the write lands `delay` seconds later."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from sendgrid_ipam.testing import FakeSendGrid, Fault, FaultKind, FaultRates
from sendgrid_ipam.testing.__main__ import _fault_rates, build_parser
from tests.testing import SpecClient, spec_client

ACCOUNT = "/v3/partners/accounts/acct-1/ips"
ADD = {"count": 2, "region": "us"}


@pytest.fixture
async def api() -> AsyncIterator[SpecClient]:
    async with FakeSendGrid(accounts=["acct-1", "acct-2"]) as fake, spec_client(fake) as client:
        yield client


async def _listed(api: SpecClient) -> list[str]:
    reply = await api.call("GET", ACCOUNT, query={"limit": "100"})
    return [item["ip"] for item in reply.json()["result"]]


async def test_a_late_error_answers_now_and_the_ips_appear_only_after_the_delay(
    api: SpecClient,
) -> None:
    api.fake.script("AddAccountIps", Fault.late(502, delay=0.2))
    started = time.monotonic()
    reply = await api.call("POST", ACCOUNT, json=ADD)  # the 502 body is documented: validated
    assert reply.errors == [{"message": "Bad Gateway", "field": "", "error_id": "10-50200"}]
    assert api.fake.pending_late == 1
    assert api.fake.account_ips("acct-1") == []
    assert await _listed(api) == []
    (record,) = api.fake.records("AddAccountIps")
    assert (record.status, record.applied, record.fault, record.landed_at) == (
        502, False, "late_error", None,
    )  # fmt: skip

    await api.fake.settle()
    assert time.monotonic() - started >= 0.2
    assert api.fake.pending_late == 0
    held = api.fake.account_ips("acct-1")
    assert len(held) == 2
    assert await _listed(api) == held
    (record,) = api.fake.records("AddAccountIps")
    assert record.applied is True
    assert record.landed_at is not None
    assert record.landed_at - record.answered_at >= 0.15
    assert api.fake.count("AddAccountIps", applied=True) == 1


async def test_a_late_gateway_page_and_a_late_drop_land_too(api: SpecClient) -> None:
    api.fake.script("AddAccountIps", Fault.late(504, delay=0.05, html=True))
    api.fake.script("AddAccountIps", Fault.late_drop(0.05))
    page = await api.call("POST", ACCOUNT, json=ADD, check_response=False)
    assert page.status == 504
    assert page.headers["Content-Type"].startswith("text/html")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await api.call("POST", ACCOUNT, json=ADD)
    assert api.fake.account_ips("acct-1") == []
    assert api.fake.pending_late == 2
    await api.fake.settle()
    assert len(api.fake.account_ips("acct-1")) == 4
    records = api.fake.records("AddAccountIps")
    assert [(r.status, r.fault, r.applied) for r in records] == [
        (504, "late_html", True),
        (None, "late_drop", True),
    ]


async def test_every_write_can_land_late(api: SpecClient) -> None:
    api.fake.script("CreateIpPool", Fault.late(500, delay=0.05))
    api.fake.script("AddIp", Fault.late(503, delay=0.05))
    body = {"is_auto_warmup": False, "is_parent_assigned": True}
    assert (await api.call("POST", "/v3/send_ips/pools", json={"name": "late"})).status == 500
    added = await api.call("POST", "/v3/send_ips/ips", json=body, check_response=False)
    assert added.status == 503
    assert (api.fake.pools(), api.fake.ipam_ips()) == ([], [])
    await api.fake.settle()
    assert [pool.name for pool in api.fake.pools()] == ["late"]
    assert len(api.fake.ipam_ips()) == 1
    listed = await api.call("GET", "/v3/send_ips/pools")
    assert [pool["name"] for pool in listed.json()["result"]] == ["late"]


async def test_a_late_write_the_api_refuses_when_it_lands_changes_nothing(api: SpecClient) -> None:
    api.fake.script("AddAccountIps", Fault.late(502, delay=0.01))
    bad = {"count": 11, "region": "us"}
    assert (await api.call("POST", ACCOUNT, json=bad, check_request=False)).status == 502
    await api.fake.settle()
    assert api.fake.account_ips("acct-1") == []
    (record,) = api.fake.log
    assert record.applied is False
    assert record.landed_at is not None


async def test_on_a_read_a_late_fault_acts_as_its_plain_twin(api: SpecClient) -> None:
    api.fake.script("ListAccountIps", Fault.late(503, delay=30))
    assert (await api.call("GET", ACCOUNT)).status == 503
    assert api.fake.pending_late == 0
    assert api.fake.log[0].fault == "error"


async def test_land_late_writes_lands_them_now_oldest_first(api: SpecClient) -> None:
    api.fake.script("AddAccountIps", Fault.late(502, delay=30))
    api.fake.script("AddAccountIps", Fault.late(502, delay=20), account_id="acct-2")
    await api.call("POST", ACCOUNT, json=ADD)
    await api.call("POST", "/v3/partners/accounts/acct-2/ips", json={"count": 1, "region": "eu"})
    assert api.fake.land_late_writes() == 2
    assert api.fake.land_late_writes() == 0
    await asyncio.wait_for(api.fake.settle(), 0.1)  # nothing pending: returns at once
    # the shorter delay would have landed first, so its address was handed out first
    assert api.fake.account_ips("acct-2") == ["192.0.2.1"]
    assert api.fake.account_ips("acct-1") == ["192.0.2.3", "192.0.2.2"]


async def test_reset_log_before_a_write_lands_keeps_the_new_log_intact(api: SpecClient) -> None:
    api.fake.script("AddAccountIps", Fault.late(502, delay=30))
    await api.call("POST", ACCOUNT, json=ADD)
    api.fake.reset_log()
    await api.call("GET", ACCOUNT)
    api.fake.land_late_writes()
    assert len(api.fake.account_ips("acct-1")) == 2
    assert [(r.operation_id, r.applied) for r in api.fake.log] == [("ListAccountIps", False)]


async def test_closing_the_fake_lands_pending_writes_at_once() -> None:
    fake = FakeSendGrid()
    await fake.start()
    fake.script("AddAccountIps", Fault.late(504, delay=30))
    async with spec_client(fake) as api:
        await api.call("POST", ACCOUNT, json=ADD)
    waiter = asyncio.create_task(fake.settle())
    started = time.monotonic()
    await fake.close()
    assert time.monotonic() - started < 1
    await asyncio.wait_for(waiter, 0.1)
    assert fake.pending_late == 0
    assert len(fake.account_ips("acct-1")) == 2
    assert fake.count("AddAccountIps", applied=True) == 1


async def _late_run(seed: int) -> tuple[list[tuple[int | None, str | None]], FakeSendGrid]:
    rates = FaultRates(late=0.6, statuses=(502, 504), late_delay_min=0.01, late_delay_max=0.05)
    async with FakeSendGrid(faults=rates, seed=seed) as fake, spec_client(fake) as api:
        for _ in range(30):
            with contextlib.suppress(aiohttp.ServerDisconnectedError):
                await api.call(
                    "POST", ACCOUNT, json={"count": 1, "region": "us"}, check_response=False
                )
        late = fake.count(fault="late_error") + fake.count(fault="late_html")
        late += fake.count(fault="late_drop")
        assert fake.pending_late <= late
        await fake.settle()
        assert len(fake.account_ips("acct-1")) == fake.count(applied=True) == 30
        for record in fake.log:
            if record.landed_at is not None:
                assert 0.005 <= record.landed_at - record.answered_at < 0.5
        return [(record.status, record.fault) for record in fake.log], fake


async def test_random_late_faults_take_every_shape_and_repeat_under_a_seed() -> None:
    first, fake = await _late_run(3)
    again, _ = await _late_run(3)
    assert first == again
    faults = {fault for _, fault in first}
    assert faults == {None, "late_error", "late_html", "late_drop"}
    assert {status for status, fault in first if fault == "late_error"} <= {502, 504}
    assert fake.pending_late == 0


def test_late_faults_are_checked_when_built() -> None:
    with pytest.raises(ValueError, match="can land late"):
        Fault(FaultKind.SLOW, delay=1, lands_late=True)
    with pytest.raises(ValueError, match="can land late"):
        Fault(FaultKind.ERROR, 502, applied=True, lands_late=True)
    with pytest.raises(ValueError, match="delay"):
        Fault.late(502, delay=-1)
    with pytest.raises(ValueError, match="late_delay_min"):
        FaultRates(late=0.1, late_delay_min=2.0, late_delay_max=1.0)
    with pytest.raises(ValueError, match="more than 1"):
        FaultRates(late=0.6, error=0.6)
    assert [Fault.late().name, Fault.late(html=True).name, Fault.late_drop().name] == [
        "late_error", "late_html", "late_drop",
    ]  # fmt: skip
    assert Fault.late(502, delay=5).for_read() == Fault.error(502)


def test_the_standalone_server_takes_late_rates_and_delays() -> None:
    args = build_parser().parse_args(["--fault-late", "0.2", "--late-delay", "0.1", "0.4"])
    rates = _fault_rates(args)
    assert rates is not None
    assert (rates.late, rates.late_delay_min, rates.late_delay_max) == (0.2, 0.1, 0.4)
