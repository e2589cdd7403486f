"""A walk through all 18 operations: every request and every reply validates against the specs."""

from __future__ import annotations

from sendgrid_ipam.testing import FakeSendGrid
from tests.openapi_support import load_spec
from tests.testing import spec_client

ACCOUNT = "/v3/partners/accounts/acct-1/ips"


def _all_operation_ids() -> set[str]:
    return {
        operation["operationId"]
        for name in ("ipam", "provisioning")
        for item in load_spec(name)["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


async def test_every_operation_round_trips_within_the_spec() -> None:
    async with FakeSendGrid(ipam_ips=3) as fake, spec_client(fake) as api:
        # IP Provisioning
        added = await api.call("POST", ACCOUNT, json={"count": 3, "region": "eu"})
        assert added.status == 201
        ips = added.json()["ips"]
        assert added.json()["region"] == "eu"
        listed = await api.call("GET", ACCOUNT, query={"limit": "2"})
        assert listed.json() == {
            "result": [{"ip": ips[2], "region": "eu"}, {"ip": ips[1], "region": "eu"}],
            "pages": {"last": ips[1]},
        }
        rest = await api.call("GET", ACCOUNT, query={"limit": "2", "offset": ips[1]})
        assert rest.json() == {"result": [{"ip": ips[0], "region": "eu"}], "pages": {}}
        removed = await api.call("DELETE", ACCOUNT, json={"ips": [ips[0]]})
        assert (removed.status, removed.body) == (204, b"")
        assert fake.account_ips("acct-1") == [ips[2], ips[1]]

        # IPs
        new = await api.call(
            "POST",
            "/v3/send_ips/ips",
            json={
                "is_auto_warmup": True,
                "is_parent_assigned": True,
                "subusers": ["12345"],
                "region": "eu",
                "include_region": True,
            },
        )
        assert new.status == 201
        ip = new.json()["ip"]
        assert new.json() == {
            "ip": ip,
            "is_auto_warmup": True,
            "is_parent_assigned": True,
            "subusers": ["12345"],
            "region": "eu",
        }
        page = await api.call(
            "GET", "/v3/send_ips/ips", query={"limit": "2", "include_region": "true"}
        )
        after_key = page.json()["_metadata"]["next_params"]["after_key"]
        assert isinstance(after_key, str)
        filtered = await api.call(
            "GET",
            "/v3/send_ips/ips",
            query={
                "after_key": after_key,
                "is_leased": "true",
                "is_enabled": "true",
                "start_added_at": "0",
                "end_added_at": "9999999999",
                "region": "all",
            },
        )
        assert [item["ip"] for item in filtered.json()["result"]] == fake.ipam_ips()[2:]
        detail = await api.call("GET", f"/v3/send_ips/ips/{ip}", query={"include_region": "true"})
        assert detail.json()["region"] == "eu"
        assert detail.json()["updated_at"] is None
        updated = await api.call(
            "PATCH", f"/v3/send_ips/ips/{ip}", json={"is_auto_warmup": False, "is_enabled": True}
        )
        assert updated.json() == {
            "ip": ip,
            "is_auto_warmup": False,
            "is_parent_assigned": True,
            "is_enabled": True,
        }
        assert isinstance(fake.ipam_ip(ip)["updated_at"], int)
        subusers = f"/v3/send_ips/ips/{ip}/subusers"
        batch = await api.call("POST", f"{subusers}:batchAdd", json={"subusers": ["67890", "1"]})
        assert batch.json() == {"ip": ip, "subusers": ["12345", "67890", "1"]}
        first = await api.call("GET", subusers, query={"limit": "2"})
        assert first.json()["result"] == ["12345", "67890"]
        cursor = first.json()["_metadata"]["next_params"]["after_key"]
        second = await api.call("GET", subusers, query={"limit": "2", "after_key": cursor})
        assert second.json()["result"] == ["1"]
        assert second.json()["_metadata"]["next_params"]["after_key"] is None
        gone = await api.call("POST", f"{subusers}:batchDelete", json={"subusers": ["1"]})
        assert gone.status == 204
        assert fake.ipam_ip(ip)["subusers"] == ["12345", "67890"]

        # pools
        created = await api.call(
            "POST", "/v3/send_ips/pools", json={"name": "transactional", "ips": [ip, ips[1]]}
        )
        assert created.status == 201
        pool_id = created.json()["id"]
        assert created.json() == {"name": "transactional", "id": pool_id, "ips": [ips[1], ip]}
        pools = await api.call("GET", "/v3/send_ips/pools", query={"include_region": "true"})
        assert pools.json()["result"] == [
            {
                "name": "transactional",
                "id": pool_id,
                "ips_preview": [ips[1], ip],
                "total_ip_count": 2,
                "regions": ["eu"],
            }
        ]
        pool = f"/v3/send_ips/pools/{pool_id}"
        got = await api.call("GET", pool, query={"include_region": "true"})
        assert got.json()["ip_count_by_region"] == [{"region": "eu", "count": 2}]
        renamed = await api.call("PUT", pool, json={"name": "marketing"})
        assert renamed.json() == {"name": "marketing", "id": pool_id}
        more = await api.call("POST", f"{pool}/ips:batchAdd", json={"ips": [fake.ipam_ips()[0]]})
        assert more.json()["ips"] == [fake.ipam_ips()[0], ips[1], ip]
        members = await api.call("GET", f"{pool}/ips", query={"include_region": "true"})
        assert members.json()["result"][0] == {
            "ip": fake.ipam_ips()[0],
            "pools": [{"id": pool_id, "name": "marketing"}],
            "region": "us",
        }
        in_pool = await api.call("GET", "/v3/send_ips/ips", query={"pool": pool_id})
        assert [item["ip"] for item in in_pool.json()["result"]] == [fake.ipam_ips()[0], ip]
        out = await api.call("POST", f"{pool}/ips:batchDelete", json={"ips": [ips[1]]})
        assert out.status == 204
        deleted = await api.call("DELETE", pool)
        assert deleted.status == 204
        assert fake.pools() == []

    walked = {record.operation_id for record in fake.log}
    assert walked == _all_operation_ids()
    assert len(walked) == 18
    assert all(record.status is not None and record.status < 300 for record in fake.log)
