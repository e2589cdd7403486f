"""One coordination suite for every backend: each test takes the `coordinator` fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from sendgrid_ipam.coordination import Coordinator, MemoryCoordinator


async def _memory() -> Coordinator:
    return MemoryCoordinator()


BACKENDS: dict[str, Callable[[], Awaitable[Coordinator]]] = {"memory": _memory}
"""Each backend's factory; a shared backend (Redis) adds itself here."""


@pytest.fixture(params=sorted(BACKENDS))
async def coordinator(request: pytest.FixtureRequest) -> AsyncIterator[Coordinator]:
    made = await BACKENDS[request.param]()
    try:
        yield made
    finally:
        await made.aclose()
