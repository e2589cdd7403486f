"""Following cursors: after_key on the IP Address Management lists, offset on account IPs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from sendgrid_ipam import (
    AccountIp,
    DecodeError,
    IpPool,
    PaginationError,
    PoolIp,
    SendGridIPAM,
)
from tests.conftest import BASE, RecordingResponses

POOLS = f"{BASE}/v3/send_ips/pools"
IPS = f"{BASE}/v3/send_ips/ips"
ACCOUNT = f"{BASE}/v3/partners/accounts/acct-1/ips"


def page(items: list[Any], after_key: Any, *, where: str = "next_params") -> dict[str, Any]:
    meta: dict[str, Any] = (
        {"next_params": {"after_key": after_key}} if where == "next_params"
        else {"after_key": after_key}
    )
    return {"result": items, "_metadata": meta}


async def collect(iterator: Any) -> list[Any]:
    return [item async for item in iterator]


# ---------------------------------------------------------------- after_key


async def test_after_key_under_next_params_is_followed_until_null(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{POOLS}?limit=2", payload=page([{"id": "1"}, {"id": "2"}], "2"))
    mocked.get(f"{POOLS}?limit=2&after_key=2", payload=page([{"id": "3"}, {"id": "4"}], "4"))
    mocked.get(f"{POOLS}?limit=2&after_key=4", payload=page([{"id": "5"}], None))
    pools = await collect(client.pools.list(limit=2))
    assert pools == [IpPool(id=str(n)) for n in range(1, 6)]
    assert [s.url for s in mocked.sent] == [
        f"{POOLS}?limit=2",
        f"{POOLS}?limit=2&after_key=2",
        f"{POOLS}?limit=2&after_key=4",
    ]


async def test_after_key_directly_under_metadata_is_followed(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    """ListIp's own example puts after_key directly under _metadata."""
    mocked.get(f"{IPS}?is_leased=true",
               payload=page([{"ip": "192.0.2.1"}], "192.0.2.1", where="metadata"))
    mocked.get(f"{IPS}?is_leased=true&after_key=192.0.2.1",
               payload=page([{"ip": "192.0.2.2"}], None, where="metadata"))
    ips = await collect(client.ips.list(is_leased=True))
    assert [ip.ip for ip in ips] == ["192.0.2.1", "192.0.2.2"]
    assert mocked.last.url == f"{IPS}?is_leased=true&after_key=192.0.2.1"


