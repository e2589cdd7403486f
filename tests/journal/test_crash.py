"""A real process writing a journal is killed with SIGKILL at random moments: every record whose
call had returned is there when the journal is opened again, and the torn run resumes.

Each kill comes after a random number (1-250) of reported records, a fraction of a second
into the run; the only other waits are bounded timeouts for the child's output."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
import sys
from collections.abc import Mapping
from contextlib import closing
from pathlib import Path

import pytest

from sendgrid_ipam.journal import AccountState, ChunkState, SQLiteJournal
from tests.journal._crash_writer import ips_of, marker_of

WRITER = Path(__file__).with_name("_crash_writer.py")
RUN = "torn-run"
ACCOUNTS = 300
KILLS = 4
STARTUP_TIMEOUT = 15  # a loaded machine may take seconds to start Python; never reached idle

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")


async def _writer(path: Path, synchronous: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, str(WRITER), str(path), RUN, str(ACCOUNTS), synchronous,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def _killed_at_random(path: Path, synchronous: str, rng: random.Random) -> list[str]:
    """Start the writer and SIGKILL it once it has reported a random number of records (so
    the kill lands mid-run, at a random point of a commit); its complete lines."""
    process = await _writer(path, synchronous)
    lines: list[bytes] = []
    try:
        assert process.stdout is not None
        first = await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT)
        assert first == b"open\n", (first, await process.stderr.read())  # type: ignore[union-attr]
        for _ in range(rng.randint(1, 250)):
            lines.append(await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT))
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        out, _ = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT)
    assert process.returncode == -signal.SIGKILL
    # a line cut short by the kill has no newline: its record is not promised
    return b"".join([*lines, out]).decode().split("\n")[:-1]


def _check(states: Mapping[str, AccountState], lines: list[str]) -> None:
    for line in lines:
        if line in ("open", "done"):
            continue
        name, step = line.split()
        index = int(name.removeprefix("acct-"))
        state = states[name]
        assert (state.region, state.count) == ("us", 2)
        if step == "marker":
            assert (state.marker_known, state.marker) == (True, marker_of(index))
        elif step == "intent":
            assert state.chunk(0) is not None
        elif step == "outcome":
            assert state.chunk(0) == ChunkState(0, 2, tuple(ips_of(index)))
        elif step == "finish":
            assert (state.finished, state.final_ips) == (True, tuple(ips_of(index)))


@pytest.mark.parametrize("synchronous", ["full", "normal"])
async def test_records_survive_sigkill_and_the_torn_run_resumes(
    tmp_path: Path, synchronous: str
) -> None:
    """Both settings keep every record whose call returned when the process dies ("normal"
    gives up only the machine-crash guarantee, which no test here can show)."""
    path = tmp_path / "run.journal"
    rng = random.Random()
    promised: list[str] = []
    for _ in range(KILLS):
        lines = await _killed_at_random(path, synchronous, rng)
        assert "done" not in lines
        promised += lines
        async with SQLiteJournal(path) as journal:  # opens consistently after every kill
            _check(await journal.load(RUN), promised)
        with closing(sqlite3.connect(path)) as raw:
            assert raw.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert len({line for line in promised if line.endswith("finish")}) < ACCOUNTS

    # the same command once more, to the end: it resumes where the journal says
    process = await _writer(path, synchronous)
    out, err = await asyncio.wait_for(process.communicate(), STARTUP_TIMEOUT)
    assert process.returncode == 0, err
    assert out.decode().endswith("done\n")
    async with SQLiteJournal(path) as journal:
        states = await journal.load(RUN)
    _check(states, promised)
    assert len(states) == ACCOUNTS
    for index in range(ACCOUNTS):
        state = states[f"acct-{index}"]
        assert state.finished
        assert state.final_ips == tuple(ips_of(index))
        assert state.chunks == (ChunkState(0, 2, tuple(ips_of(index))),)
        assert state.marker == marker_of(index)
