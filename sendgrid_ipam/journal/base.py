"""The `Journal` interface: what a provisioning run has done, kept where a crash cannot lose it.

A bulk run spends money on every write, and a process can die between any two instructions.
The journal is the run's memory across such deaths: per run (``run_id``) and partner account it
keeps, each record durable before the call that wrote it returns,

- the target, ``(region, count)``: a rerun with another target for the account is refused;
- the marker, the account's newest IP before the run's first write (None: it had none). IPs
  listed above the marker are the run's; without a marker a rerun could not tell them apart;
- the intent of each chunk (its number and size) before its POST, and its outcome (the IPs)
  after it. An intent with no outcome is a write that may or may not have landed;
- the wall-clock moments of ambiguous failures, which the audit waits out;
- finished accounts with their final IPs, excess IPs an audit found, and IPs it released.

Backends implement the storage and nothing else: the public methods here validate every value
(a `ValidationError` naming the field) and the rules of what may follow what live in
`check_record`, so that SQLite (one process) and a shared store such as Redis (several worker
processes) agree on every decision. A backend applies a record atomically: it reads the
account's state, calls `check_record`, and stores the record only if that says it is new.
"""

from __future__ import annotations

import abc
import asyncio
import ipaddress
import math
import re
import socket
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Protocol, Self, TypeAlias

import attrs

from ..errors import SendGridError, ValidationError

__all__ = [
    "AccountState",
    "Ambiguous",
    "Begin",
    "ChunkState",
    "Excess",
    "Finish",
    "Intent",
    "Journal",
    "JournalError",
    "JournalMismatchError",
    "LiveState",
    "Marker",
    "Outcome",
    "Record",
    "Released",
    "StateView",
    "apply_record",
    "check_record",
]

_MAX_ID = 256
_MAX_REGION = 32
# IPv4, the API's addresses, checked fast: a run validates thousands of them
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_inet_pton = socket.inet_pton
_AF_INET = socket.AF_INET


class JournalError(SendGridError):
    """The journal cannot be opened, read or written, or a record breaks the journal's order
    (an outcome with no intent, a record for an account that was never begun, ...)."""


class JournalMismatchError(JournalError):
    """A record contradicts one stored before: another target for the account, another marker,
    another size or other IPs for a chunk, other final IPs, or a write after the finish."""


@attrs.frozen
class ChunkState:
    """One chunk of an account's run: its size, and its IPs once its outcome is recorded.

    Attributes:
        number: the chunk's number within the account's run.
        size: how many IPs its request asked for.
        ips: the IPs it obtained; None while only the intent is recorded (the request may
            or may not have landed).
    """

    number: int
    size: int
    ips: tuple[str, ...] | None = None


@attrs.frozen
class AccountState:
    """Everything a journal holds about one account in one run.

    Attributes:
        run_id, account_id: whose state this is.
        region, count: the run's target for the account.
        marker_known: whether the marker was recorded (`marker` means nothing until it is).
        marker: the newest IP before the run's first write; None if the account had none.
        chunks: the chunks with an intent, by number.
        ambiguous_at: wall-clock times (Unix seconds) of ambiguous write failures, oldest first.
        finished: whether the account was finished.
        final_ips: the IPs the run obtained for it, once finished (else empty).
        excess: IPs an audit found beyond what the run reported.
        released: IPs released again (of `excess`).
    """

    run_id: str
    account_id: str
    region: str
    count: int
    marker_known: bool = False
    marker: str | None = None
    chunks: tuple[ChunkState, ...] = ()
    ambiguous_at: tuple[float, ...] = ()
    finished: bool = False
    final_ips: tuple[str, ...] = ()
    excess: tuple[str, ...] = ()
    released: tuple[str, ...] = ()

    @property
    def obtained(self) -> tuple[str, ...]:
        """The IPs of every recorded outcome, in chunk order (each IP once)."""
        ips = (ip for chunk in self.chunks for ip in chunk.ips or ())
        return tuple(dict.fromkeys(ips))

    @property
    def open_chunks(self) -> tuple[ChunkState, ...]:
        """Chunks with an intent and no outcome: writes that may or may not have landed."""
        return tuple(chunk for chunk in self.chunks if chunk.ips is None)

    @property
    def last_ambiguous_at(self) -> float | None:
        """The latest ambiguous failure, or None if there was none."""
        return max(self.ambiguous_at, default=None)

    def chunk(self, number: int) -> ChunkState | None:
        """The chunk of that number, or None."""
        for chunk in self.chunks:
            if chunk.number == number:
                return chunk
        return None


