"""SQLiteJournal's own failure modes: files it must refuse at open, and writes that fail."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest

from sendgrid_ipam.errors import ValidationError
from sendgrid_ipam.journal import (
    SCHEMA_VERSION,
    ChunkState,
    JournalError,
    SQLiteJournal,
    open_journal,
)
from sendgrid_ipam.journal import sqlite as sqlite_module
from sendgrid_ipam.journal.base import Intent, Marker, Outcome

RUN = "run-1"


async def _refused_at_open(path: str | Path, match: str) -> None:
    journal = SQLiteJournal(path)
    with pytest.raises(JournalError, match=match):
        await journal.open()
    assert not journal.is_open
    with pytest.raises(JournalError, match="not open"):
        await journal.begin_account(RUN, "acct-1", region="us", count=1)


@contextmanager
def _raw(path: Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path, isolation_level=None)) as connection:
        yield connection


async def _journal_file(tmp_path: Path) -> Path:
    """A closed journal file holding one account."""
    path = tmp_path / "run.journal"
    async with SQLiteJournal(path) as journal:
        await journal.begin_account(RUN, "acct-1", region="us", count=1)
    return path


async def test_a_missing_directory_is_refused_at_open(tmp_path: Path) -> None:
    await _refused_at_open(tmp_path / "no-such-dir" / "run.journal", "does not exist")
    assert not (tmp_path / "no-such-dir").exists()


async def test_a_directory_is_refused_at_open(tmp_path: Path) -> None:
    await _refused_at_open(tmp_path, "unable to open")


@pytest.mark.parametrize("content", [b"hello", b"not a database at all\n" * 50])
async def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(content)
    await _refused_at_open(path, "not a database")
    assert path.read_bytes() == content


async def test_another_programs_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with _raw(path) as connection:
        connection.execute("CREATE TABLE meta (key TEXT, value TEXT)")
    await _refused_at_open(path, "not a sendgrid-ipam journal")


async def test_a_journal_of_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = await _journal_file(tmp_path)
    with _raw(path) as connection:
        connection.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    expected = f"version 99, and this sendgrid-ipam reads version {SCHEMA_VERSION}$"
    await _refused_at_open(path, expected)


async def test_an_in_memory_database_is_refused_as_not_durable() -> None:
    await _refused_at_open(":memory:", "WAL")


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="file permissions do not stop root",
)
async def test_a_read_only_journal_is_refused_at_open(tmp_path: Path) -> None:
    path = await _journal_file(tmp_path)
    path.chmod(0o444)
    try:
        await _refused_at_open(path, "readonly|read-only|unable to open")
    finally:
        path.chmod(0o644)


async def test_a_journal_another_process_holds_locked_is_refused_at_open(tmp_path: Path) -> None:
    path = await _journal_file(tmp_path)
    with _raw(path) as other:
        other.execute("BEGIN EXCLUSIVE")
        journal = SQLiteJournal(path, busy_timeout=0.05)
        with pytest.raises(JournalError, match="locked"):
            await journal.open()
        other.execute("ROLLBACK")
    async with SQLiteJournal(path) as journal:
        assert list(await journal.load(RUN)) == ["acct-1"]


async def test_a_write_that_fails_raises_journal_error_and_stores_nothing(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    async with SQLiteJournal(path, busy_timeout=0.05) as journal:
        await journal.begin_account(RUN, "acct-1", region="us", count=2)
        with _raw(path) as other:
            other.execute("BEGIN EXCLUSIVE")
            with pytest.raises(JournalError, match=r"could not be written.*locked"):
                await journal.record_intent(RUN, "acct-1", 0, 2)
            other.execute("ROLLBACK")
        assert (await journal.load(RUN))["acct-1"].chunks == ()
        await journal.record_intent(RUN, "acct-1", 0, 2)  # the journal goes on afterwards
        assert len((await journal.load(RUN))["acct-1"].chunks) == 1


async def test_unreadable_data_in_the_file_is_a_journal_error(tmp_path: Path) -> None:
    path = await _journal_file(tmp_path)
    with _raw(path) as connection:
        connection.execute("INSERT INTO steps (run_id, account_id, finished, records)"
                           " VALUES ('run-1', 'acct-1', 0, 'q{broken')")
    async with SQLiteJournal(path) as journal:
        with pytest.raises(JournalError, match="unreadable"):
            await journal.load(RUN)


async def test_the_file_is_in_wal_mode_with_a_versioned_schema(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    async with SQLiteJournal(path) as journal:
        await journal.begin_account(RUN, "acct-1", region="us", count=1)
        assert repr(journal) == f"<SQLiteJournal {str(path)!r} open>"
    with _raw(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        meta = dict(connection.execute("SELECT key, value FROM meta").fetchall())
    assert meta["schema_version"] == str(SCHEMA_VERSION)
    assert meta["format"] == "sendgrid-ipam journal"


def test_open_journal_maps_paths_and_journals() -> None:
    assert isinstance(open_journal("run.journal"), SQLiteJournal)
    by_path = open_journal(Path("runs") / "a.journal")
    assert isinstance(by_path, SQLiteJournal)
    assert by_path.path == os.path.join("runs", "a.journal")
    assert not by_path.is_open  # nothing touches the disk before it is opened
    assert open_journal(by_path) is by_path
    with pytest.raises(JournalError, match="'memcached'"):
        open_journal("memcached://localhost:11211")
    redis = pytest.importorskip("sendgrid_ipam.redis")
    by_url = open_journal("redis://:secret@localhost:6379/2?namespace=acme")
    assert isinstance(by_url, redis.RedisJournal)
    assert (by_url.server, by_url.namespace, by_url.is_open) == ("localhost:6379/2", "acme", False)
    assert "secret" not in repr(by_url)
    with pytest.raises(ValidationError) as caught:
        SQLiteJournal("run.journal", synchronous="off")  # type: ignore[arg-type]
    assert caught.value.field == "synchronous"
    for bad in (None, 42, b"run.journal", ""):
        with pytest.raises(ValidationError) as caught:
            open_journal(bad)  # type: ignore[arg-type]
        assert caught.value.field == "path"


async def test_opening_twice_at_once_makes_one_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[ThreadPoolExecutor] = []

    def executor(*args: Any, **kwargs: Any) -> ThreadPoolExecutor:
        made.append(ThreadPoolExecutor(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(sqlite_module, "ThreadPoolExecutor", executor)
    journal = SQLiteJournal(tmp_path / "run.journal")
    first, second, state = await asyncio.gather(
        journal.open(),
        journal.open(),
        journal.begin_account(RUN, "acct-1", region="us", count=1),
    )
    assert first is second is journal
    assert len(made) == 1
    # a record sent while the journal was opening waited for it, and was written
    assert state.count == 1
    await journal.close()


async def test_records_sent_while_an_open_fails_fail_too(tmp_path: Path) -> None:
    journal = SQLiteJournal(tmp_path / "missing" / "run.journal")
    opened, state = await asyncio.gather(
        journal.open(),
        journal.begin_account(RUN, "acct-1", region="us", count=1),
        return_exceptions=True,
    )
    assert isinstance(opened, JournalError)
    assert isinstance(state, JournalError)
    assert not journal.is_open


async def test_a_fault_in_the_thread_answers_every_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with SQLiteJournal(tmp_path / "run.journal") as journal:
        commit = SQLiteJournal._commit

        def broken(self: SQLiteJournal, group: list[Any]) -> list[Any]:
            raise MemoryError("no room")

        monkeypatch.setattr(SQLiteJournal, "_commit", broken)
        results = await asyncio.gather(
            *(journal.begin_account(RUN, f"a{n}", region="us", count=1) for n in range(5)),
            return_exceptions=True,
        )
        assert all(isinstance(result, JournalError) for result in results)
        assert "no room" in str(results[0])
        monkeypatch.setattr(SQLiteJournal, "_commit", commit)
        await journal.begin_account(RUN, "a0", region="us", count=1)  # the thread goes on
        assert list(await journal.load(RUN)) == ["a0"]


async def test_ips_of_any_form_read_back_as_written(tmp_path: Path) -> None:
    """A step's records are stored as text: an IPv6 zone (which may hold commas, newlines
    and brackets) reads back whole, and cannot pass for another record."""
    path = tmp_path / "run.journal"
    odd = ("fe80::1%a,b\nfx", "fe80::2%[\"]", "2001:db8::1", "192.0.2.1")
    async with SQLiteJournal(path) as journal:
        await journal.begin_account(RUN, "acct-1", region="us", count=4)
        await journal.record_marker(RUN, "acct-1", odd[0])
        await journal.record_intent(RUN, "acct-1", 0, 4)
        await journal.record_outcome(RUN, "acct-1", 0, odd)
    async with SQLiteJournal(path) as journal:
        state = (await journal.load(RUN))["acct-1"]
    assert (state.marker, state.chunks) == (odd[0], (ChunkState(0, 4, odd),))
    assert not state.finished


async def test_close_answers_every_record_waiting_for_the_disk(tmp_path: Path) -> None:
    """Records committed while an fsync runs wait for the next one: closing the journal
    then runs it, and every call returns, its record on disk."""
    path = tmp_path / "run.journal"
    journal = await SQLiteJournal(path).open()
    await journal.begin_accounts(RUN, [(f"acct-{n}", "us", 1) for n in range(3)])
    calls = []
    for n in range(3):  # the first starts an fsync; the others commit while it runs
        calls.append(asyncio.ensure_future(journal.record_marker(RUN, f"acct-{n}", None)))
        await asyncio.sleep(0)
    await journal.close()
    await asyncio.wait_for(asyncio.gather(*calls), 5)
    async with SQLiteJournal(path) as reopened:
        states = await reopened.load(RUN)
    assert all(state.marker_known for state in states.values())


def count_commits(monkeypatch: pytest.MonkeyPatch, commits: list[int]) -> None:
    """From now on, each commit's number of steps is appended to ``commits``."""
    commit = SQLiteJournal._commit

    def counted(self: SQLiteJournal, group: list[Any]) -> list[Any]:
        commits.append(len(group))
        return commit(self, group)

    monkeypatch.setattr(SQLiteJournal, "_commit", counted)


