"""Fixtures of the Redis tests: a session-wide server, and a server of a test's own (to stop)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.redis.server import coordinator, running_server

if TYPE_CHECKING:
    from sendgrid_ipam.redis import RedisCoordinator
    from sendgrid_ipam.redis._local import LocalRedis as RedisServer

Make = Callable[..., "RedisCoordinator"]
"""Makes a coordinator on the session's server, in the test's namespace (a process)."""


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    yield from running_server()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A server for this test alone, which it may stop and start."""
    yield from running_server()


@pytest.fixture
def durable_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A server for this test alone that keeps its data across a stop and start (AOF,
    appendfsync always), as a journal's Redis must."""
    yield from running_server(str(tmp_path_factory.mktemp("redis")))


@pytest.fixture
def namespace() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def coordinators(
    redis_server: RedisServer, namespace: str
) -> AsyncIterator[list[object]]:
    """Coordinators to close at the end of the test (append to it)."""
    made: list[object] = []
    yield made
    for each in made:
        await each.aclose()  # type: ignore[attr-defined]


@pytest.fixture
def make(redis_server: RedisServer, namespace: str, coordinators: list[object]) -> Make:
    """Coordinators on the session's server, in the test's namespace, closed at its end."""

    def build(**options: object) -> RedisCoordinator:
        made = coordinator(redis_server.url, **{"namespace": namespace, **options})
        coordinators.append(made)
        return made

    return build
