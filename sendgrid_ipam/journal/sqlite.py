"""`SQLiteJournal`: the default journal, one SQLite file (stdlib sqlite3) on the local disk.

Durability: WAL mode with ``synchronous=FULL``, so a commit is on disk (the WAL fsynced) before
the call that wrote the record returns; a process killed at any instant leaves every record
whose call returned, and SQLite rolls back whatever was half-written. ``synchronous="normal"``
trades the machine-crash guarantee for speed and keeps the process-death one.

The connection lives in one dedicated thread (a single-worker executor), so the event loop never
waits for the disk. A commit costs an fsync (a few milliseconds on common disks), so records
are committed in groups: each call queues its record, and the thread writes everything queued
so far in one transaction (a refused record is refused before it writes anything, so it does
not spoil the others), then commits and answers every call of the group. Many tasks writing
at once thus share one fsync, and each call still returns only once its own record is durable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import attrs

from ..errors import ValidationError
from .base import (
    AccountState,
    Ambiguous,
    Begin,
    ChunkState,
    Excess,
    Finish,
    Intent,
    Journal,
    JournalError,
    Marker,
    Outcome,
    Record,
    Released,
    check_record,
)

__all__ = ["SCHEMA_VERSION", "SQLiteJournal"]

SCHEMA_VERSION = 1
"""The version of the tables this code reads and writes, kept in the ``meta`` table."""

_FORMAT = "sendgrid-ipam journal"
_MAX_GROUP = 512  # records per commit: bounds one transaction's size and its callers' wait

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE accounts (
    run_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    count INTEGER NOT NULL,
    marker_known INTEGER NOT NULL DEFAULT 0,
    marker TEXT,
    finished INTEGER NOT NULL DEFAULT 0,
    final_ips TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (run_id, account_id)
);
CREATE TABLE chunks (
    run_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    size INTEGER NOT NULL,
    ips TEXT,
    PRIMARY KEY (run_id, account_id, number)
);
CREATE TABLE ambiguous (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    at REAL NOT NULL
);
CREATE INDEX ambiguous_by_account ON ambiguous (run_id, account_id);
CREATE TABLE extra_ips (
    run_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('excess', 'released')),
    ip TEXT NOT NULL,
    PRIMARY KEY (run_id, account_id, kind, ip)
);
"""

_PLAIN = re.compile(r'\["[0-9A-Fa-f.:", ]*"\]|\[\]')

_Job = Callable[[sqlite3.Connection], Any]


