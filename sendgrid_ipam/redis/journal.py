"""`RedisJournal`: the journal on Redis, shared by every worker of a bulk run.

Each account's state in a run is one Redis string (JSON), beside the run's list of accounts
(in the order they were begun) and the namespace's set of unfinished accounts. A step reads
the states it touches (one ``MGET``), decides in Python with `check_record` (the rules every
backend shares), and writes with one Lua script that stores the new states only if none
changed since they were read (compare-and-set); another writer in between makes it read and
decide again. So each step is atomic and costs two round trips, however many records and
accounts it holds.

Durability is Redis's: a record is as durable as Redis keeps a write it acknowledged. For the
journal's guarantee (a record whose call returned survives a crash), run Redis with
``appendonly yes`` and ``appendfsync always``; with ``appendfsync everysec`` (Redis's default
once AOF is on) a crash of the Redis host may lose the last second of records, and without
AOF (RDB snapshots only, or none) a Redis restart loses what came after the last snapshot.
Opening the journal logs a warning when the server says AOF is off.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis.asyncio as aioredis

from ..errors import ConfigurationError
from ..journal.base import (
    AccountState,
    Begin,
    ChunkState,
    Finish,
    Journal,
    JournalError,
    Record,
    apply_record,
    check_record,
)
from ._connection import FAILURES, close, connect, server_name

__all__ = ["RedisJournal"]

logger: logging.Logger = logging.getLogger("sendgrid_ipam")

_FORMAT = "sendgrid-ipam journal"
_SCHEMA_VERSION = "1"
_MAX_CONFLICTS = 100  # compare-and-set retries of one step before it fails
_READ_BATCH = 500  # states per MGET when loading a run
_MAX_DETAIL = 200
# To Redis, per journal: far above what a run's steps use at once. A plain pool, where one
# more fails at once as Redis being unreachable does: redis-py's blocking pool (5.0) loses a
# connection each time one cannot connect, and with Redis down every later command then
# waited out the timeout, so a worker took minutes to stop.
_MAX_CONNECTIONS = 1000

# Store new states only if every one is still what was read. KEYS: the run's account list,
# the unfinished set, the set of run ids, then one state key per account. ARGV, five per
# state key: the value read ('' if absent, else '=' .. value), the new value, what changes
# ('b' begun, 'f' finished), the account id, its member in the unfinished set; last, the
# run id. Returns 1,
# or 0 (nothing written: another writer came first).
_COMPARE_AND_SET = """
local n = #KEYS - 3
for i = 1, n do
  local now = redis.call('GET', KEYS[i + 3])
  local read = ARGV[(i - 1) * 5 + 1]
  if read == '' then
    if now then return 0 end
  elseif not now or ('=' .. now) ~= read then
    return 0
  end