async def test_integer_after_key_is_sent_as_its_digits(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    subusers = f"{IPS}/192.0.2.1/subusers"
    mocked.get(subusers, payload=page(["111", "222"], 12345))
    mocked.get(f"{subusers}?after_key=12345", payload=page(["333"], None))
    assert await collect(client.ips.list_subusers("192.0.2.1")) == ["111", "222", "333"]
    assert mocked.last.url == f"{subusers}?after_key=12345"


async def test_after_key_is_percent_encoded(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    pool_ips = f"{POOLS}/7/ips"
    mocked.get(pool_ips, payload=page([{"ip": "2001:db8::1"}], "2001:db8::1&x=1"))
    mocked.get(f"{pool_ips}?after_key=2001%3Adb8%3A%3A1%26x%3D1", payload=page([], None))
    assert await collect(client.pools.list_ips("7")) == [PoolIp(ip="2001:db8::1")]
    assert mocked.last.url == f"{pool_ips}?after_key=2001%3Adb8%3A%3A1%26x%3D1"


@pytest.mark.parametrize(
    "metadata",
    [
        {"next_params": {"after_key": None}},
        {"next_params": {"after_key": ""}},
        {"next_params": {}},
        {"after_key": None},
        {},
        None,
    ],
    ids=["null", "empty", "no after_key", "null at top", "no next_params", "no metadata"],
)
async def test_a_page_without_a_cursor_is_the_last(
    client: SendGridIPAM, mocked: RecordingResponses, metadata: Any
) -> None:
    reply: dict[str, Any] = {"result": [{"id": "1"}]}
    if metadata is not None:
        reply["_metadata"] = metadata
    mocked.get(POOLS, payload=reply)
    assert await collect(client.pools.list()) == [IpPool(id="1")]
    assert len(mocked.sent) == 1


async def test_a_repeated_cursor_raises_pagination_error_after_the_items_seen(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(POOLS, payload=page([{"id": "1"}], "A"))
    mocked.get(f"{POOLS}?after_key=A", payload=page([{"id": "2"}], "B"))
    mocked.get(f"{POOLS}?after_key=B", payload=page([{"id": "3"}], "A"))
    seen = []

    async def follow() -> None:
        async for pool in client.pools.list():
            seen.append(pool.id)

    with pytest.raises(PaginationError, match="'A'"):
        await follow()
    assert seen == ["1", "2", "3"]
    assert len(mocked.sent) == 3


async def test_a_cursor_pointing_at_itself_raises_at_once(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(POOLS, payload=page([{"id": "1"}], "A"))
    mocked.get(f"{POOLS}?after_key=A", payload=page([{"id": "1"}], "A"), repeat=True)
    with pytest.raises(PaginationError):
        await collect(client.pools.list())
    assert len(mocked.sent) == 2


async def test_filters_are_kept_on_every_page(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    first = f"{IPS}?limit=1&is_enabled=false&pool=99&region=eu&include_region=true"
    mocked.get(first, payload=page([{"ip": "192.0.2.1"}], "k1"))
    mocked.get(f"{first}&after_key=k1", payload=page([], None))
    await collect(client.ips.list(limit=1, is_enabled=False, pool="99", region="eu",
                                  include_region=True))
    assert [s.url for s in mocked.sent] == [first, f"{first}&after_key=k1"]


async def test_nothing_is_fetched_until_iteration(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    client.pools.list()
    client.provisioning.list_ips("acct-1")
    assert mocked.sent == []


async def test_stopping_early_fetches_no_more_pages(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(POOLS, payload=page([{"id": "1"}, {"id": "2"}], "2"))
    async for pool in client.pools.list():
        assert pool.id == "1"
        break
    assert len(mocked.sent) == 1


# ---------------------------------------------------------------- offset / pages.last


def account_page(ips: list[str], last: str | None) -> dict[str, Any]:
    pages: dict[str, Any] = {} if last is None else {"last": last}
    return {"result": [{"ip": ip, "region": "us"} for ip in ips], "pages": pages}


async def test_offset_paging_newest_first_until_a_short_page(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{ACCOUNT}?limit=2", payload=account_page(["10.0.0.9", "10.0.0.8"], "10.0.0.8"))
    mocked.get(f"{ACCOUNT}?limit=2&offset=10.0.0.8",
               payload=account_page(["10.0.0.7", "10.0.0.6"], "10.0.0.6"))
    mocked.get(f"{ACCOUNT}?limit=2&offset=10.0.0.6",
               payload=account_page(["10.0.0.5"], "10.0.0.5"))
    ips = await collect(client.provisioning.list_ips("acct-1", limit=2))
    assert ips == [AccountIp(ip=f"10.0.0.{n}", region="us") for n in (9, 8, 7, 6, 5)]
    assert [s.url for s in mocked.sent] == [
        f"{ACCOUNT}?limit=2",
        f"{ACCOUNT}?limit=2&offset=10.0.0.8",
        f"{ACCOUNT}?limit=2&offset=10.0.0.6",
    ]


async def test_offset_paging_ends_on_a_missing_last(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{ACCOUNT}?limit=2", payload=account_page(["10.0.0.9", "10.0.0.8"], None))
    assert len(await collect(client.provisioning.list_ips("acct-1", limit=2))) == 2
    assert len(mocked.sent) == 1


@pytest.mark.parametrize("pages", [{"last": None}, {"last": ""}, None])
async def test_offset_paging_ends_on_an_empty_or_absent_last(
    client: SendGridIPAM, mocked: RecordingResponses, pages: Any
) -> None:
    reply: dict[str, Any] = {"result": [{"ip": "10.0.0.9", "region": "eu"}]}
    if pages is not None:
        reply["pages"] = pages
    mocked.get(f"{ACCOUNT}?limit=1", payload=reply)
    assert await collect(client.provisioning.list_ips("acct-1", limit=1)) == [
        AccountIp(ip="10.0.0.9", region="eu")
    ]
    assert len(mocked.sent) == 1


async def test_offset_paging_ends_on_an_empty_page(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{ACCOUNT}?limit=1", payload=account_page(["10.0.0.9"], "10.0.0.9"))
    mocked.get(f"{ACCOUNT}?limit=1&offset=10.0.0.9", payload=account_page([], "10.0.0.9"))
    assert len(await collect(client.provisioning.list_ips("acct-1", limit=1))) == 1
    assert len(mocked.sent) == 2


async def test_offset_paging_with_the_apis_default_page_size(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    """Without a limit the API sends 10 per page: a full page of 10 asks for the next."""
    first = [f"10.0.1.{n}" for n in range(20, 10, -1)]
    mocked.get(ACCOUNT, payload=account_page(first, first[-1]))
    mocked.get(f"{ACCOUNT}?offset={first[-1]}", payload=account_page(["10.0.1.1"], "10.0.1.1"))
    ips = await collect(client.provisioning.list_ips("acct-1"))
    assert [ip.ip for ip in ips] == [*first, "10.0.1.1"]
    assert len(mocked.sent) == 2


async def test_offset_repeated_raises_pagination_error(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    mocked.get(f"{ACCOUNT}?limit=1", payload=account_page(["10.0.0.9"], "10.0.0.9"))
    mocked.get(f"{ACCOUNT}?limit=1&offset=10.0.0.9",
               payload=account_page(["10.0.0.8"], "10.0.0.9"))
    with pytest.raises(PaginationError):
        await collect(client.provisioning.list_ips("acct-1", limit=1))
    assert len(mocked.sent) == 2


@pytest.mark.parametrize("cursor", [{}, [], True, {"ip": "192.0.2.1"}], ids=repr)
async def test_a_cursor_that_is_not_text_or_a_number_is_a_decode_error(
    client: SendGridIPAM, mocked: RecordingResponses, cursor: Any
) -> None:
    """An object or a boolean is no cursor: sending its repr back would be nonsense."""
    reply = page([{"id": "1"}], cursor)
    mocked.get(POOLS, payload=reply, repeat=True)
    mocked.get(re.compile(re.escape(POOLS) + r"\?after_key=.*"), payload=page([], None),
               repeat=True)
    with pytest.raises(DecodeError) as info:
        await collect(client.pools.list())
    assert json.loads(info.value.body) == reply
    assert all("after_key" not in s.url for s in mocked.sent)
