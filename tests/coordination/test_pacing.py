"""Pacing through the coordination interface, for every backend (real time, kept short)."""

from __future__ import annotations

import asyncio
import time

import pytest

from sendgrid_ipam import RateLimitError
from sendgrid_ipam.coordination import Coordinator


def news(remaining: int, reset_in: float) -> dict[str, str]:
    return {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": f"{time.time() + reset_in:.3f}"}


async def start(coordinator: Coordinator, endpoint: str, within: float = 5.0) -> float:
    """As the engine asks before each attempt; the seconds waited."""
    if coordinator.quiet or coordinator.gate_open(endpoint):
        return 0.0
    return await coordinator.wait_at_gate(endpoint, within=within)


async def test_a_429_holds_its_endpoint_only(coordinator: Coordinator) -> None:
    coordinator.observe("AddAccountIps", 429, {"Retry-After": "30"})
    assert not coordinator.gate_open("AddAccountIps")
    assert await start(coordinator, "ListAccountIps", within=1.0) == 0.0
    started = time.monotonic()
    with pytest.raises(RateLimitError):
        await coordinator.wait_at_gate("AddAccountIps", within=1.0)
    assert time.monotonic() - started < 0.5, "a hold beyond `within` raises at once"


async def test_plenty_left_holds_nothing(coordinator: Coordinator) -> None:
    coordinator.observe("GetIp", 200, news(5_000, 60.0))
    assert await start(coordinator, "GetIp") == 0.0


async def test_gathered_requests_share_the_budget_until_the_reset(
    coordinator: Coordinator,
) -> None:
    coordinator.observe("AddAccountIps", 201, news(2, 0.2))
    waits = await asyncio.gather(*(start(coordinator, "AddAccountIps") for _ in range(3)))
    assert sorted(waits)[:2] == [0.0, 0.0]
    assert 0.1 < max(waits) < 0.9, "the third waited for the reset"


async def test_a_probe_that_gets_no_news_lets_the_next_request_probe_at_once(
    coordinator: Coordinator,
) -> None:
    endpoint = "ListAccountIps"
    coordinator.observe(endpoint, 200, news(0, 0.05))
    await start(coordinator, endpoint)  # waits for the reset, then goes as the probe
    waiting = asyncio.ensure_future(start(coordinator, endpoint))
    await asyncio.sleep(0.05)
    assert not waiting.done(), "the others wait for the probe's reply"
    began = time.monotonic()
    coordinator.unanswered(endpoint)  # the probe's connection was lost: no news will come
    await waiting
    assert time.monotonic() - began < 0.4, "not the probe's whole timeout (0.5 s)"
