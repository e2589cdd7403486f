"""The backends the journal suite runs over.

Adding a backend is one entry in BACKENDS: a factory that, given the test's request, returns a
function making a new, unopened journal on one shared store (so a test can close a journal and
open the same store again). The Redis backend runs on a real redis-server of the session (a
namespace of the test's own), and skips as the Redis tests do without one.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from sendgrid_ipam.journal import Journal, SQLiteJournal
from tests.redis.server import running_server

if TYPE_CHECKING:
    from sendgrid_ipam.redis._local import LocalRedis

JournalMaker = Callable[[], Journal]


def _sqlite(request: pytest.FixtureRequest) -> JournalMaker:
    path = request.getfixturevalue("tmp_path") / "run.journal"
    return lambda: SQLiteJournal(path)


def _redis(request: pytest.FixtureRequest) -> JournalMaker:
    server: LocalRedis = request.getfixturevalue("journal_redis")
    from sendgrid_ipam.redis import RedisJournal

    namespace = f"test-{uuid.uuid4().hex[:12]}"
    return lambda: RedisJournal.from_url(server.url, namespace=namespace)


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], JournalMaker]] = {
    "sqlite": _sqlite, "redis": _redis}


@pytest.fixture(scope="session")
def journal_redis() -> Iterator[LocalRedis]:
    """One redis-server for the journal tests of the session."""
    yield from running_server()


@pytest.fixture(params=sorted(BACKENDS))
def make_journal(request: pytest.FixtureRequest) -> JournalMaker:
    """Makes unopened journals of the backend under test, all on one store."""
    factory: Callable[[pytest.FixtureRequest], JournalMaker] = BACKENDS[request.param]
    return factory(request)


@pytest.fixture
async def journal(make_journal: JournalMaker) -> AsyncIterator[Journal]:
    """An open journal of the backend under test, closed after the test."""
    async with make_journal() as opened:
        yield opened
