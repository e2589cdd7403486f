"""The LIST workload of bench_instructions reads every page and item, for both contenders."""

from __future__ import annotations

import json

import pytest

from benchmarks._common import BenchServer
from benchmarks._list import ITEMS, LIST_PAGES, PAGES, page_body
from benchmarks.bench_instructions import _child


def test_the_pages_chain_by_after_key_to_a_null_one() -> None:
    assert page_body(b"limit=100") == LIST_PAGES[0]
    for index in range(PAGES - 1):
        reply = json.loads(LIST_PAGES[index])
        after_key = reply["_metadata"]["next_params"]["after_key"]
        assert page_body(f"limit=100&after_key={after_key}".encode()) == LIST_PAGES[index + 1]
    assert json.loads(LIST_PAGES[-1])["_metadata"]["next_params"]["after_key"] is None
    assert page_body(b"after_key=99") is None


@pytest.mark.parametrize("contender", ["sendgrid_ipam", "aiohttp"])
async def test_each_contender_lists_every_item(contender: str) -> None:
    # _child raises unless each list read all ITEMS items (every one enabled).
    assert all(json.loads(page)["result"][0]["is_enabled"] for page in LIST_PAGES)
    assert ITEMS == 1000
    with BenchServer() as server:
        await _child(contender, "list", server.base_url, 2)
