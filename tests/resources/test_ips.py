"""``sg.ips``: ListIp, AddIp, GetIp, UpdateIp and the three subuser operations."""

from __future__ import annotations

import re

from sendgrid_ipam import (
    AddedIp,
    IpAddress,
    PoolRef,
    SendGridIPAM,
    SubuserAssignment,
    UpdatedIp,
)
from tests.conftest import BASE, FakeTime, RecordingResponses, collect
from tests.resources import assert_request, exact

IP = "192.0.2.1"
IPS = "/v3/send_ips/ips"

GET_IP_EXAMPLE = {
    "ip": "127.0.0.1", "is_parent_assigned": True, "is_auto_warmup": True,
    "pools": [{"id": "12345", "name": "transactional_pool"}], "added_at": 1664390835,
    "updated_at": None, "is_enabled": True, "is_leased": True, "region": "us",
}
EXPECTED_IP = IpAddress(
    ip="127.0.0.1", pools=(PoolRef(id="12345", name="transactional_pool"),),
    is_auto_warmup=True, is_parent_assigned=True, is_enabled=True, is_leased=True,
    added_at=1664390835, updated_at=None, region="us",
)


async def test_list_ips_with_every_filter(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(re.compile(re.escape(BASE + IPS) + r"\?.*"), payload={
        "result": [GET_IP_EXAMPLE],
        "_metadata": {"after_key": None, "before_key": None, "ip": "127.0.0.1"},
    })
    ips = await collect(client.ips.list(
        ip="127.0.0.1", limit=50, is_leased=True, is_enabled=False, pool="12345",
        start_added_at=1664390000, end_added_at=1664399999, region="all",
        include_region=True,
    ))
    assert ips == [EXPECTED_IP]
    (sent,) = mocked.sent
    assert_request(sent, "GET", IPS, [
        "ip=127.0.0.1", "limit=50", "is_leased=true", "is_enabled=false", "pool=12345",
        "start_added_at=1664390000", "end_added_at=1664399999", "region=all",
        "include_region=true",
    ])


async def test_list_ips_by_parent_assignment(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{BASE}{IPS}?is_parent_assigned=false", payload={"result": []})
    assert await collect(client.ips.list(is_parent_assigned=False)) == []
    assert_request(mocked.last, "GET", IPS, ["is_parent_assigned=false"])


async def test_list_ips_without_filters_sends_no_query(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{BASE}{IPS}", payload={"result": [{"ip": IP}]})
    assert await collect(client.ips.list()) == [IpAddress(ip=IP)]
    assert mocked.last.url == f"{BASE}{IPS}"


async def test_add_ip(
    client: SendGridIPAM, mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    # Before the write, the client notes the IPs added in the last few minutes.
    since = int(fake_time.wall_clock()) - 300
    mocked.get(f"{BASE}{IPS}?start_added_at={since}", payload={"result": []})
    mocked.post(f"{BASE}{IPS}", status=201, payload={
        "ip": "127.0.0.1", "is_auto_warmup": True, "is_parent_assigned": True,
        "subusers": ["12345"], "region": "eu",
    })
    added = await client.ips.add(is_auto_warmup=True, is_parent_assigned=True,
                                 subusers=["12345"], region="eu", include_region=True)
    assert added == AddedIp(ip="127.0.0.1", is_auto_warmup=True, is_parent_assigned=True,
                            subusers=("12345",), region="eu")
    check, post = mocked.sent
    assert_request(check, "GET", IPS, [f"start_added_at={since}"])
    assert_request(post, "POST", IPS, body={
        "is_auto_warmup": True, "is_parent_assigned": True, "subusers": ["12345"],
        "region": "eu", "include_region": True,
    })


async def test_add_ip_sends_only_what_was_given(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(re.compile(re.escape(BASE + IPS) + r"\?.*"), payload={"result": []})
    mocked.post(f"{BASE}{IPS}", status=201, payload={"ip": "127.0.0.1"})
    assert await client.ips.add(is_auto_warmup=False, is_parent_assigned=False) == AddedIp(
        ip="127.0.0.1")
    assert mocked.last.json == {"is_auto_warmup": False, "is_parent_assigned": False}


async def test_get_ip(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.get(f"{BASE}{IPS}/127.0.0.1?include_region=true", payload=GET_IP_EXAMPLE)
    assert await client.ips.get("127.0.0.1", include_region=True) == EXPECTED_IP
    assert_request(mocked.last, "GET", f"{IPS}/127.0.0.1", ["include_region=true"])


async def test_get_ipv6_ip_is_encoded(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.get(exact(f"{BASE}{IPS}/2001%3Adb8%3A%3A1"), payload={"ip": "2001:db8::1"})
    assert await client.ips.get("2001:db8::1") == IpAddress(ip="2001:db8::1")
    assert_request(mocked.last, "GET", f"{IPS}/2001%3Adb8%3A%3A1")


async def test_update_ip(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.patch(f"{BASE}{IPS}/{IP}", payload={
        "ip": IP, "is_auto_warmup": True, "is_parent_assigned": True, "is_enabled": False})
    updated = await client.ips.update(IP, is_auto_warmup=True, is_enabled=False)
    assert updated == UpdatedIp(ip=IP, is_auto_warmup=True, is_parent_assigned=True,
                                is_enabled=False)
    (sent,) = mocked.sent
    assert_request(sent, "PATCH", f"{IPS}/{IP}",
                   body={"is_auto_warmup": True, "is_enabled": False})


async def test_list_subusers_of_an_ip(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.get(f"{BASE}{IPS}/{IP}/subusers?limit=2", payload={
        "result": ["12345", "67890"], "_metadata": {"next_params": {"after_key": "67890"}}})
    mocked.get(f"{BASE}{IPS}/{IP}/subusers?limit=2&after_key=67890", payload={
        "result": ["11111"], "_metadata": {"next_params": {"after_key": None}}})
    assert await collect(client.ips.list_subusers(IP, limit=2)) == ["12345", "67890", "11111"]
    first, second = mocked.sent
    assert_request(first, "GET", f"{IPS}/{IP}/subusers", ["limit=2"])
    assert_request(second, "GET", f"{IPS}/{IP}/subusers", ["limit=2", "after_key=67890"])


async def test_add_subusers_to_an_ip(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.post(f"{BASE}{IPS}/{IP}/subusers:batchAdd",
                payload={"ip": IP, "subusers": ["12345", "67890"]})
    assigned = await client.ips.add_subusers(IP, ["12345", "67890"])
    assert assigned == SubuserAssignment(ip=IP, subusers=("12345", "67890"))
    (sent,) = mocked.sent
    assert sent.url == f"{BASE}{IPS}/{IP}/subusers:batchAdd"  # a literal ':'
    assert_request(sent, "POST", f"{IPS}/{IP}/subusers:batchAdd",
                   body={"subusers": ["12345", "67890"]})


async def test_remove_subusers_from_an_ip(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.post(f"{BASE}{IPS}/{IP}/subusers:batchDelete", status=204)
    assert await client.ips.remove_subusers(IP, ["12345"]) is None
    (sent,) = mocked.sent
    assert sent.url == f"{BASE}{IPS}/{IP}/subusers:batchDelete"
    assert_request(sent, "POST", f"{IPS}/{IP}/subusers:batchDelete",
                   body={"subusers": ["12345"]})
