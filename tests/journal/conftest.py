"""The backends the journal suite runs over.

Adding a backend is one entry in BACKENDS: a factory that, given the test's tmp_path, returns a
function making a new, unopened journal on one shared store (so a test can close a journal and
open the same store again).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sendgrid_ipam.journal import Journal, SQLiteJournal

JournalMaker = Callable[[], Journal]


def _sqlite(tmp_path: Path) -> JournalMaker:
    path = tmp_path / "run.journal"
    return lambda: SQLiteJournal(path)


BACKENDS: dict[str, Callable[[Path], JournalMaker]] = {"sqlite": _sqlite}


@pytest.fixture(params=sorted(BACKENDS))
def make_journal(request: pytest.FixtureRequest, tmp_path: Path) -> JournalMaker:
    """Makes unopened journals of the backend under test, all on one store."""
    factory: Callable[[Path], JournalMaker] = BACKENDS[request.param]
    return factory(tmp_path)


@pytest.fixture
async def journal(make_journal: JournalMaker) -> AsyncIterator[Journal]:
    """An open journal of the backend under test, closed after the test."""
    async with make_journal() as opened:
        yield opened
