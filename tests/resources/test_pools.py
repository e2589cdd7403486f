"""``sg.pools``: the eight IP pool operations."""

from __future__ import annotations

import pytest

from sendgrid_ipam import (
    IpPool,
    IpPoolIps,
    PoolIp,
    PoolRef,
    RegionCount,
    SendGridIPAM,
    ValidationError,
)
from tests.conftest import BASE, RecordingResponses, collect
from tests.resources import assert_request, exact

POOLS = "/v3/send_ips/pools"


async def test_list_pools(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.get(f"{BASE}{POOLS}?ip=127.0.0.1&limit=2&region=us&include_region=true", payload={
        "result": [
            {"name": "transactional_pool", "id": "12345",
             "ips_preview": ["127.0.0.1", "127.0.0.2"], "total_ip_count": 2,
             "regions": ["us"]},
            {"name": "marketing_pool", "id": "67890",
             "ips_preview": ["127.0.0.3", "127.0.0.4", "127.0.0.5"], "total_ip_count": 3},
        ],
        "_metadata": {"next_params": {"after_key": None}},
    })
    pools = await collect(client.pools.list(ip="127.0.0.1", limit=2, region="us",
                                            include_region=True))
    assert pools == [
        IpPool(id="12345", name="transactional_pool", ips_preview=("127.0.0.1", "127.0.0.2"),
               total_ip_count=2, regions=("us",)),
        IpPool(id="67890", name="marketing_pool",
               ips_preview=("127.0.0.3", "127.0.0.4", "127.0.0.5"), total_ip_count=3),
    ]
    (sent,) = mocked.sent
    assert_request(sent, "GET", POOLS,
                   ["ip=127.0.0.1", "limit=2", "region=us", "include_region=true"])


async def test_create_pool(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.post(f"{BASE}{POOLS}", status=201, payload={
        "name": "transactional_pool", "id": "12345", "ips": ["127.0.0.1", "127.0.0.2"]})
    pool = await client.pools.create("transactional_pool", ips=["127.0.0.1", "127.0.0.2"])
    assert pool == IpPoolIps(id="12345", name="transactional_pool",
                             ips=("127.0.0.1", "127.0.0.2"))
    assert pool.reconciled is False
    (sent,) = mocked.sent
    assert_request(sent, "POST", POOLS,
                   body={"name": "transactional_pool", "ips": ["127.0.0.1", "127.0.0.2"]})


async def test_create_empty_pool(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.post(f"{BASE}{POOLS}", status=201, payload={"name": "empty", "id": "1"})
    assert await client.pools.create("empty") == IpPoolIps(id="1", name="empty")
    assert mocked.last.json in ({"name": "empty"}, {"name": "empty", "ips": []})


async def test_get_pool(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.get(f"{BASE}{POOLS}/12345?include_region=true", payload={
        "name": "marketing_pool", "id": "12345", "ips_preview": ["127.0.0.1", "127.0.0.2"],
        "total_ip_count": 2, "ip_count_by_region": [{"region": "us", "count": 2}]})
    pool = await client.pools.get("12345", include_region=True)
    assert pool == IpPool(id="12345", name="marketing_pool",
                          ips_preview=("127.0.0.1", "127.0.0.2"), total_ip_count=2,
                          ip_count_by_region=(RegionCount(region="us", count=2),))
    assert_request(mocked.last, "GET", f"{POOLS}/12345", ["include_region=true"])


async def test_get_pool_by_integer_id(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.get(f"{BASE}{POOLS}/12345", payload={"name": "marketing_pool", "id": "12345"})
    assert await client.pools.get(12345) == IpPool(id="12345", name="marketing_pool")
    assert_request(mocked.last, "GET", f"{POOLS}/12345")


async def test_rename_pool(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.put(f"{BASE}{POOLS}/12345", payload={"name": "marketing_pool", "id": "12345"})
    assert await client.pools.rename("12345", "marketing_pool") == PoolRef(
        id="12345", name="marketing_pool")
    (sent,) = mocked.sent
    assert_request(sent, "PUT", f"{POOLS}/12345", body={"name": "marketing_pool"})


async def test_delete_pool(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.delete(f"{BASE}{POOLS}/12345", status=204)
    assert await client.pools.delete("12345") is None
    (sent,) = mocked.sent
    assert_request(sent, "DELETE", f"{POOLS}/12345")


async def test_list_pool_ips(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.get(f"{BASE}{POOLS}/12345/ips?limit=1&include_region=true", payload={
        "result": [{"ip": "127.0.0.1", "region": "us",
                    "pools": [{"id": "12345", "name": "transactional_pool"}]}],
        "_metadata": {"next_params": {"after_key": "127.0.0.1"}},
    })
    mocked.get(f"{BASE}{POOLS}/12345/ips?limit=1&include_region=true&after_key=127.0.0.1",
               payload={"result": [], "_metadata": {"next_params": {"after_key": None}}})
    ips = await collect(client.pools.list_ips("12345", limit=1, include_region=True))
    assert ips == [PoolIp(ip="127.0.0.1", region="us",
                          pools=(PoolRef(id="12345", name="transactional_pool"),))]
    first, second = mocked.sent
    assert_request(first, "GET", f"{POOLS}/12345/ips", ["limit=1", "include_region=true"])
    assert_request(second, "GET", f"{POOLS}/12345/ips",
                   ["limit=1", "include_region=true", "after_key=127.0.0.1"])


async def test_add_ips_to_pool(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    ips = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    mocked.post(f"{BASE}{POOLS}/12345/ips:batchAdd",
                payload={"name": "marketing_pool", "id": "12345", "ips": ips})
    pool = await client.pools.add_ips("12345", ips)
    assert pool == IpPoolIps(id="12345", name="marketing_pool", ips=tuple(ips))
    (sent,) = mocked.sent
    assert sent.url == f"{BASE}{POOLS}/12345/ips:batchAdd"  # a literal ':'
    assert_request(sent, "POST", f"{POOLS}/12345/ips:batchAdd", body={"ips": ips})


async def test_remove_ips_from_pool(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.post(f"{BASE}{POOLS}/12345/ips:batchDelete", status=204)
    assert await client.pools.remove_ips("12345", ["127.0.0.1"]) is None
    (sent,) = mocked.sent
    assert sent.url == f"{BASE}{POOLS}/12345/ips:batchDelete"
    assert_request(sent, "POST", f"{POOLS}/12345/ips:batchDelete", body={"ips": ["127.0.0.1"]})


@pytest.mark.parametrize(
    ("pool_id", "segment"),
    [
        ("a/../b", "a%2F..%2Fb"),
        ("1?x=1", "1%3Fx%3D1"),
        ("1#x", "1%23x"),
        ("50%", "50%25"),
        ("池", "%E6%B1%A0"),
    ],
)
async def test_pool_id_stays_one_segment(
    client: SendGridIPAM, mocked: RecordingResponses, pool_id: str, segment: str
) -> None:
    """An id can never reach another endpoint: it is one percent-encoded path segment."""
    mocked.delete(exact(f"{BASE}{POOLS}/{segment}"), status=204)
    mocked.post(exact(f"{BASE}{POOLS}/{segment}/ips:batchDelete"), status=204)
    await client.pools.delete(pool_id)
    await client.pools.remove_ips(pool_id, ["127.0.0.1"])
    delete, remove = mocked.sent
    assert delete.url == f"{BASE}{POOLS}/{segment}"
    assert remove.url == f"{BASE}{POOLS}/{segment}/ips:batchDelete"


@pytest.mark.parametrize("pool_id", [".", ".."])
async def test_dot_segment_pool_ids_are_refused_before_sending(
    client: SendGridIPAM, mocked: RecordingResponses, pool_id: str
) -> None:
    """'.' and '..' could be resolved by URL normalisation even when percent-encoded."""
    with pytest.raises(ValidationError, match="poolid"):
        await client.pools.delete(pool_id)
    assert mocked.sent == []
