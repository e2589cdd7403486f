"""Journals: the durable memory of provisioning runs, so that a rerun resumes instead of rebuying.

    from sendgrid_ipam.journal import open_journal

    async with open_journal("run.journal") as journal:
        state = await journal.begin_account("run-1", "acct-1", region="us", count=25)
        await journal.record_marker("run-1", "acct-1", None)  # the account had no IPs
        await journal.record_intent("run-1", "acct-1", chunk=0, size=10)
        ...  # AddAccountIps
        await journal.record_outcome("run-1", "acct-1", chunk=0, ips=added.ips)

Several records of one account go in one step with ``record_all`` (a bulk run writes the
marker with every chunk's intent, and the outcomes with the finish, that way); the steps of
many accounts in one call with ``record_many`` (``durable=False`` for records no write waits
for: committed without waiting for the disk; ``sync()`` makes them durable).

`Journal` (base.py) is the interface; `SQLiteJournal` (sqlite.py) the default implementation,
one SQLite file. `sendgrid_ipam.redis.RedisJournal`, shared by several worker processes, is the
second implementation (``open_journal("redis://host:6379/0")``; needs the redis extra).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from .base import (
    AccountState,
    Ambiguous,
    ChunkState,
    Excess,
    Finish,
    Intent,
    Journal,
    JournalError,
    JournalMismatchError,
    Marker,
    Outcome,
    Record,
    Released,
)
from .sqlite import SCHEMA_VERSION, SQLiteJournal

__all__ = [
    "SCHEMA_VERSION",
    "AccountState",
    "Ambiguous",
    "ChunkState",
    "Excess",
    "Finish",
    "Intent",
    "Journal",
    "JournalError",
    "JournalMismatchError",
    "Marker",
    "Outcome",
    "Record",
    "Released",
    "SQLiteJournal",
    "open_journal",
]



def _redis(url: str) -> Journal:
    try:
        from ..redis.journal import RedisJournal
    except ImportError:
        raise JournalError(
            'a redis:// journal needs redis-py: pip install "sendgrid-ipam[redis]"') from None
    return RedisJournal.from_url(url)


_URL_BACKENDS: dict[str, Callable[[str], Journal]] = {"redis": _redis, "rediss": _redis}
"""Journal factories by URL scheme: the hook for journals kept elsewhere than in a local file
(the Redis journal, shared by several workers, is "redis" and "rediss"). A target with "://"
is never taken for a file name."""


def open_journal(target: str | os.PathLike[str] | Journal) -> Journal:
    """The journal `target` names, not opened yet: open it with ``async with`` (or ``await
    journal.open()``), which raises `JournalError` if it cannot be opened or written.

    Args:
        target: a `Journal` (returned as it is), the path of an SQLite journal file, or the
            URL of a journal backend: ``redis://`` or ``rediss://`` (a `RedisJournal`;
            ``?namespace=NAME`` sets its key prefix).

    Raises:
        ValidationError: `target` is neither a journal nor a path.
        ConfigurationError: a Redis URL that cannot be used.
        JournalError: a URL of a journal backend this version does not have (or whose
            extra is not installed).
    """
    if isinstance(target, Journal):
        return target
    if isinstance(target, str) and "://" in target:
        scheme = target.split("://", 1)[0].lower()
        factory = _URL_BACKENDS.get(scheme)
        if factory is None:
            raise JournalError(f"no journal backend for {scheme!r} URLs in this version")
        return factory(target)
    return SQLiteJournal(target)
