"""Each rule of the specs: bad requests get the spec's status and error body, state unchanged."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator
from typing import Any

import pytest
from yarl import URL

from sendgrid_ipam.testing import FakeSendGrid
from tests.testing import SpecClient, spec_client

ACCOUNT = "/v3/partners/accounts/acct-1/ips"
IP1, IP2, IP3 = "192.0.2.1", "192.0.2.2", "192.0.2.3"  # the seeded IPAM IPs, in order
POOL = "/v3/send_ips/pools/1"  # "existing", holding IP1
UNKNOWN_IP = "10.0.0.1"
NON_ROUTABLE = [
    ipaddress.IPv4Network(network)
    for network in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "198.18.0.0/15")
]


@pytest.fixture
async def api() -> AsyncIterator[SpecClient]:
    async with FakeSendGrid(ipam_ips=3) as fake, spec_client(fake) as client:
        await client.call("POST", "/v3/send_ips/pools", json={"name": "existing", "ips": [IP1]})
        fake.reset_log()
        yield client


# fmt: off
IPAM_REFUSALS: list[Any] = [
    # (id, method, path, query, body, field, message)
    ("name-dot", "POST", "/v3/send_ips/pools", None, {"name": ".x"}, "name",
     "cannot start with a dot or a space"),
    ("name-space", "PUT", POOL, None, {"name": " spaced"}, "name",
     "cannot start with a dot or a space"),
    ("name-short", "POST", "/v3/send_ips/pools", None, {"name": "x"}, "name",
     "needs to be between 2 to 64 characters long"),
    ("name-long", "POST", "/v3/send_ips/pools", None, {"name": "x" * 65}, "name",
     "needs to be between 2 to 64 characters long"),
    ("name-missing", "POST", "/v3/send_ips/pools", None, {"ips": []}, "name",
     "not found in the request body"),
    ("name-duplicate", "POST", "/v3/send_ips/pools", None, {"name": "existing"}, "name",
     "already exists"),
    ("pool-101-ips", "POST", "/v3/send_ips/pools", None,
     {"name": "big", "ips": [f"10.0.{n // 256}.{n % 256}" for n in range(101)]}, "ips",
     "the number of IPs must be between 1 and 100"),
    ("unknown-ip-in-pool", "POST", "/v3/send_ips/pools", None,
     {"name": "new", "ips": [IP2, UNKNOWN_IP]}, "ips",
     f"unable to verify IPs assignability: {UNKNOWN_IP}"),
    ("batch-add-unknown", "POST", f"{POOL}/ips:batchAdd", None, {"ips": [UNKNOWN_IP]}, "ips",
     f"unable to verify IPs assignability: {UNKNOWN_IP}"),
    ("batch-add-empty", "POST", f"{POOL}/ips:batchAdd", None, {"ips": []}, "ips",
     "the number of IPs must be between 1 and 100"),
    ("batch-add-missing", "POST", f"{POOL}/ips:batchAdd", None, {}, "ips",
     "not found in the request body"),
    ("batch-delete-not-in-pool", "POST", f"{POOL}/ips:batchDelete", None, {"ips": [IP2, IP3]},
     "ips", f"not found in pool \u2018existing\u2019: {IP2}, {IP3}"),
    ("poolid-type", "GET", "/v3/send_ips/pools/abc", None, None, "poolid",
     "must be a numeric value"),
    ("poolid-unknown", "DELETE", "/v3/send_ips/pools/999", None, None, "poolid", "not found"),
    ("update-no-field", "PATCH", f"/v3/send_ips/ips/{IP1}", None, {}, "",
     "at least one of the following is required: is_enabled, is_auto_warmup, is_parent_assigned"),
    ("update-not-bool", "PATCH", f"/v3/send_ips/ips/{IP1}", None, {"is_enabled": "yes"},
     "is_enabled", "must be one of the following: true, false"),
    ("ip-invalid", "GET", "/v3/send_ips/ips/not-an-ip", None, None, "ip", "invalid IP address"),
    ("ip-unknown", "GET", f"/v3/send_ips/ips/{UNKNOWN_IP}", None, None, "ip", "not found"),
    ("subusers-invalid-ip", "GET", "/v3/send_ips/ips/x/subusers", None, None, "",
     "invalid IP address"),
    ("subusers-empty", "POST", f"/v3/send_ips/ips/{IP1}/subusers:batchAdd", None,
     {"subusers": []}, "subusers", "must not be empty"),
    ("subusers-limit", "GET", f"/v3/send_ips/ips/{IP1}/subusers", {"limit": "101"}, None,
     "limit", "should be > 0 and <= 100"),
    ("add-ip-missing-flag", "POST", "/v3/send_ips/ips", None, {"is_parent_assigned": True},
     "is_auto_warmup", "not found in the request body"),
    ("add-ip-101-subusers", "POST", "/v3/send_ips/ips", None,
     {"is_auto_warmup": True, "is_parent_assigned": True, "subusers": [str(n) for n in range(101)]},
     "subusers", "cannot assign more than 100 subusers per call"),
    ("pool-with-parent-assigned", "GET", "/v3/send_ips/ips",
     {"pool": "1", "is_parent_assigned": "true"}, None, "pool",
     "cannot be used with \u2018is_parent_assigned\u2019"),
    ("after-and-before", "GET", "/v3/send_ips/ips", {"after_key": "1", "before_key": "3"}, None,
     "after_key", "cannot be used with \u2018before_key\u2019"),
    ("list-ip-limit-high", "GET", "/v3/send_ips/ips", {"limit": "5001"}, None, "limit",
     "should be > 0 and \u2264 5000"),
    ("list-ip-limit-zero", "GET", "/v3/send_ips/ips", {"limit": "0"}, None, "limit",
     "should be > 0 and \u2264 5000"),
    ("list-pools-limit", "GET", "/v3/send_ips/pools", {"limit": "101"}, None, "limit",
     "should be > 0 and <= 100"),
    ("pool-ips-limit", "GET", f"{POOL}/ips", {"limit": "101"}, None, "limit",
     "should be > 0 and <= 100"),
    ("after-key-type", "GET", "/v3/send_ips/pools", {"after_key": "x"}, None, "after_key",
     "must be a numeric value"),
    ("after-key-negative", "GET", "/v3/send_ips/pools", {"after_key": "-1"}, None, "after_key",
     "must be >= 0"),
    ("is-leased-value", "GET", "/v3/send_ips/ips", {"is_leased": "yes"}, None, "is_leased",
     "must be one of the following: true, false"),
    ("pool-type", "GET", "/v3/send_ips/ips", {"pool": "x"}, None, "pool", "must be numeric"),
    ("pool-unknown", "GET", "/v3/send_ips/ips", {"pool": "9"}, None, "pool", "not found"),
    ("start-added-at-type", "GET", "/v3/send_ips/ips", {"start_added_at": "x"}, None,
     "start_added_at", "must be numeric"),
]
# fmt: on


@pytest.mark.parametrize(
    ("method", "path", "query", "body", "field", "message"),
    [pytest.param(*case[1:], id=case[0]) for case in IPAM_REFUSALS],
)
async def test_ipam_refusals_answer_the_specs_error(
    api: SpecClient,
    method: str,
    path: str,
    query: dict[str, str] | None,
    body: Any,
    field: str,
    message: str,
) -> None:
    pools_before, ips_before = api.fake.pools(), [api.fake.ipam_ip(ip) for ip in (IP1, IP2, IP3)]
    reply = await api.call(method, path, query=query, json=body, check_request=False)
    assert reply.status == 400
    assert reply.errors == [{"field": field, "message": message}]
    assert api.fake.pools() == pools_before
    assert [api.fake.ipam_ip(ip) for ip in (IP1, IP2, IP3)] == ips_before
    assert api.fake.count(applied=True) == 0


async def test_invalid_json_is_the_specs_parse_error(api: SpecClient) -> None:
    for method, path in [("POST", "/v3/send_ips/pools"), ("PATCH", f"/v3/send_ips/ips/{IP1}")]:
        reply = await api.call(method, path, data=b"{not json", check_request=False)
        assert reply.status == 400
        assert reply.errors == [
            {"field": "", "message": "failed to parse the request body as a JSON payload"}
        ]
    reply = await api.call("POST", ACCOUNT, data=b"[]", check_request=False)
    assert reply.errors[0]["error_id"] == "10-40000"


async def test_the_101st_pool_is_refused(api: SpecClient) -> None:
    for number in range(2, 101):
        assert (await api.call("POST", "/v3/send_ips/pools", json={"name": f"p{number}"})).ok
    reply = await api.call("POST", "/v3/send_ips/pools", json={"name": "p101"})
    assert reply.status == 400
    assert reply.errors == [{"field": "", "message": "100 pools limit has been reached"}]
    assert len(api.fake.pools()) == 100


async def test_a_pool_cannot_grow_past_100_ips(api: SpecClient) -> None:
    api.fake.add_account("acct-1", ips=100)
    ips = api.fake.account_ips("acct-1")
    assert (await api.call("POST", f"{POOL}/ips:batchAdd", json={"ips": ips[:98]})).ok
    reply = await api.call("POST", f"{POOL}/ips:batchAdd", json={"ips": ips[98:]})
    assert reply.status == 400
    assert reply.errors == [
        {
            "field": "ips",
            "message": "the total number of IPs per pool cannot exceed 100. "
            "current IP count in \u2018existing\u2019 is \u201899\u2019",
        }
    ]
    assert len(api.fake.pools()[0].ips) == 99


async def test_renaming_a_pool_to_its_own_name_is_fine_but_not_to_another(api: SpecClient) -> None:
    assert (await api.call("PUT", POOL, json={"name": "existing"})).ok
    await api.call("POST", "/v3/send_ips/pools", json={"name": "other"})
    reply = await api.call("PUT", POOL, json={"name": "other"})
    assert reply.errors == [{"field": "name", "message": "already exists"}]


PROVISIONING_REFUSALS: list[Any] = [
    # (id, method, query, body, field, error_id)
    ("count-11", "POST", None, {"count": 11, "region": "us"}, "count", "10-40001"),
    ("count-0", "POST", None, {"count": 0, "region": "us"}, "count", "10-40001"),
    ("count-text", "POST", None, {"count": "2", "region": "us"}, "count", "10-40001"),
    ("count-bool", "POST", None, {"count": True, "region": "us"}, "count", "10-40001"),
    ("region-xx", "POST", None, {"count": 1, "region": "xx"}, "region", "10-40004"),
    ("region-missing", "POST", None, {"count": 1}, "region", "10-40004"),
    ("remove-11", "DELETE", None, {"ips": [f"192.0.2.{n}" for n in range(11)]}, "ips", "10-40005"),
    ("remove-none", "DELETE", None, {"ips": []}, "ips", "10-40005"),
    ("remove-invalid", "DELETE", None, {"ips": ["nope"]}, "ips", "10-40002"),
    ("remove-not-held", "DELETE", None, {"ips": [IP1]}, "ips", "10-40006"),
    ("limit-0", "GET", {"limit": "0"}, None, "limit", "10-40003"),
    ("limit-5001", "GET", {"limit": "5001"}, None, "limit", "10-40003"),
    ("offset-invalid", "GET", {"offset": "x"}, None, "offset", "10-40002"),
    ("offset-unknown", "GET", {"offset": UNKNOWN_IP}, None, "offset", "10-40008"),
]


@pytest.mark.parametrize(
    ("method", "query", "body", "field", "error_id"),
    [pytest.param(*case[1:], id=case[0]) for case in PROVISIONING_REFUSALS],
)
async def test_provisioning_refusals_answer_400_with_an_error_id(
    api: SpecClient,
    method: str,
    query: dict[str, str] | None,
    body: Any,
    field: str,
    error_id: str,
) -> None:
    held = api.fake.add_account("acct-1", ips=2)
    reply = await api.call(method, ACCOUNT, query=query, json=body, check_request=False)
    assert reply.status == 400
    (error,) = reply.errors
    assert (error["field"], error["error_id"]) == (field, error_id)
    assert error["message"]
    assert api.fake.account_ips("acct-1") == held[::-1]


async def test_an_unknown_account_is_404(api: SpecClient) -> None:
    for method, body in [("GET", None), ("POST", {"count": 1, "region": "us"}), ("DELETE", {})]:
        reply = await api.call(
            method, "/v3/partners/accounts/nobody/ips", json=body, check_request=body != {}
        )
        assert reply.status == 404
        assert reply.errors == [
            {"message": "Account not found", "field": "", "error_id": "10-40400"}
        ]
    api.fake.add_account("nobody")
    assert (await api.call("GET", "/v3/partners/accounts/nobody/ips")).ok


@pytest.mark.parametrize("key", [None, "SG.wrong"], ids=["no-key", "wrong-key"])
async def test_authentication_failures_are_401_in_each_apis_shape(
    api: SpecClient, key: str | None
) -> None:
    ipam = await api.call("GET", "/v3/send_ips/pools", key=key, check_request=False)
    assert ipam.status == 401
    assert ipam.errors == [{"field": "", "message": "authorization required"}]
    partner = await api.call("GET", ACCOUNT, key=key, check_request=False)
    assert partner.status == 401
    assert partner.errors == [
        {"message": "Failed to authenticate user", "field": "", "error_id": "10-40100"}
    ]
    assert [record.status for record in api.fake.log] == [401, 401]
    assert "X-RateLimit-Remaining" in partner.headers


async def test_a_basic_or_malformed_authorization_header_is_401(api: SpecClient) -> None:
    for header in ["Basic U0cudGVzdDo=", "Bearer", "bearer SG.test", "Bearer SG.tést"]:
        reply = await api.call(
            "GET",
            "/v3/send_ips/pools",
            key=None,
            headers={"Authorization": header},
            check_request=False,
        )
        assert reply.status == 401


async def test_addresses_are_non_routable_never_repeat_and_run_out() -> None:
    async with FakeSendGrid(ipam_ips=3) as fake, spec_client(fake) as api:
        assert fake.ipam_ips() == ["192.0.2.1", "192.0.2.2", "192.0.2.3"]
        filler = fake.add_account("filler", ips=fake.addresses_left)
        assert fake.addresses_left == 0
        every = [*fake.ipam_ips(), *filler]
        assert len(set(every)) == len(every)
        sample = every[:800] + every[800::499] + every[-3:]  # all the /24s, then spread out
        assert all(any(ipaddress.IPv4Address(ip) in net for net in NON_ROUTABLE) for ip in sample)
        reply = await api.call(
            "POST", "/v3/send_ips/ips", json={"is_auto_warmup": False, "is_parent_assigned": True}
        )
        assert reply.errors == [{"field": "", "message": "No IPs remaining"}]
        reply = await api.call("POST", ACCOUNT, json={"count": 1, "region": "us"})
        assert (reply.status, reply.errors[0]["error_id"]) == (400, "10-40007")
        with pytest.raises(ValueError, match="only 0 addresses are left"):
            fake.add_account("more", ips=1)
    with pytest.raises(ValueError, match="ipam_ips must be at most"):
        FakeSendGrid(ipam_ips=FakeSendGrid().addresses_left + 1)


async def test_unknown_paths_and_methods_answer_json_with_rate_headers(api: SpecClient) -> None:
    missing = await api.call("GET", "/v3/nothing", check_request=False, check_response=False)
    assert (missing.status, missing.errors) == (404, [{"field": "", "message": "not found"}])
    wrong = await api.call("PUT", ACCOUNT, check_request=False, check_response=False)
    assert wrong.status == 405
    assert wrong.errors[0]["error_id"] == "10-40500"
    assert "X-RateLimit-Reset" in wrong.headers
    assert [record.operation_id for record in api.fake.log] == [None, None]


async def test_a_percent_encoded_colon_does_not_reach_the_operation(api: SpecClient) -> None:
    url = URL(f"{api.fake.url}{POOL}/ips%3AbatchAdd", encoded=True)
    headers = {"Authorization": "Bearer SG.test"}
    async with api.session.post(url, json={"ips": [IP2]}, headers=headers) as response:
        assert response.status == 404
    assert api.fake.pools()[0].ips == (IP1,)
    assert api.fake.log[-1].path.endswith("/ips%3AbatchAdd")


# pagination
async def _walk_after_key(
    api: SpecClient, path: str, query: dict[str, str]
) -> tuple[list[Any], list[int]]:
    items: list[Any] = []
    sizes: list[int] = []
    cursor = None
    while True:
        page_query = query | ({"after_key": cursor} if cursor else {})
        reply = (await api.call("GET", path, query=page_query)).json()
        items += reply["result"]
        sizes.append(len(reply["result"]))
        cursor = reply["_metadata"]["next_params"]["after_key"]
        if cursor is None:
            return items, sizes


async def test_after_key_cursors_walk_every_list_once() -> None:
    async with FakeSendGrid(ipam_ips=25) as fake, spec_client(fake) as api:
        ips, sizes = await _walk_after_key(api, "/v3/send_ips/ips", {"limit": "10"})
        assert [item["ip"] for item in ips] == fake.ipam_ips()
        assert sizes == [10, 10, 5]
        for number in range(12):
            await api.call("POST", "/v3/send_ips/pools", json={"name": f"pool-{number}"})
        await api.call("DELETE", "/v3/send_ips/pools/3")
        pools, sizes = await _walk_after_key(api, "/v3/send_ips/pools", {"limit": "5"})
        assert [pool["id"] for pool in pools] == [view.id for view in fake.pools()]
        assert sizes == [5, 5, 1]
        await api.call("POST", "/v3/send_ips/pools/1/ips:batchAdd", json={"ips": fake.ipam_ips()})
        members, sizes = await _walk_after_key(api, "/v3/send_ips/pools/1/ips", {"limit": "20"})
        assert [member["ip"] for member in members] == fake.ipam_ips()
        assert sizes == [20, 5]
        # a filtered list pages too: one seeded IP in three is in "eu"
        eu, sizes = await _walk_after_key(api, "/v3/send_ips/ips", {"limit": "4", "region": "eu"})
        assert [item["ip"] for item in eu] == fake.ipam_ips()[2::3]
        assert sizes == [4, 4]


async def test_before_key_pages_backwards() -> None:
    async with FakeSendGrid(ipam_ips=7) as fake, spec_client(fake) as api:
        reply = await api.call("GET", "/v3/send_ips/ips", query={"before_key": "5", "limit": "2"})
        assert [item["ip"] for item in reply.json()["result"]] == fake.ipam_ips()[3:5]
        assert reply.json()["_metadata"]["next_params"]["before_key"] == "3"
        reply = await api.call("GET", "/v3/send_ips/ips", query={"before_key": "2", "limit": "5"})
        assert [item["ip"] for item in reply.json()["result"]] == fake.ipam_ips()[:2]
        assert reply.json()["_metadata"]["next_params"]["before_key"] is None


@pytest.mark.parametrize(("count", "sizes"), [(23, [10, 10, 3]), (20, [10, 10]), (0, [0])])
async def test_offset_pages_go_newest_first_and_end_without_last(
    count: int, sizes: list[int]
) -> None:
    async with FakeSendGrid() as fake, spec_client(fake) as api:
        fake.add_account("acct-1", ips=count)
        seen: list[str] = []
        seen_sizes = []
        query = {"limit": "10"}
        while True:
            reply = (await api.call("GET", ACCOUNT, query=query)).json()
            seen += [item["ip"] for item in reply["result"]]
            seen_sizes.append(len(reply["result"]))
            if "last" not in reply["pages"]:
                break
            assert reply["pages"]["last"] == seen[-1]
            query = {"limit": "10", "offset": reply["pages"]["last"]}
        assert seen == fake.account_ips("acct-1")
        assert seen_sizes == sizes


async def test_offset_paging_survives_the_offset_ip_being_removed() -> None:
    async with FakeSendGrid() as fake, spec_client(fake) as api:
        fake.add_account("acct-1", ips=5)
        newest_first = fake.account_ips("acct-1")
        page = (await api.call("GET", ACCOUNT, query={"limit": "2"})).json()
        await api.call("DELETE", ACCOUNT, json={"ips": [page["pages"]["last"]]})
        rest = await api.call("GET", ACCOUNT, query={"offset": page["pages"]["last"]})
        assert [item["ip"] for item in rest.json()["result"]] == newest_first[2:]


async def test_default_limits() -> None:
    async with FakeSendGrid(ipam_ips=12) as fake, spec_client(fake) as api:
        fake.add_account("acct-1", ips=12)
        assert len((await api.call("GET", ACCOUNT)).json()["result"]) == 10
        assert len((await api.call("GET", "/v3/send_ips/ips")).json()["result"]) == 10
