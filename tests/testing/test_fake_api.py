"""FakeSendGrid's own interface: lifecycle, loopback only, the log and the state accessors."""

from __future__ import annotations

import logging

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from sendgrid_ipam.testing import FakeSendGrid, Fault, PoolView
from tests.testing import spec_client

ACCOUNT = "/v3/partners/accounts/acct-1/ips"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.25

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com", ""])
def test_only_loopback_hosts_are_accepted(host: str) -> None:
    with pytest.raises(ValueError, match="loopback"):
        FakeSendGrid(host=host)


async def test_lifecycle() -> None:
    fake = FakeSendGrid(host="localhost")
    with pytest.raises(RuntimeError, match="not started"):
        _ = fake.url
    assert "not started" in repr(fake)
    await fake.start()
    try:
        assert fake.url.startswith("http://127.0.0.1:")
        with pytest.raises(RuntimeError, match="already started"):
            await fake.start()
    finally:
        await fake.close()
    await fake.close()  # twice is fine


async def test_the_app_also_runs_under_aiohttps_test_server() -> None:
    fake = FakeSendGrid()
    fake.script("ListAccountIps", Fault.slow(0.01))
    async with TestServer(fake.app) as server, aiohttp.ClientSession() as session:
        headers = {"Authorization": "Bearer SG.test"}
        async with session.get(server.make_url(ACCOUNT), headers=headers) as reply:
            assert reply.status == 200
    assert fake.log[0].fault == "slow"


async def test_the_log_records_each_request_without_the_key() -> None:
    clock = Clock()
    async with FakeSendGrid(api_key="SG.secret-key", clock=clock) as fake, spec_client(fake) as api:
        await api.call(
            "GET",
            ACCOUNT,
            query={"limit": "5"},
            headers={"On-Behalf-Of": "subuser-7"},
            check_request=False,  # On-Behalf-Of is not declared by the spec
        )
        await api.call("POST", ACCOUNT, json={"count": 1, "region": "eu"})
        (listed, added) = fake.log
    assert listed.operation_id == "ListAccountIps"
    assert (listed.method, listed.path, listed.query) == ("GET", ACCOUNT, {"limit": "5"})
    assert (listed.account_id, listed.on_behalf_of) == ("acct-1", "subuser-7")
    assert (listed.status, listed.applied, listed.fault) == (200, False, None)
    assert listed.received_at < listed.answered_at < added.received_at
    assert (added.status, added.applied, added.on_behalf_of) == (201, True, None)
    assert all("secret" not in repr(record) for record in fake.log)
    assert "secret" not in repr(fake)
    assert fake.count() == 2
    assert fake.count("AddAccountIps", applied=True, account_id="acct-1", status=201) == 1
    assert fake.count(account_id="acct-2") == 0
    assert fake.records(applied=False) == [listed]
    fake.reset_log()
    assert fake.log == []


async def test_state_accessors_return_snapshots() -> None:
    clock = Clock()
    async with FakeSendGrid(ipam_ips=2, accounts=[], clock=clock) as fake, spec_client(fake) as api:
        assert fake.accounts == ()
        assert fake.add_account("acct-9", ips=2, region="eu") == ["192.0.2.3", "192.0.2.4"]
        assert fake.account_ips("acct-9") == ["192.0.2.4", "192.0.2.3"]
        with pytest.raises(KeyError):
            fake.account_ips("acct-1")
        ip = fake.ipam_ips()[0]
        await api.call("POST", f"/v3/send_ips/ips/{ip}/subusers:batchAdd", json={"subusers": ["5"]})
        await api.call("POST", "/v3/send_ips/pools", json={"name": "pool", "ips": [ip]})
        details = fake.ipam_ip(ip)
        assert details["pools"] == [{"id": "1", "name": "pool"}]
        assert details["subusers"] == ["5"]
        assert details["region"] == "us"
        details["subusers"].append("changed")
        assert fake.ipam_ip(ip)["subusers"] == ["5"]
        assert fake.pools() == [PoolView("1", "pool", (ip,))]
        seeded = [fake.ipam_ip(seeded)["added_at"] for seeded in fake.ipam_ips()]
        assert seeded == sorted(seeded)


async def test_a_dropped_connection_leaves_no_trace_in_the_server_log(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="aiohttp")
    async with FakeSendGrid() as fake, spec_client(fake) as api:
        fake.script("AddAccountIps", Fault.applied_drop(), times=3)
        for _ in range(3):
            with pytest.raises(aiohttp.ServerDisconnectedError):
                await api.call("POST", ACCOUNT, json={"count": 1, "region": "us"})
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert not any(record.exc_info for record in caplog.records)