# records: what the public methods hand a backend, validated
@attrs.frozen
class Begin:
    """The run's target for an account (`Journal.begin_account`)."""

    region: str
    count: int


@attrs.frozen
class Marker:
    """The newest IP before the run's first write; None: the account had none."""

    marker: str | None


@attrs.frozen
class Intent:
    """A chunk about to be sent."""

    chunk: int
    size: int


@attrs.frozen
class Outcome:
    """The IPs a chunk obtained."""

    chunk: int
    ips: tuple[str, ...]


@attrs.frozen
class Ambiguous:
    """An ambiguous write failure at `at` (Unix seconds)."""

    at: float


@attrs.frozen
class Finish:
    """The account is done: the IPs the run obtained for it."""

    ips: tuple[str, ...]


@attrs.frozen
class Excess:
    """IPs an audit found beyond what the run reported."""

    ips: tuple[str, ...]


@attrs.frozen
class Released:
    """IPs released again after an audit."""

    ips: tuple[str, ...]


Record: TypeAlias = Begin | Marker | Intent | Outcome | Ambiguous | Finish | Excess | Released
# (tuples, not `A | B`: a union in an isinstance call is built anew at each call)
_PROGRESS = (Intent, Outcome, Marker)
_IP_LISTS = (Finish, Excess, Released)


def _where(run_id: str, account_id: str) -> str:
    return f"account {account_id!r} in run {run_id!r}"


def check_record(run_id: str, account_id: str, state: StateView | None, record: Record) -> bool:
    """Whether `record` adds anything to `state` (False: it repeats what is stored).

    Repeating a record is harmless, so that a step retried after a crash may write it again.

    Raises:
        JournalMismatchError: the record contradicts the state.
        JournalError: the record breaks the order (no `Begin` yet, an outcome with no intent).
    """
    # this runs for every record: a message's text is made only when one is refused, and
    # the common records (a run's progress) are tried first
    if isinstance(record, _PROGRESS):
        if state is None:
            raise JournalError(
                f"{_where(run_id, account_id)} has no target: begin_account() first")
        new = _check_progress(run_id, account_id, state, record)
        if new and state.finished:
            raise JournalMismatchError(f"{_where(run_id, account_id)} is finished already")
        return new
    if isinstance(record, Begin):
        if state is None:
            return True
        if (state.region, state.count) != (record.region, record.count):
            raise JournalMismatchError(
                f"{_where(run_id, account_id)} was begun with {state.count} IPs in "
                f"{state.region!r}; this asks {record.count} in {record.region!r}"
            )
        return False
    if state is None:
        raise JournalError(f"{_where(run_id, account_id)} has no target: begin_account() first")
    if isinstance(record, Finish):
        if state.finished:
            if set(record.ips) != set(state.final_ips):
                raise JournalMismatchError(
                    f"{_where(run_id, account_id)} is finished already, with other IPs")
            return False
        return True
    if isinstance(record, Ambiguous):
        return True
    held = state.excess if isinstance(record, Excess) else state.released
    return not set(record.ips) <= set(held)


def _check_progress(
    run_id: str, account_id: str, state: StateView, record: Intent | Outcome | Marker
) -> bool:
    if isinstance(record, Marker):
        if not state.marker_known:
            return True
        if state.marker != record.marker:
            raise JournalMismatchError(f"{_where(run_id, account_id)} has the marker "
                                       f"{state.marker!r}, not {record.marker!r}")
        return False
    chunk = state.chunk(record.chunk)
    if isinstance(record, Intent):
        if chunk is None:
            return True
        if chunk.size != record.size:
            raise JournalMismatchError(
                f"chunk {record.chunk} of {_where(run_id, account_id)} has the size "
                f"{chunk.size}, not {record.size}")
        return False
    if chunk is None:
        raise JournalError(f"chunk {record.chunk} of {_where(run_id, account_id)} has no "
                           "intent: record_intent() first")
    if chunk.ips is None:
        return True
    if set(chunk.ips) != set(record.ips):
        raise JournalMismatchError(
            f"chunk {record.chunk} of {_where(run_id, account_id)} has other IPs recorded")
    return False


