"""The LIST workload: a 10-page ``ips.list`` of 100 IPs a page, for two contenders.

The canned pages are built here (the server imports them) so that both sides agree on them.
Page ``n`` (0-9) is what ``GET /v3/send_ips/ips?limit=100`` answers with ``after_key=n``
(none for page 0); its ``_metadata.next_params.after_key`` is ``n + 1``, null on the last.
Each item carries every field of the spec's ListIp item, one pool and a region, as a real
reply with ``include_region=true`` does.

A list call is the whole iteration: every page fetched, every item read. The library reads
each item into an `IpAddress`; raw aiohttp (the floor) follows the cursor by hand and
``json.loads`` each page, as an idiomatic caller would.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Final

from benchmarks._contenders import ClientConfig, check_status

LIST_PATH: Final = "/v3/send_ips/ips"
PAGES: Final = 10
PAGE_SIZE: Final = 100
ITEMS: Final = PAGES * PAGE_SIZE


def _item(number: int) -> dict[str, Any]:
    return {
        "ip": f"10.{number // 65536 % 256}.{number // 256 % 256}.{number % 256}",
        "pools": [{"name": "marketing_pool", "id": "12345"}],
        "is_auto_warmup": number % 2 == 0,
        "is_parent_assigned": True,
        "updated_at": 1_704_067_200 + number,
        "is_enabled": True,
        "is_leased": True,
        "added_at": 1_704_000_000 + number,
        "region": "us",
    }


def _page(index: int) -> bytes:
    items = [_item(index * PAGE_SIZE + n) for n in range(PAGE_SIZE)]
    after_key = str(index + 1) if index + 1 < PAGES else None
    reply = {"result": items, "_metadata": {"next_params": {"after_key": after_key}}}
    return json.dumps(reply, separators=(",", ":")).encode()


LIST_PAGES: Final = [_page(index) for index in range(PAGES)]
"""The body of each page, by the ``after_key`` that asks for it (page 0: none)."""


def page_body(query: bytes) -> bytes | None:
    """The page a ListIp query string asks for (None: not a page of this list)."""
    after_key = b"0"
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"after_key":
            after_key = value
    index = int(after_key) if after_key.isdigit() else -1
    return LIST_PAGES[index] if 0 <= index < PAGES else None


ListCall = Callable[[], Awaitable[int]]
"""One whole list: returns how many items were read (checked against `ITEMS`)."""

ListFactory = Callable[[ClientConfig], AbstractAsyncContextManager[ListCall]]


def _sendgrid_ipam() -> ListFactory:
    from sendgrid_ipam import SendGridIPAM

    @asynccontextmanager
    async def session(config: ClientConfig) -> AsyncIterator[ListCall]:
        async with SendGridIPAM(
            api_key=config.api_key, base_url=config.base_url,
            max_connections=config.max_connections,
        ) as sg:

            async def list_all() -> int:
                count = 0
                async for ip in sg.ips.list(limit=PAGE_SIZE):
                    count += ip.is_enabled is True
                return count

            yield list_all

    return session


def _raw_aiohttp() -> ListFactory:
    import aiohttp

    @asynccontextmanager
    async def session(config: ClientConfig) -> AsyncIterator[ListCall]:
        async with aiohttp.ClientSession(
            base_url=config.base_url,
            headers=config.headers(),
            connector=aiohttp.TCPConnector(limit=config.max_connections),
            timeout=aiohttp.ClientTimeout(total=config.timeout),
        ) as client:

            async def list_all() -> int:
                count = 0
                params: dict[str, str] = {"limit": str(PAGE_SIZE)}
                while True:
                    async with client.get(LIST_PATH, params=params) as resp:
                        body = await resp.read()
                        check_status(resp.status, 200, body)
                    reply = json.loads(body)
                    for item in reply["result"]:
                        count += item.get("is_enabled") is True
                    after_key = reply["_metadata"]["next_params"]["after_key"]
                    if after_key is None:
                        return count
                    params = {"limit": str(PAGE_SIZE), "after_key": after_key}

            yield list_all

    return session


LIST_CONTENDERS: Final[dict[str, Callable[[], ListFactory]]] = {
    "sendgrid_ipam": _sendgrid_ipam,
    "aiohttp": _raw_aiohttp,
}