class _HeldFsync:
    """os.fsync for the journal's thread that waits until `gate` is set, then fails once if
    told to."""

    fsync = staticmethod(os.fsync)

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls = 0
        self.error: OSError | None = None

    def __call__(self, fd: int) -> None:
        self.calls += 1
        if not self.gate.wait(5):
            raise OSError("the test never released the fsync")
        error, self.error = self.error, None  # fails once
        if error is not None:
            raise error
        self.fsync(fd)


async def _until(condition: Any) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError("never")


async def test_steps_that_come_while_an_fsync_runs_share_one_commit_and_the_next_fsync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The group commit: while an fsync runs, steps wait, and go in one transaction once it
    ends, with one fsync for all; a step refused among them refuses only itself, and no
    durable step is answered before the fsync that holds it."""
    fsync = _HeldFsync()
    monkeypatch.setattr(sqlite_module.os, "fsync", fsync)
    commits: list[int] = []
    async with SQLiteJournal(tmp_path / "run.journal") as journal:
        fsync.gate.set()
        await journal.begin_accounts(RUN, [(f"acct-{n}", "us", 10) for n in range(4)])
        fsync.gate.clear()
        before = fsync.calls
        count_commits(monkeypatch, commits)
        first = journal.submit_many(RUN, [("acct-0", [Marker(None), Intent(0, 10)])])
        await _until(lambda: fsync.calls == before + 1)  # its fsync runs, held
        later = [journal.submit_many(RUN, [("acct-1", [Marker(None), Intent(0, 10)]),
                                           ("acct-2", [Outcome(0, ("192.0.2.1",))])]),
                 journal.submit_many(RUN, [("acct-3", [Marker(None)])], durable=False)]
        await asyncio.sleep(0.01)
        assert commits == [1], "the later steps wait for the fsync that runs"
        assert not any(future.done() for future in [first, *later])
        fsync.gate.set()
        assert await first == [None]
        refused_one, behind = await asyncio.gather(*later)
        assert commits == [1, 2], "one transaction for both"
        assert fsync.calls == before + 2, "and one fsync"
        assert refused_one[0] is None
        assert isinstance(refused_one[1], JournalError)
        assert behind == [None]
        states = await journal.load(RUN)
    assert [states[f"acct-{n}"].marker_known for n in range(4)] == [True, True, False, True]
    assert states["acct-2"].chunks == ()


async def test_after_a_failed_fsync_no_step_is_answered_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An fsync that failed may have lost pages the kernel now calls clean, and SQLite's
    recovery drops every commit after a lost one: so the steps it held fail, and so do those
    that came after it, even when a later fsync succeeds (no write may rely on them)."""
    fsync = _HeldFsync()
    monkeypatch.setattr(sqlite_module.os, "fsync", fsync)
    async with SQLiteJournal(tmp_path / "run.journal") as journal:
        fsync.gate.set()
        await journal.begin_accounts(RUN, [(f"acct-{n}", "us", 1) for n in range(3)])
        fsync.gate.clear()
        fsync.error = OSError(5, "Input/output error")
        before = fsync.calls
        failing = journal.submit_many(RUN, [("acct-0", [Marker(None)])])
        await _until(lambda: fsync.calls == before + 1)
        waited = journal.submit_many(RUN, [("acct-1", [Marker(None)])])
        fsync.gate.set()
        for future in (failing, waited):
            with pytest.raises(JournalError, match=r"could not be written.*Input/output"):
                await future
        with pytest.raises(JournalError, match="could not be written"):
            await journal.record_marker(RUN, "acct-2", None)
        assert await journal.record_many(RUN, [("acct-2", [Intent(0, 1)])], durable=False) \
            == [None], "stored where the process's death cannot lose it, as before"
        with pytest.raises(JournalError, match="could not be written"):
            await journal.sync()