@attrs.define
class _Queued:
    job: _Job
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _answer_all(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in pairs:
        if future.done():  # its caller was cancelled: the record is written all the same
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


def _ips_from(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    try:
        ips = json.loads(text)
    except ValueError:
        ips = None
    if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
        raise JournalError(f"the journal holds an unreadable list of IPs: {text[:100]!r}")
    return tuple(ips)


@contextlib.contextmanager
def _savepoint(connection: sqlite3.Connection) -> Iterator[None]:
    """Several records as one: all stored, or (one refused) none."""
    connection.execute("SAVEPOINT records")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK TO records")
        connection.execute("RELEASE records")
        raise
    connection.execute("RELEASE records")


def _with(state: AccountState, **changes: Any) -> AccountState:
    """`state` with `changes` (attrs.evolve introspects the class on every call: this is
    called for most records)."""
    fields: dict[str, Any] = {
        "marker_known": state.marker_known, "marker": state.marker, "chunks": state.chunks,
        "ambiguous_at": state.ambiguous_at, "finished": state.finished,
        "final_ips": state.final_ips, "excess": state.excess, "released": state.released,
    }
    fields.update(changes)
    return AccountState(state.run_id, state.account_id, state.region, state.count, **fields)


def _json(ips: tuple[str, ...]) -> str:
    text = '["' + '", "'.join(ips) + '"]' if ips else "[]"
    # validated addresses need no escaping (a fraction of json.dumps' cost, once per outcome
    # and finish), except an IPv6 zone ("fe80::1%eth0"), which may hold any character
    return text if _PLAIN.fullmatch(text) else json.dumps(list(ips))


class SQLiteJournal(Journal):
    """A journal in one SQLite file; use as ``async with SQLiteJournal(path) as journal:``.

    The file and its tables are created on first open (the directory must exist). Several
    processes may open the same file: SQLite locks it for each commit, waiting up to
    `busy_timeout` seconds for another writer.

    Args:
        path: the file.
        busy_timeout: seconds to wait for another process's write lock before failing.
        synchronous: "full" (the default) fsyncs every commit: a record whose call returned
            survives the process's death, the machine's crash and a power cut. "normal" skips
            the fsync (SQLite's ``synchronous=NORMAL`` in WAL mode): a record whose call
            returned still survives the process's death (kill -9), as the operating system
            holds it, but a crash of the machine may lose the last ones. A commit then costs
            tens of microseconds instead of an fsync (milliseconds).

    Raises:
        ValidationError: a path that is not a non-empty str or os.PathLike, or another
            `synchronous` value.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        synchronous: Literal["full", "normal"] = "full",
    ) -> None:
        if synchronous not in ("full", "normal"):
            raise ValidationError("synchronous", f'must be "full" or "normal", not {synchronous!r}')
        self._synchronous = synchronous
        if not isinstance(path, str | os.PathLike):
            raise ValidationError("path", f"must be a str or os.PathLike, not {path!r}")
        text = os.fspath(path)
        if not isinstance(text, str) or not text or "\0" in text:
            raise ValidationError("path", f"must be a non-empty file path, not {path!r}")
        self.path = text
        """The file, as given."""
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None  # used in the executor's thread only
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._draining = False

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<SQLiteJournal {self.path!r} {state}>"

    @property
    def is_open(self) -> bool:
        """Whether the journal is open (opened, and not closed since)."""
        return self._executor is not None

    async def _open(self) -> None:
        executor = ThreadPoolExecutor(1, thread_name_prefix="sendgrid-ipam-journal")
        # open at once, so that a second open() does not start a second thread; records
        # queued meanwhile wait behind the connection in the thread's queue
        self._executor = executor
        try:
            await asyncio.get_running_loop().run_in_executor(executor, self._connect)
        except BaseException:
            if self._executor is executor:
                self._executor = None
            executor.shutdown(wait=False)
            raise

    async def _close(self) -> None:
        executor, self._executor = self._executor, None
        if executor is None:
            return
        try:
            # the single worker runs jobs in order: every group queued before this one is
            # committed and answered first
            await asyncio.get_running_loop().run_in_executor(executor, self._disconnect)
        finally:
            executor.shutdown(wait=False)

    async def _apply(self, run_id: str, account_id: str, record: Record) -> AccountState | None:
        state: AccountState | None = await self._submit(
            lambda connection: self._store(connection, run_id, account_id, record)
        )
        return state

    async def _load(self, run_id: str) -> Mapping[str, AccountState]:
        states: dict[str, AccountState] = await self._submit(
            lambda connection: self._read_run(connection, run_id)
        )
        return states

    async def _apply_all(self, run_id: str, account_id: str, records: list[Record]) -> None:
        await self._submit(
            lambda connection: self._store_all(connection, run_id, account_id, records))

    async def _apply_many(
        self, run_id: str, steps: list[tuple[str, list[Record]]]
    ) -> list[BaseException | None]:
        def job(connection: sqlite3.Connection) -> list[BaseException | None]:
            errors: list[BaseException | None] = []
            for account_id, records in steps:
                try:  # a step raises before it writes: a refused one leaves nothing behind
                    self._store_all(connection, run_id, account_id, records)
                except sqlite3.Error:
                    raise
                except Exception as exc:
                    errors.append(exc)
                else:
                    errors.append(None)
            return errors

        errors: list[BaseException | None] = await self._submit(job)
        return errors

    async def _begin_all(self, run_id: str, begins: list[tuple[str, Begin]]) -> None:
        def job(connection: sqlite3.Connection) -> None:
            with _savepoint(connection):
                for account_id, begin in begins:
                    row = connection.execute(
                        "SELECT region, count FROM accounts WHERE run_id = ? AND account_id = ?",
                        (run_id, account_id)).fetchone()
                    state = None if row is None else AccountState(run_id, account_id, *row)
                    if check_record(run_id, account_id, state, begin):
                        self._write(connection, (run_id, account_id), begin)

        await self._submit(job)

    async def _runs(self) -> list[str]:
        def read(connection: sqlite3.Connection) -> list[str]:
            rows = connection.execute("SELECT DISTINCT run_id FROM accounts ORDER BY run_id")
            return [run_id for (run_id,) in rows]

        runs: list[str] = await self._submit(read)
        return runs

    async def _unfinished(self, run_id: str) -> Mapping[str, str]:
        def read(connection: sqlite3.Connection) -> dict[str, str]:
            rows = connection.execute(
                "SELECT account_id, run_id FROM accounts WHERE finished = 0 AND run_id != ?"
                " ORDER BY rowid", (run_id,))
            return dict(rows)

        found: dict[str, str] = await self._submit(read)
        return found

    # the group commit
    async def _submit(self, job: _Job) -> Any:
        executor = self._executor
        if executor is None:
            raise JournalError(f"the journal {self.path} is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            self._queue.append(_Queued(job, future, loop))
            start, self._draining = not self._draining, True
        if start:
            executor.submit(self._drain)
        return await future

    def _drain(self) -> None:
        """In the thread: commit queued jobs, a group at a time, until none is left."""
        while True:
            with self._lock:
                group, self._queue = self._queue[:_MAX_GROUP], self._queue[_MAX_GROUP:]
                if not group:
                    self._draining = False
                    return
            try:
                results = self._commit(group)
            except Exception as error:  # not the disk's doing: answer every caller, never hang
                message = f"the journal {self.path} failed: {error!r}"
                results = [JournalError(message) for _ in group]
            answers: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
            for queued, result in zip(group, results, strict=True):
                answers.setdefault(queued.loop, []).append((queued.future, result))
            for loop, pairs in answers.items():  # one wake-up of each loop per group
                with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                    loop.call_soon_threadsafe(_answer_all, pairs)

    def _commit(self, group: list[_Queued]) -> list[Any]:
        connection = self._connection
        if connection is None:
            return [JournalError(f"the journal {self.path} is not open") for _ in group]
        results: list[Any] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for queued in group:
                # a job raises before it writes (check_record decides first), so a refused
                # record leaves nothing to roll back and the others of the group go on
                try:
                    results.append(queued.job(connection))
                except sqlite3.Error:
                    raise
                except Exception as error:
                    results.append(error)
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            with contextlib.suppress(sqlite3.Error):
                connection.execute("ROLLBACK")
            message = f"the journal {self.path} could not be written: {error}"
            return [JournalError(message) for _ in group]
        return results

    # opening and closing, in the thread
    def _connect(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise JournalError(
                f"cannot open the journal {self.path}: the directory {directory} does not exist"
            )
        try:
            connection = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None
            )
        except sqlite3.Error as error:
            raise JournalError(f"cannot open the journal {self.path}: {error}") from error
        try:
            self._prepare(connection)
        except BaseException as error:
            connection.close()
            if isinstance(error, sqlite3.Error):
                raise JournalError(f"cannot open the journal {self.path}: {error}") from error
            raise
        self._connection = connection

    def _prepare(self, connection: sqlite3.Connection) -> None:
        (mode,) = connection.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise JournalError(
                f"cannot open the journal {self.path}: SQLite cannot keep it in WAL mode "
                f"(it answered {mode!r}); give a file on a local disk"
            )
        connection.execute(f"PRAGMA synchronous={self._synchronous.upper()}")
        connection.execute("BEGIN IMMEDIATE")
        self._check_schema(connection)
        # a write at open: a journal that cannot be written fails here, before any purchase
        connection.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_at', ?)", (str(time.time()),)
        )
        connection.execute("COMMIT")

    def _check_schema(self, connection: sqlite3.Connection) -> None:
        tables = {
            name for (name,) in connection.execute("SELECT name FROM sqlite_master")
        }
        if not tables:
            # statement by statement: executescript() would commit the open transaction
            for statement in filter(str.strip, _SCHEMA.split(";")):
                connection.execute(statement)
            connection.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("format", _FORMAT), ("schema_version", str(SCHEMA_VERSION))],
            )
            return
        meta: dict[str, str] = {}
        if "meta" in tables:
            meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("format") != _FORMAT:
            raise JournalError(
                f"cannot open the journal {self.path}: it is an SQLite database, "
                "but not a sendgrid-ipam journal"
            )
        version = meta.get("schema_version")
        if version != str(SCHEMA_VERSION):
            raise JournalError(
                f"cannot open the journal {self.path}: its schema is version {version}, and "
                f"this sendgrid-ipam reads version {SCHEMA_VERSION}"
            )

    def _disconnect(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    # records, in the thread, inside the group's transaction
    def _store(
        self, connection: sqlite3.Connection, run_id: str, account_id: str, record: Record
    ) -> AccountState | None:
        state = self._state_for(connection, run_id, account_id, record)
        if check_record(run_id, account_id, state, record):
            self._write(connection, (run_id, account_id), record)
        if isinstance(record, Begin):
            return state or AccountState(run_id, account_id, record.region, record.count)
        return None

    def _store_all(
        self, connection: sqlite3.Connection, run_id: str, account_id: str, records: list[Record]
    ) -> None:
        """Several records of one account: every one is checked (against the state as the
        records before it leave it) before any is written, so a refused one writes nothing.
        The account's row is read once, each chunk a record touches once."""
        state = self._state_for(connection, run_id, account_id, Marker(None))
        if state is None:
            check_record(run_id, account_id, None, records[0])  # raises: no target
            return
        chunks: dict[int, ChunkState | None] = {}
        extra: dict[str, tuple[str, ...]] = {}
        new: list[Record] = []
        key = (run_id, account_id)
        for record in records:
            view = state
            if isinstance(record, Intent | Outcome):
                if record.chunk not in chunks:
                    chunks[record.chunk] = self._chunk(connection, key, record.chunk)
                found = chunks[record.chunk]
                if found is not None:
                    view = _with(state, chunks=(found,))
            elif isinstance(record, Excess | Released):
                kind = "excess" if isinstance(record, Excess) else "released"
                if kind not in extra:
                    extra[kind] = self._extra(connection, key, kind)
                view = (_with(state, excess=extra[kind]) if kind == "excess"
                        else _with(state, released=extra[kind]))
            if not check_record(run_id, account_id, view, record):
                continue
            new.append(record)
            if isinstance(record, Marker):
                state = _with(state, marker_known=True, marker=record.marker)
            elif isinstance(record, Finish):
                state = _with(state, finished=True, final_ips=record.ips)
            elif isinstance(record, Intent):
                chunks[record.chunk] = ChunkState(record.chunk, record.size)
            elif isinstance(record, Outcome):
                found = chunks[record.chunk]
                assert found is not None  # check_record refused an outcome with no intent
                chunks[record.chunk] = ChunkState(found.number, found.size, record.ips)
            elif isinstance(record, Excess | Released):
                kind = "excess" if isinstance(record, Excess) else "released"
                extra[kind] = tuple(dict.fromkeys((*extra[kind], *record.ips)))
        for record in new:
            self._write(connection, key, record)

    @staticmethod
    def _chunk(
        connection: sqlite3.Connection, key: tuple[str, str], number: int
    ) -> ChunkState | None:
        found = connection.execute(
            "SELECT size, ips FROM chunks WHERE run_id = ? AND account_id = ? AND number = ?",
            (*key, number),
        ).fetchone()
        return None if found is None else ChunkState(number, found[0], _ips_from(found[1]))

    @staticmethod
    def _extra(connection: sqlite3.Connection, key: tuple[str, str], kind: str) -> tuple[str, ...]:
        return tuple(
            ip
            for (ip,) in connection.execute(
                "SELECT ip FROM extra_ips WHERE run_id = ? AND account_id = ? AND kind = ?",
                (*key, kind),
            )
        )

    def _state_for(
        self, connection: sqlite3.Connection, run_id: str, account_id: str, record: Record
    ) -> AccountState | None:
        """The account's state as far as `check_record` needs it for `record`: the whole of
        it for a `Begin` (which returns it), else the account's row plus the chunk or the
        extra IPs the record touches. Each record thus costs one or two indexed reads."""
        key = (run_id, account_id)
        if isinstance(record, Begin):
            return self._read(connection, "run_id = ? AND account_id = ?", key).get(account_id)
        row = connection.execute(
            "SELECT region, count, marker_known, marker, finished, final_ips FROM accounts"
            " WHERE run_id = ? AND account_id = ?",
            key,
        ).fetchone()
        if row is None:
            return None
        region, count, known, marker, finished, final = row
        chunks: tuple[ChunkState, ...] = ()
        extra: tuple[str, ...] = ()
        if isinstance(record, Intent | Outcome):
            found = self._chunk(connection, key, record.chunk)
            chunks = () if found is None else (found,)
        elif isinstance(record, Excess | Released):
            extra = self._extra(connection, key,
                                "excess" if isinstance(record, Excess) else "released")
        return AccountState(
            run_id,
            account_id,
            region,
            count,
            marker_known=bool(known),
            marker=marker,
            chunks=chunks,
            finished=bool(finished),
            final_ips=(_ips_from(final) or ()) if finished else (),
            excess=extra if isinstance(record, Excess) else (),
            released=extra if isinstance(record, Released) else (),
        )

    @staticmethod
    def _write(connection: sqlite3.Connection, key: tuple[str, str], record: Record) -> None:
        where = "WHERE run_id = ? AND account_id = ?"
        if isinstance(record, Begin):
            connection.execute(
                "INSERT INTO accounts (run_id, account_id, region, count) VALUES (?, ?, ?, ?)",
                (*key, record.region, record.count),
            )
        elif isinstance(record, Marker):
            connection.execute(
                f"UPDATE accounts SET marker_known = 1, marker = ? {where}", (record.marker, *key)
            )
        elif isinstance(record, Intent):
            connection.execute(
                "INSERT INTO chunks (run_id, account_id, number, size) VALUES (?, ?, ?, ?)",
                (*key, record.chunk, record.size),
            )
        elif isinstance(record, Outcome):
            connection.execute(
                f"UPDATE chunks SET ips = ? {where} AND number = ?",
                (_json(record.ips), *key, record.chunk),
            )
        elif isinstance(record, Ambiguous):
            connection.execute(
                "INSERT INTO ambiguous (run_id, account_id, at) VALUES (?, ?, ?)",
                (*key, record.at),
            )
        elif isinstance(record, Finish):
            connection.execute(
                f"UPDATE accounts SET finished = 1, final_ips = ? {where}",
                (_json(record.ips), *key),
            )
        else:
            kind = "excess" if isinstance(record, Excess) else "released"
            assert isinstance(record, Excess | Released)
            connection.executemany(
                "INSERT OR IGNORE INTO extra_ips (run_id, account_id, kind, ip)"
                " VALUES (?, ?, ?, ?)",
                [(*key, kind, ip) for ip in record.ips],
            )

    def _read_run(self, connection: sqlite3.Connection, run_id: str) -> dict[str, AccountState]:
        return self._read(connection, "run_id = ?", (run_id,))

    @staticmethod
    def _read(
        connection: sqlite3.Connection, where: str, key: tuple[str, ...]
    ) -> dict[str, AccountState]:
        chunks: dict[str, list[ChunkState]] = {}
        for account_id, number, size, ips in connection.execute(
            f"SELECT account_id, number, size, ips FROM chunks WHERE {where} ORDER BY number", key
        ):
            chunks.setdefault(account_id, []).append(ChunkState(number, size, _ips_from(ips)))
        moments: dict[str, list[float]] = {}
        for account_id, at in connection.execute(
            f"SELECT account_id, at FROM ambiguous WHERE {where} ORDER BY id", key
        ):
            moments.setdefault(account_id, []).append(at)
        extra: dict[tuple[str, str], list[str]] = {}
        for account_id, kind, ip in connection.execute(
            f"SELECT account_id, kind, ip FROM extra_ips WHERE {where} ORDER BY rowid", key
        ):
            extra.setdefault((account_id, kind), []).append(ip)
        states = {}
        for run_id, account_id, region, count, known, marker, finished, final in connection.execute(
            "SELECT run_id, account_id, region, count, marker_known, marker, finished, final_ips"
            f" FROM accounts WHERE {where} ORDER BY rowid",
            key,
        ):
            states[account_id] = AccountState(
                run_id=run_id,
                account_id=account_id,
                region=region,
                count=count,
                marker_known=bool(known),
                marker=marker,
                chunks=tuple(chunks.get(account_id, ())),
                ambiguous_at=tuple(moments.get(account_id, ())),
                finished=bool(finished),
                final_ips=_ips_from(final) or (),
                excess=tuple(extra.get((account_id, "excess"), ())),
                released=tuple(extra.get((account_id, "released"), ())),
            )
        return states
