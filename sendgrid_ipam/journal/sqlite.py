"""`SQLiteJournal`: the default journal, one SQLite file (stdlib sqlite3) on the local disk.

Storage: append-only. Each account's target is a row of ``accounts``; each step after it (the
records of one `Journal.record_all`, or of one account in a `Journal.record_many`) is one row
of ``steps``, its records in a few bytes of text. Records are checked (`check_record`) against
the account's state held in memory, read from the file once (at `Journal.load`, or at an
account's first record) and kept up to date as records are written; a commit of another
connection to the file (another process, or another journal object) is seen at the next
commit (SQLite's ``data_version``) and makes every state be read again. A step thus costs one
row's insert and no read, however many records it holds.

Durability: WAL mode, and every commit made by the event loop's thread without an fsync
(SQLite's ``synchronous=NORMAL``): a commit is in the operating system's cache when it
returns, where the process's death cannot lose it, and SQLite rolls back whatever a death
left half-written. With ``synchronous="full"`` (the default) a call whose records must be
durable (all but the steps of ``record_many(..., durable=False)``) returns only once an fsync
of the WAL, run in the journal's thread, holds its commit: it then also survives a crash of
the machine or a power cut. The WAL is one file written in order, so one fsync makes every
commit before it durable (the group commit): while an fsync runs, steps are held, and go in
one commit once it ends, which the next fsync makes durable; steps written behind the run
reach the disk with the next fsync (or the close). After an fsync fails, nothing is answered
durable again (see `_fsync`). A new file is made without an fsync; the first fsync syncs it
and its directory before the WAL. ``synchronous="normal"`` runs no fsync: it keeps the
process-death guarantee and gives up the machine-crash one.

A commit costs the loop tens of microseconds (a few statements, and a write of the changed
pages into the cache); the loop never waits for the disk, except for SQLite's checkpoint of
the WAL into the file (every few thousand steps) and for another process's write lock (up to
`busy_timeout`). The steps of many accounts queued in one turn of the loop go in one commit
(`Journal.record_many`); a step written behind (``durable=False``) waits up to 2 ms for
another commit to share, so under load about one commit is made per fsync. The checkpoint
SQLite makes as the journal closes runs in the journal's thread, after `close` returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

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
    LiveState,
    Marker,
    Outcome,
    Record,
    Released,
    check_record,
)

__all__ = ["SCHEMA_VERSION", "SQLiteJournal"]

SCHEMA_VERSION = 2
"""The version of the tables this code reads and writes, kept in the ``meta`` table."""

_FORMAT = "sendgrid-ipam journal"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE accounts (
    run_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (run_id, account_id)
);
CREATE TABLE steps (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    finished INTEGER NOT NULL,
    records TEXT NOT NULL
);
CREATE INDEX steps_by_account ON steps (run_id, account_id);
"""

_INSERT_STEP = "INSERT INTO steps (run_id, account_id, finished, records) VALUES (?, ?, ?, ?)"

_Job = Callable[[sqlite3.Connection], Any]
_LINGER = 0.002  # seconds a step written behind may wait for a commit to share
_MAX_HELD = 256  # jobs held at most (while no fsync runs)


def _close_connection(connection: sqlite3.Connection, wal: int) -> None:
    if wal >= 0:
        os.close(wal)
    connection.close()
_Steps = list[tuple[str, list[Record]]]


# a step's records as text: one line each, a letter and its values. IP lists are joined with
# commas; a list holding an IPv6 zone ("fe80::1%eth0", which may hold any character) is JSON.
def _ips_text(ips: Sequence[str]) -> str:
    text = ",".join(ips)
    return json.dumps(list(ips)) if "%" in text else text


def _ips_of(text: str) -> tuple[str, ...]:
    if not text:
        return ()
    if not text.startswith("["):
        return tuple(text.split(","))
    ips = json.loads(text)
    if not isinstance(ips, list) or not all(isinstance(ip, str) for ip in ips):
        raise ValueError("not a list of IPs")
    return tuple(ips)