async def test_a_new_journal_is_made_without_an_fsync_and_synced_whole_before_a_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opening makes the file with no fsync (a run starts at once); the first durable record
    is answered only after the file, its directory and the WAL are all on disk."""
    synced: list[str] = []
    real = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(sqlite_module.os, "fsync", fsync)
    path = tmp_path / "run.journal"
    async with SQLiteJournal(path) as journal:
        assert synced == []
        await journal.begin_account(RUN, "acct-1", region="us", count=1)
        assert synced == [str(path), str(tmp_path), f"{path}-wal"]
        await journal.record_marker(RUN, "acct-1", None)
        assert synced[3:] == [f"{path}-wal"]
    async with SQLiteJournal(path) as reopened:
        assert (await reopened.load(RUN))["acct-1"].marker_known


async def test_steps_written_behind_wait_to_share_the_next_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing waits for a step written behind (durable=False): it goes with the next durable
    step's commit, and is committed on its own, after a moment, when none comes."""
    commits: list[int] = []
    async with SQLiteJournal(tmp_path / "run.journal") as journal:
        await journal.begin_accounts(RUN, [(f"acct-{n}", "us", 1) for n in range(3)])
        count_commits(monkeypatch, commits)
        behind = journal.submit_many(RUN, [("acct-0", [Marker(None)])], durable=False)
        durable = journal.submit_many(RUN, [("acct-1", [Marker(None)])])
        assert commits == [2]
        assert await asyncio.gather(behind, durable) == [[None], [None]]
        alone = journal.submit_many(RUN, [("acct-2", [Marker(None)])], durable=False)
        assert commits == [2]
        assert await asyncio.wait_for(alone, 1) == [None]
        assert commits == [2, 1]