class StateView(Protocol):
    """What `check_record` reads of an account's state: an `AccountState`, or a backend's
    `LiveState`."""

    @property
    def region(self) -> str: ...
    @property
    def count(self) -> int: ...
    @property
    def marker_known(self) -> bool: ...
    @property
    def marker(self) -> str | None: ...
    @property
    def finished(self) -> bool: ...
    @property
    def final_ips(self) -> Sequence[str]: ...
    @property
    def excess(self) -> Sequence[str]: ...
    @property
    def released(self) -> Sequence[str]: ...

    def chunk(self, number: int) -> ChunkState | None:
        """The chunk of that number, or None."""


class LiveState:
    """An account's state that records are applied to in place: for a backend that keeps
    states in memory and checks records against them (`check_record` reads it as it reads
    an `AccountState`). `frozen` makes the `AccountState`."""

    __slots__ = ("account_id", "ambiguous_at", "chunks", "count", "excess", "final_ips",
                 "finished", "marker", "marker_known", "region", "released", "run_id")

    def __init__(self, run_id: str, account_id: str, region: str, count: int) -> None:
        self.run_id: str = run_id
        self.account_id: str = account_id
        self.region: str = region
        self.count: int = count
        self.marker_known: bool = False
        self.marker: str | None = None
        self.chunks: dict[int, ChunkState] = {}
        self.ambiguous_at: list[float] = []
        self.finished: bool = False
        self.final_ips: tuple[str, ...] = ()
        self.excess: list[str] = []
        self.released: list[str] = []

    @classmethod
    def of(cls, state: AccountState) -> LiveState:
        """A live copy of `state`."""
        live = cls(state.run_id, state.account_id, state.region, state.count)
        live.marker_known, live.marker = state.marker_known, state.marker
        live.chunks = {chunk.number: chunk for chunk in state.chunks}
        live.ambiguous_at = list(state.ambiguous_at)
        live.finished, live.final_ips = state.finished, state.final_ips
        live.excess, live.released = list(state.excess), list(state.released)
        return live

    def chunk(self, number: int) -> ChunkState | None:
        """The chunk of that number, or None."""
        return self.chunks.get(number)

    def apply(self, record: Record) -> None:
        """Apply `record`, one `check_record` said is new (a `Begin` changes nothing)."""
        if isinstance(record, Intent):
            self.chunks[record.chunk] = ChunkState(record.chunk, record.size)
        elif isinstance(record, Outcome):
            self.chunks[record.chunk] = ChunkState(
                record.chunk, self.chunks[record.chunk].size, record.ips)
        elif isinstance(record, Marker):
            self.marker_known, self.marker = True, record.marker
        elif isinstance(record, Finish):
            self.finished, self.final_ips = True, record.ips
        elif isinstance(record, Ambiguous):
            self.ambiguous_at.append(record.at)
        elif isinstance(record, Excess | Released):
            held = self.excess if isinstance(record, Excess) else self.released
            held.extend(ip for ip in dict.fromkeys(record.ips) if ip not in held)

    def frozen(self) -> AccountState:
        """The state as an `AccountState`."""
        return AccountState(
            self.run_id, self.account_id, self.region, self.count, self.marker_known,
            self.marker, tuple(self.chunks[number] for number in sorted(self.chunks)),
            tuple(self.ambiguous_at), self.finished, self.final_ips, tuple(self.excess),
            tuple(self.released))


def apply_record(
    run_id: str, account_id: str, state: AccountState | None, record: Record
) -> AccountState:
    """`state` with `record` applied, for a backend that stores whole states (the record
    must be one `check_record` said is new)."""
    if isinstance(record, Begin):
        return state or AccountState(run_id, account_id, record.region, record.count)
    assert state is not None  # check_record refused a record before the Begin
    live = LiveState.of(state)
    live.apply(record)
    return live.frozen()