def _encode(records: list[Record]) -> str:
    lines = []
    for record in records:
        if isinstance(record, Intent):
            lines.append(f"i{record.chunk} {record.size}")
        elif isinstance(record, Outcome):
            lines.append(f"o{record.chunk} {_ips_text(record.ips)}")
        elif isinstance(record, Marker):
            lines.append("m" + ("" if record.marker is None else _ips_text((record.marker,))))
        elif isinstance(record, Finish):
            lines.append("f" + _ips_text(record.ips))
        elif isinstance(record, Ambiguous):
            lines.append(f"a{record.at!r}")
        elif isinstance(record, Excess | Released):
            lines.append(("x" if isinstance(record, Excess) else "r") + _ips_text(record.ips))
    return "\n".join(lines)


def _decoded(line: str) -> Record:
    kind, rest = line[:1], line[1:]
    if kind in ("i", "o"):
        number, _, value = rest.partition(" ")
        if kind == "i":
            return Intent(int(number), int(value))
        return Outcome(int(number), _ips_of(value))
    if kind == "m":
        marker = _ips_of(rest)
        if len(marker) > 1:
            raise ValueError("two markers")
        return Marker(marker[0] if marker else None)
    if kind == "a":
        return Ambiguous(float(rest))
    if kind == "f":
        return Finish(_ips_of(rest))
    if kind == "x":
        return Excess(_ips_of(rest))
    if kind == "r":
        return Released(_ips_of(rest))
    raise ValueError(f"no record kind {kind!r}")


def _decode(text: str, run_id: str, account_id: str) -> list[Record]:
    try:
        return [_decoded(line) for line in text.split("\n")]
    except (ValueError, TypeError):
        raise JournalError(
            f"the journal holds an unreadable step for account {account_id!r} in run "
            f"{run_id!r}: {text[:100]!r}"
        ) from None


