"""``sg.provisioning``: ListAccountIps, AddAccountIps, RemoveAccountIps."""

from __future__ import annotations

from sendgrid_ipam import AccountIp, AccountIps, SendGridIPAM
from tests.conftest import ACCOUNT_ID, BASE, RecordingResponses, collect
from tests.resources import assert_request

PATH = f"/v3/partners/accounts/{ACCOUNT_ID}/ips"
URL = BASE + PATH


async def test_list_account_ips(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.get(f"{URL}?limit=5", payload={
        "result": [{"ip": "174.0.2.1", "region": "us"}, {"ip": "192.0.0.1", "region": "eu"}],
        "pages": {"last": "192.0.0.1"},
    })
    ips = await collect(client.provisioning.list_ips(ACCOUNT_ID, limit=5))
    assert ips == [AccountIp(ip="174.0.2.1", region="us"), AccountIp(ip="192.0.0.1",
                                                                       region="eu")]
    (sent,) = mocked.sent
    assert_request(sent, "GET", PATH, ["limit=5"])


async def test_list_account_ips_pages_with_offset(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{URL}?limit=1", payload={"result": [{"ip": "174.0.2.1", "region": "us"}],
                                          "pages": {"last": "174.0.2.1"}})
    mocked.get(f"{URL}?limit=1&offset=174.0.2.1", payload={"result": [], "pages": {}})
    assert len(await collect(client.provisioning.list_ips(ACCOUNT_ID, limit=1))) == 1
    assert_request(mocked.last, "GET", PATH, ["limit=1", "offset=174.0.2.1"])


async def test_add_account_ips(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    # Before the write, the client notes the account's newest IP (to reconcile a failure).
    mocked.get(f"{URL}?limit=1", payload={"result": [{"ip": "174.0.2.1", "region": "us"}],
                                          "pages": {"last": "174.0.2.1"}})
    mocked.post(URL, status=201, payload={"ips": ["192.168.1.1", "192.168.1.2"],
                                          "region": "us"})
    added = await client.provisioning.add_ips(ACCOUNT_ID, count=2, region="us")
    assert added == AccountIps(ips=("192.168.1.1", "192.168.1.2"), region="us")
    assert added.reconciled is False
    check, post = mocked.sent
    assert_request(check, "GET", PATH, ["limit=1"])
    assert_request(post, "POST", PATH, body={"count": 2, "region": "us"})


async def test_add_account_ips_in_the_eu(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{URL}?limit=1", payload={"result": [], "pages": {}})
    mocked.post(URL, status=201, payload={"ips": ["192.168.1.9"], "region": "eu"})
    added = await client.provisioning.add_ips(ACCOUNT_ID, count=1, region="eu")
    assert added == AccountIps(ips=("192.168.1.9",), region="eu")
    assert mocked.last.json == {"count": 1, "region": "eu"}


async def test_remove_account_ips(client: SendGridIPAM, mocked: RecordingResponses) -> None:
    mocked.delete(URL, status=204)
    assert await client.provisioning.remove_ips(
        ACCOUNT_ID, ips=["174.0.0.3", "192.0.0.1"]) is None
    (sent,) = mocked.sent
    assert_request(sent, "DELETE", PATH, body={"ips": ["174.0.0.3", "192.0.0.1"]})


async def test_account_id_is_one_encoded_segment(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.delete(f"{BASE}/v3/partners/accounts/a%2F..%2F..%2Fusers%3Fx%23/ips", status=204)
    await client.provisioning.remove_ips("a/../../users?x#", ips=["174.0.0.3"])
    assert_request(mocked.last, "DELETE", "/v3/partners/accounts/a%2F..%2F..%2Fusers%3Fx%23/ips",
                   body={"ips": ["174.0.0.3"]})
