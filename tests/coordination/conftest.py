"""One coordination suite for every backend: each test takes the `coordinator` fixture.

The Redis backend runs against a real ``redis-server`` (tests/redis/server.py), one
namespace per test; without the binary it skips (in CI it fails).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from sendgrid_ipam.coordination import Coordinator, MemoryCoordinator
from tests.redis.server import coordinator as redis_coordinator
from tests.redis.server import running_server

if TYPE_CHECKING:
    from sendgrid_ipam.redis._local import LocalRedis as RedisServer


async def _memory(request: pytest.FixtureRequest) -> Coordinator:
    return MemoryCoordinator()


async def _redis(request: pytest.FixtureRequest) -> Coordinator:
    server: RedisServer = request.getfixturevalue("redis_server")
    return redis_coordinator(server.url, namespace=f"test-{uuid.uuid4().hex[:12]}")


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Awaitable[Coordinator]]] = {
    "memory": _memory,
    "redis": _redis,
}
"""Each backend's factory."""


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from running_server()


@pytest.fixture(params=sorted(BACKENDS))
async def coordinator(request: pytest.FixtureRequest) -> AsyncIterator[Coordinator]:
    made = await BACKENDS[request.param](request)
    try:
        yield made
    finally:
        await made.aclose()