end
for i = 1, n do
  local j = (i - 1) * 5
  redis.call('SET', KEYS[i + 3], ARGV[j + 2])
  local change = ARGV[j + 3]
  if string.find(change, 'b', 1, true) then
    redis.call('RPUSH', KEYS[1], ARGV[j + 4])
    redis.call('SADD', KEYS[2], ARGV[j + 5])
    redis.call('SADD', KEYS[3], ARGV[#ARGV])
  end
  if string.find(change, 'f', 1, true) then
    redis.call('SREM', KEYS[2], ARGV[j + 5])
  end
end
return 1
"""


def _encode(state: AccountState) -> bytes:
    return json.dumps({
        "region": state.region, "count": state.count, "marker_known": state.marker_known,
        "marker": state.marker,
        "chunks": [[c.number, c.size, None if c.ips is None else list(c.ips)]
                   for c in state.chunks],
        "ambiguous_at": list(state.ambiguous_at), "finished": state.finished,
        "final_ips": list(state.final_ips), "excess": list(state.excess),
        "released": list(state.released),
    }, separators=(",", ":")).encode()


def _strings(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ValueError("not a list of strings")
    return tuple(value)


def _decode(run_id: str, account_id: str, raw: bytes | None) -> AccountState | None:
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        chunks = tuple(ChunkState(int(number), int(size), None if ips is None else _strings(ips))
                       for number, size, ips in data["chunks"])
        marker = data["marker"]
        if marker is not None and not isinstance(marker, str):
            raise ValueError("a marker that is not a string")
        return AccountState(
            run_id, account_id, str(data["region"]), int(data["count"]),
            marker_known=bool(data["marker_known"]), marker=marker, chunks=chunks,
            ambiguous_at=tuple(float(at) for at in data["ambiguous_at"]),
            finished=bool(data["finished"]), final_ips=_strings(data["final_ips"]),
            excess=_strings(data["excess"]), released=_strings(data["released"]),
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise JournalError(
            f"the journal holds an unreadable state for account {account_id!r} in run "
            f"{run_id!r} ({type(exc).__name__}); it was not written by sendgrid-ipam"
        ) from None


def _mget(keys: list[str], client: aioredis.Redis) -> Any:
    return client.mget(keys)


class RedisJournal(Journal):
    """A journal on Redis, shared by every process that opens it; use as ``async with
    RedisJournal.from_url("redis://127.0.0.1:6379/0") as journal:``.

    Several bulk-run workers (each with a `RedisCoordinator` on the same Redis) share one run
    through it: see `sendgrid_ipam.bulk`. A single Redis server (or a primary with its
    replicas), not Redis Cluster: a step's keys are written by one script.

    Args:
        url: the Redis server, as `RedisCoordinator.from_url` takes it; a ``namespace``
            query parameter (``redis://host:6379/0?namespace=acme``) sets `namespace`.
        namespace: the prefix of every key (default ``sendgrid-ipam``).
        timeout: seconds to connect, and for each command's reply.

    Raises:
        ConfigurationError: the URL, namespace or timeout cannot be used.
    """

    def __init__(self, url: str, *, namespace: str | None = None, timeout: float = 5.0) -> None:
        if not isinstance(url, str):
            raise ConfigurationError(f"the journal URL must be a string, not {url!r}")
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        named = [value for key, value in query if key == "namespace"]
        rest = [(key, value) for key, value in query if key != "namespace"]
        self._url = urlunsplit(parts._replace(query=urlencode(rest)))
        space = namespace if namespace is not None else (named[-1] if named else "sendgrid-ipam")
        if not isinstance(space, str) or not space or not space.isprintable() or " " in space:
            raise ConfigurationError(
                f"namespace must be non-empty printable text without spaces, not {space!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) \
                or not 0 < timeout <= 3600:
            raise ConfigurationError(
                f"timeout must be a number of seconds from 0 to 3600, not {timeout!r}")
        connect(self._url, timeout=timeout, what="journal")  # checks the URL now
        self.namespace = space
        """The prefix of every key."""
        self.server: str = server_name(self._url)
        """The server as errors name it: host:port/db, never a password."""
        self._timeout = float(timeout)
        self._client: aioredis.Redis | None = None
        self._cas: Any = None

    @classmethod
    def from_url(cls, url: str, **options: Any) -> RedisJournal:
        """The journal on the Redis at `url` (``redis://``, ``rediss://`` or ``unix://``);
        the keyword arguments are those of `RedisJournal`.

        Raises:
            ConfigurationError: the URL or an option cannot be used.
        """
        return cls(url, **options)

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<RedisJournal {self.server} namespace={self.namespace!r} {state}>"

    @property
    def is_open(self) -> bool:
        """Whether the journal is open (opened, and not closed since)."""
        return self._client is not None

    # keys
    def _run_key(self, run_id: str) -> str:
        # the run id's length first: no run id and account id can make another pair's key
        return f"{self.namespace}:journal:run:{len(run_id)}:{run_id}"

    def _state_key(self, run_id: str, account_id: str) -> str:
        return f"{self._run_key(run_id)}:account:{account_id}"

    @property
    def _unfinished_key(self) -> str:
        return f"{self.namespace}:journal:unfinished"

    @property
    def _runs_key(self) -> str:
        return f"{self.namespace}:journal:runs"

    # failures
    def _failed(self, exc: BaseException, doing: str) -> JournalError:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())[:_MAX_DETAIL]
        return JournalError(
            f"the journal on Redis at {self.server} failed while {doing} ({detail}); "
            "no write goes without it: run the same command again once Redis is back")

    async def _call(self, doing: str, command: Callable[[aioredis.Redis], Any]) -> Any:
        client = self._client
        if client is None:
            raise JournalError(f"the journal on Redis at {self.server} is not open")
        try:
            return await command(client)
        except FAILURES as exc:
            raise self._failed(exc, doing) from None

    # lifecycle
    async def _open(self) -> None:
        client = connect(self._url, timeout=self._timeout, what="journal",
                         max_connections=_MAX_CONNECTIONS)
        meta = f"{self.namespace}:journal:meta"
        try:
            pipe = client.pipeline(transaction=True)
            pipe.hsetnx(meta, "format", _FORMAT)
            pipe.hsetnx(meta, "schema_version", _SCHEMA_VERSION)
            pipe.hmget(meta, ["format", "schema_version"])
            # a write at open: a journal that cannot be written (a read-only replica)
            # fails here, before any purchase
            pipe.hset(meta, "opened_at", str(asyncio.get_running_loop().time()))
            found = (await pipe.execute())[2]
            persistence = await client.info("persistence")
        except FAILURES as exc:
            await close(client)
            raise JournalError(
                f"cannot open the journal on Redis at {self.server}: "
                + " ".join(f"{type(exc).__name__}: {exc}".split())[:_MAX_DETAIL]) from None
        form, version = (value.decode() if value else None for value in found)
        if (form, version) != (_FORMAT, _SCHEMA_VERSION):
            await close(client)
            raise JournalError(
                f"cannot open the journal on Redis at {self.server}: namespace "
                f"{self.namespace!r} holds {form!r} version {version}, and this sendgrid-ipam "
                f"reads {_FORMAT!r} version {_SCHEMA_VERSION}")
        if not int(persistence.get("aof_enabled", 1) or 0):
            logger.warning(
                "the journal's Redis at %s has appendonly off: a Redis restart loses the "
                "records since its last snapshot (run it with appendonly yes, appendfsync "
                "always)", self.server, extra={"sendgrid_ipam_event": "journal_not_durable"})
        self._cas = client.register_script(_COMPARE_AND_SET)
        self._client = client

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await close(client)

    # records
    async def _apply(self, run_id: str, account_id: str, record: Record) -> AccountState | None:
        errors, states = await self._commit(run_id, [(account_id, [record])])
        if errors[0] is not None:
            raise errors[0]
        return states[account_id] if isinstance(record, Begin) else None

    async def _apply_all(self, run_id: str, account_id: str, records: list[Record]) -> None:
        errors, _ = await self._commit(run_id, [(account_id, records)])
        if errors[0] is not None:
            raise errors[0]

    async def _apply_many(
        self, run_id: str, steps: list[tuple[str, list[Record]]]
    ) -> list[BaseException | None]:
        errors, _ = await self._commit(run_id, steps)
        return errors

    async def _begin_all(self, run_id: str, begins: list[tuple[str, Begin]]) -> None:
        errors, _ = await self._commit(run_id, [(account, [begin]) for account, begin in begins],
                                       all_or_none=True)
        for error in errors:
            if error is not None:
                raise error

    async def _commit(
        self, run_id: str, steps: list[tuple[str, list[Record]]], *, all_or_none: bool = False
    ) -> tuple[list[BaseException | None], dict[str, AccountState | None]]:
        """Decide every step against the stored states and store the result in one
        compare-and-set; again from a fresh read if another writer came first."""
        accounts = list(dict.fromkeys(account for account, _ in steps))
        keys = [self._state_key(run_id, account) for account in accounts]
        for _ in range(_MAX_CONFLICTS):
            raw = await self._call("reading", lambda client: client.mget(keys))
            read = dict(zip(accounts, raw, strict=True))
            states = {account: _decode(run_id, account, value) for account, value in read.items()}
            errors: list[BaseException | None] = []
            changes: dict[str, str] = {}
            for account, records in steps:
                try:
                    state, change = self._decide(run_id, account, states[account], records)
                except JournalError as exc:
                    errors.append(exc)
                    continue
                errors.append(None)
                if state is not states[account]:
                    states[account] = state
                    changes[account] = changes.get(account, "") + change
            if all_or_none and any(errors):
                return errors, states
            written = [account for account in accounts if account in changes]
            if not written:
                return errors, states
            args: list[bytes | str] = []
            for account in written:
                state = states[account]
                assert state is not None
                before = read[account]
                args += [b"" if before is None else b"=" + before, _encode(state),
                         changes[account], account, json.dumps([run_id, account])]
            keys_written = [f"{self._run_key(run_id)}:accounts", self._unfinished_key,
                            self._runs_key, *(self._state_key(run_id, a) for a in written)]
            stored = await self._call("writing", functools.partial(
                self._compare_and_set, keys_written, [*args, run_id]))
            if stored:
                return errors, states
            await asyncio.sleep(0)  # another writer came first: read again
        raise JournalError(
            f"the journal on Redis at {self.server}: account state kept changing under a "
            f"step of run {run_id!r} ({_MAX_CONFLICTS} tries); nothing of it was written")

    def _compare_and_set(
        self, keys: list[str], args: list[bytes | str], client: aioredis.Redis
    ) -> Any:
        return self._cas(keys=keys, args=args, client=client)

    @staticmethod
    def _decide(
        run_id: str, account_id: str, state: AccountState | None, records: list[Record]
    ) -> tuple[AccountState | None, str]:
        """The account's state after `records` (the same object if none is new), and what
        changed for the indexes ('b' begun, 'f' finished)."""
        change = ""
        for record in records:
            if check_record(run_id, account_id, state, record):
                state = apply_record(run_id, account_id, state, record)
                change += "b" if isinstance(record, Begin) else (
                    "f" if isinstance(record, Finish) else "")
        return state, change

    async def _load(self, run_id: str) -> Mapping[str, AccountState]:
        listed = await self._call("reading", lambda client: client.lrange(
            f"{self._run_key(run_id)}:accounts", 0, -1))
        accounts = list(dict.fromkeys(item.decode() for item in listed))
        states: dict[str, AccountState] = {}
        for start in range(0, len(accounts), _READ_BATCH):
            part = accounts[start:start + _READ_BATCH]
            raw = await self._call("reading", functools.partial(
                _mget, [self._state_key(run_id, account) for account in part]))
            for account, value in zip(part, raw, strict=True):
                state = _decode(run_id, account, value)
                if state is not None:
                    states[account] = state
        return states

    async def _runs(self) -> list[str]:
        members = await self._call("reading", lambda client: client.smembers(self._runs_key))
        return sorted(member.decode() for member in members)

    async def _unfinished(self, run_id: str) -> Mapping[str, str]:
        members = await self._call("reading", lambda client: client.smembers(
            self._unfinished_key))
        found: dict[str, str] = {}
        for member in sorted(members):
            try:
                run, account = json.loads(member)
            except (ValueError, TypeError):
                continue  # not ours
            if run != run_id and isinstance(account, str) and isinstance(run, str):
                found.setdefault(account, run)
        return found