class SQLiteJournal(Journal):
    """A journal in one SQLite file; use as ``async with SQLiteJournal(path) as journal:``.

    The file and its tables are created on first open (the directory must exist). Several
    processes may open the same file: SQLite locks it for each commit, waiting up to
    `busy_timeout` seconds for another writer.

    Args:
        path: the file.
        busy_timeout: seconds to wait for another process's write lock before failing.
        synchronous: "full" (the default): a durable record (all but the steps of
            ``record_many(..., durable=False)``) whose call returned is on disk (the WAL
            fsynced): it survives the process's death, the machine's crash and a power cut.
            "normal" runs no fsync: a record whose call returned still survives the
            process's death (kill -9), as the operating system holds it, but a crash of the
            machine may lose the last ones.

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
        self._executor: ThreadPoolExecutor | None = None  # the fsyncs' thread, while open
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # the connection's, for a journal used from two loops
        self._wal = -1  # a descriptor of the WAL file, for the fsyncs
        # commits are numbered: `_committed` the last one, `_synced` the last one on disk
        self._committed = 0
        self._synced = 0
        self._syncing: asyncio.Future[None] | None = None  # the fsync in flight
        self._waiting: list[tuple[int, asyncio.Future[Any], Any]] = []  # answers after it
        self._held: list[tuple[_Job, asyncio.Future[Any], bool]] = []  # jobs until it ends
        self._linger: asyncio.TimerHandle | None = None  # commits steps written behind
        self._unsynced: str | None = None  # an fsync failed (why): nothing is durable now
        self._files_synced = True  # the file and its directory (False: made, not synced)
        # the states of the accounts read or written, by (run, account), as of the file's
        # data_version `_version` (None: not known; read everything again)
        self._live: dict[tuple[str, str], LiveState] = {}
        self._whole: set[str] = set()  # runs all of whose accounts are in _live
        self._version: int | None = None

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<SQLiteJournal {self.path!r} {state}>"

    @property
    def is_open(self) -> bool:
        """Whether the journal is open (opened, and not closed since)."""
        return self._executor is not None

    async def _open(self) -> None:
        self._connect()  # on the loop: a few statements, and one commit without an fsync
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="sendgrid-ipam-journal")

    async def _close(self) -> None:
        executor = self._executor
        if executor is None:
            return
        loop = asyncio.get_running_loop()
        try:
            while self._syncing is not None or self._waiting or self._held:  # every answer
                if self._held and self._syncing is None:
                    self._commit_held(loop)
                if self._syncing is None and self._waiting:
                    self._fsync(loop)
                if self._syncing is None:
                    continue
                assert self._syncing is not None
                await asyncio.wait([self._syncing])
            if self._synced < self._committed and self._synchronous == "full":
                # commits no caller waited for the disk for: a closed journal is durable whole
                await loop.run_in_executor(executor, self._fsync_files)
        finally:
            self._executor = None
            connection, wal = self._connection, self._wal
            self._connection, self._wal = None, -1
            self._forget()
            if connection is not None:
                # SQLite checkpoints the WAL into the file as it closes (tens of ms on a busy
                # disk): what is in the WAL is durable already, so the caller goes on meanwhile
                executor.submit(_close_connection, connection, wal)
            executor.shutdown(wait=False)

    async def _apply(self, run_id: str, account_id: str, record: Record) -> AccountState | None:
        if isinstance(record, Begin):
            state: AccountState = await self._submit(
                lambda connection: self._begin(connection, run_id, [(account_id, record)]))
            return state
        await self._apply_all(run_id, account_id, [record])
        return None

    async def _load(self, run_id: str) -> Mapping[str, AccountState]:
        states: dict[str, AccountState] = await self._submit(
            lambda connection: self._read_run(connection, run_id)
        )
        return states

    async def _apply_all(self, run_id: str, account_id: str, records: list[Record]) -> None:
        (error,) = await self._submit(
            lambda connection: self._store(connection, run_id, [(account_id, records)]))
        if error is not None:
            raise error

    async def _apply_many(self, run_id: str, steps: _Steps) -> list[BaseException | None]:
        errors: list[BaseException | None] = await self._submit(
            lambda connection: self._store(connection, run_id, steps))
        return errors

    def _submit_valid(
        self, run_id: str, steps: _Steps, *, durable: bool
    ) -> asyncio.Future[list[BaseException | None]]:
        # committed now, on the loop; answered at once, or once an fsync holds it: no task
        return self._queue_job(lambda connection: self._store(connection, run_id, steps),
                               durable=durable)

    async def _sync(self) -> None:
        await self._queue_job(lambda connection: None, durable=True)

    async def _begin_all(self, run_id: str, begins: list[tuple[str, Begin]]) -> None:
        await self._submit(lambda connection: self._begin(connection, run_id, begins))

    async def _runs(self) -> list[str]:
        def read(connection: sqlite3.Connection) -> list[str]:
            rows = connection.execute("SELECT DISTINCT run_id FROM accounts ORDER BY run_id")
            return [run_id for (run_id,) in rows]

        runs: list[str] = await self._submit(read)
        return runs

    async def _unfinished(self, run_id: str) -> Mapping[str, str]:
        def read(connection: sqlite3.Connection) -> dict[str, str]:
            rows = connection.execute(
                "SELECT account_id, run_id FROM accounts AS a WHERE run_id != ? AND NOT EXISTS"
                " (SELECT 1 FROM steps AS s WHERE s.run_id = a.run_id"
                " AND s.account_id = a.account_id AND s.finished) ORDER BY rowid", (run_id,))
            return dict(rows)

        found: dict[str, str] = await self._submit(read)
        return found

    # commits on the loop, fsyncs in the thread
    async def _submit(self, job: _Job) -> Any:
        return await self._queue_job(job, durable=True)

    def _queue_job(self, job: _Job, *, durable: bool) -> asyncio.Future[Any]:
        """Run `job` in a transaction and commit it (without an fsync: into the operating
        system's cache, where the process's death cannot lose it); the future of its
        result, answered once it is committed, or (`durable`, "full") once an fsync of the
        WAL made the commit durable. One fsync makes every commit before it durable (the
        WAL is one file, written in order).

        The group commit: while an fsync runs, jobs are held, in order, and committed
        together in one transaction as soon as it ends, and one fsync then makes them all
        durable. So a journal under load makes about as many commits as fsyncs, however
        many steps come meanwhile; an idle one commits each job at once."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if self._executor is None:
            future.set_exception(JournalError(f"the journal {self.path} is not open"))
            return future
        self._held.append((job, future, durable))
        if self._syncing is None:
            if durable or len(self._held) >= _MAX_HELD:
                self._commit_held(loop)
            elif self._linger is None:
                # nothing waits for a step written behind: it goes with the next durable
                # job's commit, or after _LINGER (so most commits answer an fsync)
                self._linger = loop.call_later(_LINGER, self._commit_lingering, loop)
        return future

    def _commit_lingering(self, loop: asyncio.AbstractEventLoop) -> None:
        self._linger = None
        if self._held and self._syncing is None and self._executor is not None:
            self._commit_held(loop)

    def _commit_held(self, loop: asyncio.AbstractEventLoop) -> None:
        """Commit the held jobs in one transaction, answer those that need no fsync, and
        start an fsync for the others."""
        held, self._held = self._held, []
        if self._linger is not None:
            self._linger.cancel()
            self._linger = None
        try:
            results = self._commit([job for job, _, _ in held])
        except Exception as error:  # not the disk's doing: an answer all the same
            self._forget()
            failure = JournalError(f"the journal {self.path} failed: {error!r}")
            results = [failure] * len(held)
        immediate = self._synchronous == "normal" or self._synced >= self._committed
        for (_, future, durable), result in zip(held, results, strict=True):
            if future.done():  # its caller was cancelled: the job ran all the same
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
            elif immediate or not durable:
                future.set_result(result)
            elif self._unsynced is not None:  # no later fsync can vouch for it
                future.set_exception(JournalError(self._unsynced))
            else:
                self._waiting.append((self._committed, future, result))
        if self._waiting and self._syncing is None:
            self._fsync(loop)

    def _fsync(self, loop: asyncio.AbstractEventLoop) -> None:
        """Start an fsync of the WAL, for every commit made so far."""
        assert self._executor is not None
        upto = self._committed
        self._syncing = syncing = loop.run_in_executor(self._executor, self._fsync_files)

        def done(_: asyncio.Future[None]) -> None:
            self._syncing = None
            error = None if syncing.cancelled() else syncing.exception()
            if error is not None and self._unsynced is None:
                # the pages of a failed fsync may be gone while the kernel calls them clean:
                # a later fsync that succeeds does not make them durable, and SQLite's
                # recovery would drop every commit after a lost one. So nothing written
                # after it is ever answered durable by this journal object.
                self._unsynced = f"the journal {self.path} could not be written: {error}"
            if self._unsynced is None:
                self._synced = max(self._synced, upto)
            waiting, self._waiting = self._waiting, []
            for number, future, result in waiting:
                if number > upto and self._unsynced is None:
                    self._waiting.append((number, future, result))
                elif future.done():  # its caller was cancelled: the record is written anyway
                    continue
                elif self._unsynced is None:
                    future.set_result(result)
                else:
                    future.set_exception(JournalError(self._unsynced))
            if self._executor is None:
                return
            if self._held:  # what came while it ran: one commit, and the next fsync
                self._commit_held(loop)
            elif self._waiting:
                self._fsync(loop)

        syncing.add_done_callback(done)

    def _fsync_files(self) -> None:
        """fsync the WAL, in the journal's thread; the first time, the file and its directory
        before it (made without an fsync at open)."""
        if not self._files_synced:
            for name in (self.path, os.path.dirname(os.path.abspath(self.path))):
                descriptor = os.open(name, os.O_RDONLY)
                try:
                    os.fsync(descriptor)
                finally:
                    os.close(descriptor)
            self._files_synced = True
        os.fsync(self._wal)

    def _forget(self) -> None:
        """Drop the states held in memory: the next records read them from the file."""
        self._live.clear()
        self._whole.clear()
        self._version = None

    def _commit(self, group: list[_Job]) -> list[Any]:
        """Run the jobs in one transaction and commit it: their results (a refused record's
        error in its place: a job raises before it writes, so the others go on), or the
        `JournalError` of a commit that failed for each."""
        connection = self._connection
        if connection is None:
            return [JournalError(f"the journal {self.path} is not open") for _ in group]
        results: list[Any] = []
        with self._lock:
            try:
                connection.execute("BEGIN IMMEDIATE")
                (version,) = connection.execute("PRAGMA data_version").fetchone()
                if version != self._version:  # another connection committed: stale states
                    self._forget()
                for job in group:
                    try:
                        results.append(job(connection))
                    except sqlite3.Error:
                        raise
                    except Exception as error:
                        results.append(error)
                connection.execute("COMMIT")
            except sqlite3.Error as error:
                with contextlib.suppress(sqlite3.Error):
                    connection.execute("ROLLBACK")
                self._forget()  # they hold records the rollback undid
                message = f"the journal {self.path} could not be written: {error}"
                return [JournalError(message) for _ in group]
            self._version = version  # unchanged by this connection's own commits
            self._committed += 1
        return results

    # opening and closing, in the thread
    def _connect(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise JournalError(
                f"cannot open the journal {self.path}: the directory {directory} does not exist"
            )
        try:
            connection = sqlite3.connect(  # (a lock guards it: see _commit)
                self.path, timeout=self._busy_timeout, isolation_level=None,
                check_same_thread=False,
            )
        except sqlite3.Error as error:
            raise JournalError(f"cannot open the journal {self.path}: {error}") from error
        try:
            self._prepare(connection)
        except BaseException as error:
            connection.close()
            if isinstance(error, sqlite3.Error | OSError):
                raise JournalError(f"cannot open the journal {self.path}: {error}") from error
            raise
        self._connection = connection

    def _prepare(self, connection: sqlite3.Connection) -> None:
        # no fsync while the file is made (a new one costs SQLite several, tens of ms on a
        # busy disk, before a run can start): the first fsync of the WAL syncs the file and
        # its directory first (`_fsync_files`), and nothing is answered durable before it
        connection.execute("PRAGMA synchronous=OFF")
        (mode,) = connection.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise JournalError(
                f"cannot open the journal {self.path}: SQLite cannot keep it in WAL mode "
                f"(it answered {mode!r}); give a file on a local disk"
            )
        # the commits themselves never wait for the disk (the loop makes them): with "full",
        # the fsyncs of the WAL run in the journal's thread (see _queue_job)
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("BEGIN IMMEDIATE")
        self._check_schema(connection)
        # a write at open: a journal that cannot be written fails here, before any purchase
        connection.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('opened_at', ?)", (str(time.time()),)
        )
        connection.execute("COMMIT")
        self._wal = os.open(f"{self.path}-wal", os.O_RDONLY)
        self._files_synced = False

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
        self._forget()
        if self._wal >= 0:
            os.close(self._wal)
            self._wal = -1
        if connection is not None:
            connection.close()

    # records, inside a transaction
    def _state(
        self, connection: sqlite3.Connection, run_id: str, account_id: str
    ) -> LiveState | None:
        """The account's state (None: not begun): held in memory, or read from the file."""
        key = (run_id, account_id)
        live = self._live.get(key)
        if live is None and run_id not in self._whole:
            row = connection.execute(
                "SELECT region, count FROM accounts WHERE run_id = ? AND account_id = ?",
                key).fetchone()
            if row is None:
                return None
            live = LiveState(run_id, account_id, *row)
            for (text,) in connection.execute(
                "SELECT records FROM steps WHERE run_id = ? AND account_id = ? ORDER BY id",
                key,
            ):
                for record in _decode(text, run_id, account_id):
                    live.apply(record)
            self._live[key] = live
        return live

    def _store(
        self, connection: sqlite3.Connection, run_id: str, steps: _Steps
    ) -> list[BaseException | None]:
        """Check each step against its account's state and append those with anything new,
        one row each; per step, None or the error that refused it (nothing of it written)."""
        errors: list[BaseException | None] = []
        rows: list[tuple[str, str, bool, str]] = []
        live_states = self._live
        for account_id, records in steps:
            live = live_states.get((run_id, account_id)) or self._state(
                connection, run_id, account_id)
            lines: list[str] = []
            try:
                for record in records:
                    # a run's progress, plainly new (what `check_record` would let through
                    # and `LiveState.apply` would do), is applied and encoded inline
                    kind = type(record)
                    if live is not None and not live.finished:
                        if kind is Intent:
                            number = record.chunk  # type: ignore[union-attr]
                            if number not in live.chunks:
                                live.chunks[number] = ChunkState(
                                    number, record.size)  # type: ignore[union-attr]
                                lines.append(f"i{number} {record.size}")  # type: ignore[union-attr]
                                continue
                        elif kind is Outcome:
                            number = record.chunk  # type: ignore[union-attr]
                            chunk = live.chunks.get(number)
                            if chunk is not None and chunk.ips is None:
                                ips = record.ips  # type: ignore[union-attr]
                                live.chunks[number] = ChunkState(number, chunk.size, ips)
                                lines.append(f"o{number} {_ips_text(ips)}")
                                continue
                        elif kind is Finish:
                            ips = record.ips  # type: ignore[union-attr]
                            live.finished, live.final_ips = True, ips
                            lines.append("f" + _ips_text(ips))
                            continue
                        elif kind is Marker and not live.marker_known:
                            marker = record.marker  # type: ignore[union-attr]
                            live.marker_known, live.marker = True, marker
                            lines.append("m" if marker is None else "m" + _ips_text((marker,)))
                            continue
                    if check_record(run_id, account_id, live, record):
                        assert live is not None  # check_record refuses all before a Begin
                        live.apply(record)  # the next record of the step sees this one
                        lines.append(_encode([record]))
            except Exception as error:  # refused: nothing of the step is written
                errors.append(error)
                if lines:  # the state holds some of it: read it again from the file, once
                    connection.executemany(_INSERT_STEP, rows)  # the steps before it are
                    rows.clear()  # there
                    live_states.pop((run_id, account_id), None)
                    self._whole.discard(run_id)
                continue
            errors.append(None)
            if lines:
                rows.append((run_id, account_id, live is not None and live.finished,
                             "\n".join(lines)))
        if rows:
            connection.executemany(_INSERT_STEP, rows)
        return errors

    def _begin(
        self, connection: sqlite3.Connection, run_id: str, begins: list[tuple[str, Begin]]
    ) -> AccountState:
        """Begin each account not begun (all or, one refused, none); the last one's state."""
        rows = []
        states = []
        for account_id, begin in begins:
            live = self._state(connection, run_id, account_id)
            if check_record(run_id, account_id, live, begin):
                live = LiveState(run_id, account_id, begin.region, begin.count)
                rows.append((run_id, account_id, begin.region, begin.count))
            assert live is not None
            states.append(live)
        if rows:
            connection.executemany(
                "INSERT INTO accounts (run_id, account_id, region, count) VALUES (?, ?, ?, ?)",
                rows)
        for live in states:
            self._live[(live.run_id, live.account_id)] = live
        return states[-1].frozen()

    def _read_run(self, connection: sqlite3.Connection, run_id: str) -> dict[str, AccountState]:
        states: dict[str, LiveState] = {}
        for account_id, region, count in connection.execute(
            "SELECT account_id, region, count FROM accounts WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        ):
            states[account_id] = LiveState(run_id, account_id, region, count)
        for account_id, text in connection.execute(
            "SELECT account_id, records FROM steps WHERE run_id = ? ORDER BY id", (run_id,)
        ):
            live = states.get(account_id)
            if live is None:
                raise JournalError(f"the journal holds an unreadable step for account "
                                   f"{account_id!r} in run {run_id!r}: it was never begun")
            for record in _decode(text, run_id, account_id):
                live.apply(record)
        for account_id, live in states.items():  # as the file holds them now: keep them
            self._live[(run_id, account_id)] = live
        self._whole.add(run_id)
        return {account_id: live.frozen() for account_id, live in states.items()}