# validation
def _text(field: str, value: object, limit: int) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(field, f"must be a non-empty string, not {value!r}")
    if len(value) > limit or not value.isprintable():
        raise ValidationError(field, f"must be at most {limit} printable characters")
    return value


def _integer(field: str, value: object, minimum: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValidationError(field, f"must be an integer of at least {minimum}, not {value!r}")
    return value


def _ip(field: str, value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, f"must be an IP address string, not {value!r}")
    if _IPV4.fullmatch(value):
        return value
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValidationError(field, f"must be an IP address, not {value!r}") from None
    return value


_VALID_IPS: set[str] = set()
"""IPs validated before, to skip validating them again (a finish repeats the IPs of its
account's outcomes); cleared when it holds `_MAX_VALID_IPS`."""
_MAX_VALID_IPS = 100_000
_VALID_IDS: set[str] = set()
"""Account ids validated before (each step of a run names its account); cleared as
`_VALID_IPS` is."""


def _ips(field: str, value: object) -> tuple[str, ...]:
    """`value` as a tuple of valid IPs, each once (`value` itself if it is one)."""
    if type(value) is not tuple and (
            isinstance(value, str | bytes) or not isinstance(value, Sequence)):
        raise ValidationError(field, f"must be a sequence of IP addresses, not {value!r}")
    try:
        distinct = set(value)
    except TypeError:  # an item that cannot be hashed: refused below
        distinct = None
    if distinct is not None:
        # a tuple of distinct IPs is returned as it is (the common case: no copy)
        if distinct <= _VALID_IPS:  # it holds only valid IPs, all str
            # IPs validated before (a finish repeats its outcomes' IPs)
            if type(value) is tuple and len(distinct) == len(value):
                return value
            return tuple(dict.fromkeys(value))
        # IPv4 addresses only: the C parser accepts exactly what `_IPV4` does (four
        # decimal octets of at most 255, no leading zero, nothing around them), at half
        # the cost of the regular expression; anything else is looked at one by one below
        try:
            for ip in distinct:
                _inet_pton(_AF_INET, ip)
        except (OSError, TypeError, ValueError):  # (not a str, a NUL, a surrogate, IPv6...)
            pass
        else:
            if len(_VALID_IPS) >= _MAX_VALID_IPS:
                _VALID_IPS.clear()
            _VALID_IPS.update(distinct)
            if type(value) is tuple and len(distinct) == len(value):
                return value
            return tuple(dict.fromkeys(value))
    return tuple(dict.fromkeys(_ip(f"{field}[{index}]", ip) for index, ip in enumerate(value)))


def _checked(index: int, record: object) -> Record:
    """`record` rebuilt from validated values (a `ValidationError` naming
    ``records[index]`` if not)."""
    try:
        return _valid(record)
    except ValidationError as exc:  # named here: the common case makes no field name
        raise ValidationError(f"records[{index}]{exc.field}", exc.rule) from None


def _valid(record: object) -> Record:
    """`record` if its values are valid as they are (the common case: no copy), else rebuilt
    from validated values."""
    if isinstance(record, Intent):
        chunk, size = record.chunk, record.size
        if type(chunk) is int and type(size) is int and chunk >= 0 and size >= 1:
            return record
        return Intent(_integer(".chunk", chunk, 0), _integer(".size", size, 1))
    if isinstance(record, Outcome):
        ips, chunk = _ips(".ips", record.ips), record.chunk
        if ips is record.ips and type(chunk) is int and chunk >= 0:
            return record
        return Outcome(_integer(".chunk", chunk, 0), ips)
    if isinstance(record, Marker):
        marker = record.marker
        if marker is None or marker in _VALID_IPS:
            return record
        return Marker(_ip(".marker", marker))
    if isinstance(record, _IP_LISTS):
        ips = _ips(".ips", record.ips)
        return record if ips is record.ips else type(record)(ips)
    if isinstance(record, Ambiguous):
        at = record.at
        if isinstance(at, bool) or not isinstance(at, int | float) or not (
                math.isfinite(at) and at >= 0):
            raise ValidationError(".at", f"must be a finite time of at least 0, not {at!r}")
        return record if type(at) is float else Ambiguous(float(at))
    raise ValidationError("", f"must be a record of an account's progress, not {record!r}")


Steps: TypeAlias = list[tuple[int, str, list[Record]]]


def checked_steps(
    run_id: str, steps: Sequence[tuple[str, Sequence[Record]]]
) -> tuple[str, list[BaseException | None], Steps]:
    """`record_many`'s arguments validated: the run id, the errors of the steps refused
    (None for the others), and the others as ``(index, account_id, records)``.

    Raises:
        ValidationError: a run id of the wrong type or form.
    """
    # this runs for every step of a run: the common records (a plan's intents, a marker
    # validated before) are checked inline, account ids validated before are known by a set
    # lookup, and a field name is made only when a record is refused
    run = _text("run_id", run_id, _MAX_ID)
    errors: list[BaseException | None] = [None] * len(steps)
    valid: Steps = []
    for index, (account_id, records) in enumerate(steps):
        try:
            if type(account_id) is not str or account_id not in _VALID_IDS:
                _text("account_id", account_id, _MAX_ID)
                if len(_VALID_IDS) >= _MAX_VALID_IPS:
                    _VALID_IDS.clear()
                _VALID_IDS.add(account_id)
            checked: list[Record] = []
            for record in records:
                kind = type(record)
                if kind is Intent:
                    chunk, size = record.chunk, record.size  # type: ignore[union-attr]
                    if type(chunk) is int and type(size) is int and chunk >= 0 and size >= 1:
                        checked.append(record)
                        continue
                elif kind is Marker:
                    marker = record.marker  # type: ignore[union-attr]
                    if marker is None or (type(marker) is str and marker in _VALID_IPS):
                        checked.append(record)
                        continue
                elif kind is Outcome:
                    chunk = record.chunk  # type: ignore[union-attr]
                    if type(chunk) is int and chunk >= 0 and _ips(
                            ".ips", record.ips) is record.ips:  # type: ignore[union-attr]
                        checked.append(record)
                        continue
                elif kind is Finish and _ips(
                        ".ips", record.ips) is record.ips:  # type: ignore[union-attr]
                    checked.append(record)
                    continue
                checked.append(_valid(record))
        except ValidationError as exc:
            if exc.field != "account_id":  # name the record: check them again, one by one
                for number, record in enumerate(records):
                    try:
                        _checked(number, record)
                    except ValidationError as named:
                        exc = named
                        break
            errors[index] = exc
            continue
        valid.append((index, account_id, checked))
    return run, errors, valid


def merged(errors: list[BaseException | None], valid: Steps,
           answers: list[BaseException | None]) -> list[BaseException | None]:
    """`errors` with the backend's `answers` for the `valid` steps put in their places."""
    for (index, _, _), answer in zip(valid, answers, strict=True):
        errors[index] = answer
    return errors


class Journal(abc.ABC):
    """Durable state of provisioning runs; use as ``async with journal:``.

    Every ``record_*``, `begin_account` and `finish_account` call returns only once its record
    is durable: a process killed after the call returned keeps it. Calls from many tasks may
    overlap. Repeating a record is harmless; contradicting one raises `JournalMismatchError`.

    Subclasses implement `_open`, `_close`, `_apply` and `_load`.
    """

    # lifecycle
    @property
    @abc.abstractmethod
    def is_open(self) -> bool:
        """Whether the journal is open (opened, and not closed since)."""

    async def open(self) -> Self:
        """Open the journal (at once if it is open); returns it.

        Raises:
            JournalError: it cannot be opened or written (a missing directory, a read-only
                file, a file that is not a journal, a journal of another schema version).
        """
        if not self.is_open:
            await self._open()
        return self

    async def close(self) -> None:
        """Close the journal once every record awaited so far is durable. Safe to call twice."""
        await self._close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # records
    async def begin_account(
        self, run_id: str, account_id: str, *, region: str, count: int
    ) -> AccountState:
        """Record the run's target for an account (once), and return the account's state.

        Args:
            run_id: the run.
            account_id: the partner account.
            region: the region its IPs are bought in.
            count: how many IPs the run obtains for it.

        Raises:
            ValidationError: a value of the wrong type or form.
            JournalMismatchError: another target was recorded for the account in this run.
            JournalError: the journal cannot be written.
        """
        record = Begin(_text("region", region, _MAX_REGION), _integer("count", count, 1))
        key = self._key(run_id, account_id)
        state = await self._apply(*key, record)
        assert state is not None
        return state

    async def record_marker(self, run_id: str, account_id: str, marker: str | None) -> None:
        """Record the account's newest IP before the run's first write (None: it had none).

        Raises:
            ValidationError, JournalError: as `begin_account`.
            JournalMismatchError: another marker was recorded, or the account is finished.
        """
        record = Marker(None if marker is None else _ip("marker", marker))
        await self._apply(*self._key(run_id, account_id), record)

    async def record_intent(self, run_id: str, account_id: str, chunk: int, size: int) -> None:
        """Record that chunk number `chunk`, asking `size` IPs, is about to be sent.

        Raises:
            ValidationError, JournalError: as `begin_account`.
            JournalMismatchError: the chunk was recorded with another size, or the account
                is finished.
        """
        record = Intent(_integer("chunk", chunk, 0), _integer("size", size, 1))
        await self._apply(*self._key(run_id, account_id), record)

    async def record_outcome(
        self, run_id: str, account_id: str, chunk: int, ips: Sequence[str]
    ) -> None:
        """Record the IPs chunk number `chunk` obtained (none, if it was found to buy none).

        Raises:
            ValidationError, JournalError: as `begin_account`; JournalError also when the
                chunk has no intent.
            JournalMismatchError: other IPs were recorded for the chunk, or the account is
                finished.
        """
        record = Outcome(_integer("chunk", chunk, 0), _ips("ips", ips))
        await self._apply(*self._key(run_id, account_id), record)

    async def record_ambiguous(self, run_id: str, account_id: str, at: float | None = None) -> None:
        """Record an ambiguous write failure of the account at `at` (Unix seconds; default now).

        Raises:
            ValidationError, JournalError: as `begin_account`.
        """
        moment = time.time() if at is None else at
        if isinstance(moment, bool) or not isinstance(moment, int | float):
            raise ValidationError("at", f"must be a number of seconds, not {moment!r}")
        if not math.isfinite(moment) or moment < 0:
            raise ValidationError("at", f"must be a finite time of at least 0, not {moment!r}")
        await self._apply(*self._key(run_id, account_id), Ambiguous(float(moment)))

    async def finish_account(self, run_id: str, account_id: str, ips: Sequence[str]) -> None:
        """Record that the account is done, with the IPs the run obtained for it.

        Raises:
            ValidationError, JournalError: as `begin_account`.
            JournalMismatchError: it was finished before with other IPs.
        """
        record = Finish(_ips("ips", ips))
        await self._apply(*self._key(run_id, account_id), record)

    async def record_excess(self, run_id: str, account_id: str, ips: Sequence[str]) -> None:
        """Add IPs an audit found beyond what the run reported for the account.

        Raises:
            ValidationError, JournalError: as `begin_account`.
        """
        await self._apply(*self._key(run_id, account_id), Excess(_ips("ips", ips)))

    async def record_released(self, run_id: str, account_id: str, ips: Sequence[str]) -> None:
        """Add IPs that were released from the account after an audit.

        Raises:
            ValidationError, JournalError: as `begin_account`.
        """
        await self._apply(*self._key(run_id, account_id), Released(_ips("ips", ips)))

    async def begin_accounts(
        self, run_id: str, targets: Sequence[tuple[str, str, int]]
    ) -> None:
        """Record the run's target of many accounts at once: ``(account_id, region, count)``
        each, as `begin_account` does, in one step (one commit where the backend can).

        Raises:
            ValidationError, JournalError: as `begin_account`.
            JournalMismatchError: another target was recorded for one of them (then none of
                them is recorded, where the backend commits them in one step).
        """
        run = _text("run_id", run_id, _MAX_ID)
        begins = [(_text(f"targets[{index}].account_id", account, _MAX_ID),
                   Begin(_text("region", region, _MAX_REGION), _integer("count", count, 1)))
                  for index, (account, region, count) in enumerate(targets)]
        if begins:
            await self._begin_all(run, begins)
            if len(_VALID_IDS) + len(begins) > _MAX_VALID_IPS:
                _VALID_IDS.clear()
            _VALID_IDS.update(account for account, _ in begins)  # their steps skip _text

    async def record_all(self, run_id: str, account_id: str, records: Sequence[Record]) -> None:
        """Record several records of one account in order, in one step (one commit where the
        backend can): a marker with the first intent, an outcome with the next intent, the
        last outcome with the finish. Each is checked as its own ``record_*`` method checks it.

        Args:
            records: `Marker`, `Intent`, `Outcome`, `Ambiguous`, `Finish`, `Excess` and
                `Released` records, applied in this order.

        Raises:
            ValidationError, JournalError, JournalMismatchError: as the ``record_*`` methods;
                where the backend commits in one step, none of the records is then stored.
        """
        checked = [_checked(index, record) for index, record in enumerate(records)]
        if checked:
            await self._apply_all(*self._key(run_id, account_id), checked)

    async def record_many(
        self, run_id: str, steps: Sequence[tuple[str, Sequence[Record]]], *,
        durable: bool = True,
    ) -> list[BaseException | None]:
        """Several accounts' steps at once (one commit where the backend can): each
        ``(account_id, records)`` applied as `record_all` applies it, on its own.

        Args:
            durable: False lets the backend answer once the steps are stored where the
                process's death cannot lose them, without waiting for them to reach the disk
                (`SQLiteJournal`: committed without an fsync). A crash of the machine may
                then lose them, together with every later record and no earlier one (they
                reach the disk with the next durable commit, or when the journal is
                closed). For records no write waits for: a rerun lists the account anyway.

        Returns, per step in order, None if it was stored, else the error that refused it
        (`ValidationError`, `JournalMismatchError`, `JournalError`): one refused step does
        not refuse the others.

        Raises:
            ValidationError: a run id of the wrong type or form.
            JournalError: the journal cannot be written (then no step is stored, where the
                backend commits them in one step; else each step not stored has its error).
        """
        return await self.submit_many(run_id, steps, durable=durable)

    def submit_many(
        self, run_id: str, steps: Sequence[tuple[str, Sequence[Record]]], *,
        durable: bool = True,
    ) -> asyncio.Future[list[BaseException | None]]:
        """`record_many`, started now: the future of its answer (a backend may queue the
        steps without a task of their own; cancelling the future does not unwrite them).

        Raises:
            ValidationError: a run id of the wrong type or form.
        """
        run, errors, valid = checked_steps(run_id, steps)

        sent = self._submit_valid(run, [(account, records) for _, account, records in valid],
                                  durable=durable)
        if len(valid) == len(steps):
            return sent

        async def answer() -> list[BaseException | None]:
            return merged(errors, valid, await sent)

        return asyncio.ensure_future(answer())

    async def sync(self) -> None:
        """Make every record stored so far durable, also those of ``record_many(...,
        durable=False)`` (a backend whose every record is durable has nothing to do).

        Raises:
            JournalError: the journal cannot be written.
        """
        await self._sync()

    async def load(self, run_id: str) -> Mapping[str, AccountState]:
        """Every account's state in the run, by account id (empty for an unknown run).

        Raises:
            ValidationError: a run id of the wrong type or form.
            JournalError: the journal cannot be read.
        """
        return await self._load(_text("run_id", run_id, _MAX_ID))

    async def runs(self) -> list[str]:
        """The id of every run the journal holds, sorted.

        Raises:
            JournalError: the journal cannot be read.
        """
        return await self._runs()

    async def unfinished_elsewhere(
        self, run_id: str, account_ids: Sequence[str]
    ) -> Mapping[str, str]:
        """Which of `account_ids` another run of this journal began and did not finish.

        A run resumed under another id (the requests were edited, say) would buy those
        accounts' IPs again: a caller refuses to start such a run. Returns account id -> the
        other run's id.

        Raises:
            ValidationError: a run or account id of the wrong type or form.
            JournalError: the journal cannot be read.
        """
        wanted = {account if type(account) is str and account in _VALID_IDS
                  else _text("account_id", account, _MAX_ID) for account in account_ids}
        found = await self._unfinished(_text("run_id", run_id, _MAX_ID))
        return {account: run for account, run in found.items() if account in wanted}

    @staticmethod
    def check_run_id(run_id: object) -> str:
        """`run_id` if it is a valid run id (non-empty printable text, at most 256 characters).

        Raises:
            ValidationError: it is not.
        """
        return _text("run_id", run_id, _MAX_ID)

    @staticmethod
    def _key(run_id: str, account_id: str) -> tuple[str, str]:
        return _text("run_id", run_id, _MAX_ID), _text("account_id", account_id, _MAX_ID)

    # what a backend implements
    @abc.abstractmethod
    async def _open(self) -> None:
        """Open the storage; raise `JournalError` if it cannot be opened or written."""

    @abc.abstractmethod
    async def _close(self) -> None:
        """Close the storage once pending records are durable; nothing if not open."""

    @abc.abstractmethod
    async def _apply(self, run_id: str, account_id: str, record: Record) -> AccountState | None:
        """Store `record` durably and atomically if `check_record` says it is new.

        Returns the account's state after it for a `Begin` (None is allowed otherwise).
        Raises what `check_record` raises, or `JournalError` if the store fails or the
        journal is not open.
        """

    @abc.abstractmethod
    async def _load(self, run_id: str) -> Mapping[str, AccountState]:
        """Every account's state in the run."""

    async def _apply_all(self, run_id: str, account_id: str, records: list[Record]) -> None:
        """Store `records` of one account in order (a backend that can: atomically)."""
        for record in records:
            await self._apply(run_id, account_id, record)

    async def _apply_many(
        self, run_id: str, steps: list[tuple[str, list[Record]]]
    ) -> list[BaseException | None]:
        """Store each account's records (a backend that can: in one commit); per step, None
        or the error that refused it."""
        errors: list[BaseException | None] = []
        for account_id, records in steps:
            try:
                await self._apply_all(run_id, account_id, records)
            except Exception as exc:  # refused, or the store failed: that step's answer
                errors.append(exc)
            else:
                errors.append(None)
        return errors

    def _submit_valid(
        self, run_id: str, steps: list[tuple[str, list[Record]]], *, durable: bool
    ) -> asyncio.Future[list[BaseException | None]]:
        """Start storing validated steps (`_apply_many`, or `_apply_many_behind` when not
        `durable`); the future of the answer. A backend that queues steps itself may
        override it to answer without a task."""
        return asyncio.ensure_future(self._apply_many(run_id, steps) if durable
                                     else self._apply_many_behind(run_id, steps))

    async def _sync(self) -> None:  # noqa: B027 (a hook: most backends have nothing to do)
        """Make the records of ``durable=False`` steps durable (by default: they are)."""

    async def _apply_many_behind(
        self, run_id: str, steps: list[tuple[str, list[Record]]]
    ) -> list[BaseException | None]:
        """`_apply_many` for steps that need not wait for the disk (``durable=False``); by
        default the same."""
        return await self._apply_many(run_id, steps)

    async def _begin_all(self, run_id: str, begins: list[tuple[str, Begin]]) -> None:
        """Store the `Begin` of each account (a backend that can: atomically)."""
        for account_id, begin in begins:
            await self._apply(run_id, account_id, begin)

    async def _runs(self) -> list[str]:
        """Every run id the journal holds (a backend that can list them implements this)."""
        raise JournalError(f"{type(self).__name__} cannot list its runs: give the run id")

    @abc.abstractmethod
    async def _unfinished(self, run_id: str) -> Mapping[str, str]:
        """Every account begun and not finished in a run other than `run_id`: account -> run."""
