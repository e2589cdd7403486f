"""Faults the fake can inject: scripted for the next calls of an operation, or at random rates.

A fault is "applied" when the operation changes the state before the failure is answered:
the case a client cannot tell from an ordinary failure, and must reconcile before it resends.
A fault "lands late" when the failure is answered at once but the operation changes the state
`delay` seconds afterwards: a gateway that timed out while the backend still finished, so no
check made right after the failure can see the write. Only write operations can be applied or
land late; for a read, such a fault acts as its plain twin.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from collections.abc import Callable, Iterable

import attrs

from ._operations import OPERATION_IDS


class FaultKind(enum.Enum):
    """What goes wrong."""

    ERROR = "error"
    """An error status with the API's JSON error body."""
    DROP = "drop"
    """The connection is closed with no reply at all."""
    SLOW = "slow"
    """The normal reply, after a delay."""
    HTML = "html"
    """An error status with an HTML page, as a proxy in front of the API answers."""
    MALFORMED = "malformed"
    """The operation's own (2xx) status with its JSON body cut short."""


_CAN_BE_APPLIED = frozenset({FaultKind.ERROR, FaultKind.DROP, FaultKind.HTML})


def _check_lands_late(fault: Fault, _: attrs.Attribute[bool], lands_late: bool) -> None:
    if lands_late and (fault.applied or fault.kind not in _CAN_BE_APPLIED):
        raise ValueError(
            f"only an error, html or drop fault that is not applied can land late, not {fault.name}"
        )


def _check_status(fault: Fault, _: attrs.Attribute[int | None], status: int | None) -> None:
    needs_status = fault.kind in (FaultKind.ERROR, FaultKind.HTML)
    if needs_status != (status is not None) or (status is not None and not 400 <= status <= 599):
        raise ValueError(
            f"a {fault.kind.value} fault takes an error status (400-599), not {status}"
        )


@attrs.frozen
class Fault:
    """One fault for one request; build it with the class methods, e.g. `Fault.applied_error(502)`.

    Attributes:
        kind: what goes wrong.
        status: the status answered by ERROR and HTML faults.
        applied: whether a write operation takes effect before the failure.
        delay: seconds a SLOW fault waits, or after which a late write lands.
        lands_late: whether a write operation takes effect `delay` seconds after the failure
            was answered (ERROR, HTML and DROP faults that are not applied).
    """

    kind: FaultKind
    status: int | None = attrs.field(default=None, validator=_check_status)
    applied: bool = False
    delay: float = attrs.field(default=0.0, validator=attrs.validators.ge(0.0))
    lands_late: bool = attrs.field(default=False, validator=_check_lands_late)

    @classmethod
    def error(cls, status: int = 500) -> Fault:
        """Answer `status` with the API's error body; nothing is applied."""
        return cls(FaultKind.ERROR, status)

    @classmethod
    def applied_error(cls, status: int = 502) -> Fault:
        """Apply the operation, then answer `status` with the API's error body."""
        return cls(FaultKind.ERROR, status, applied=True)

    @classmethod
    def drop(cls) -> Fault:
        """Close the connection without applying the operation or replying."""
        return cls(FaultKind.DROP)

    @classmethod
    def applied_drop(cls) -> Fault:
        """Apply the operation, then close the connection without a reply."""
        return cls(FaultKind.DROP, applied=True)

    @classmethod
    def slow(cls, delay: float = 0.05) -> Fault:
        """Wait `delay` seconds, then handle the request normally."""
        return cls(FaultKind.SLOW, delay=delay)

    @classmethod
    def html(cls, status: int = 502, *, applied: bool = False) -> Fault:
        """Answer `status` with a text/html error page, optionally after applying the operation."""
        return cls(FaultKind.HTML, status, applied=applied)

    @classmethod
    def late(cls, status: int = 504, *, delay: float = 1.0, html: bool = False) -> Fault:
        """Answer `status` at once (the API's error body, or an HTML page if `html`) without
        applying the operation, then apply it `delay` seconds later."""
        return cls(
            FaultKind.HTML if html else FaultKind.ERROR, status, delay=delay, lands_late=True
        )

    @classmethod
    def late_drop(cls, delay: float = 1.0) -> Fault:
        """Close the connection without a reply or applying the operation, then apply it
        `delay` seconds later."""
        return cls(FaultKind.DROP, delay=delay, lands_late=True)

    @classmethod
    def malformed(cls) -> Fault:
        """Apply the operation and answer its status with the JSON body cut short."""
        return cls(FaultKind.MALFORMED, applied=True)

    @property
    def name(self) -> str:
        """The name recorded in the request log: "error", "applied_error", "late_drop", ..."""
        if self.lands_late:
            return f"late_{self.kind.value}"
        applied = self.applied and self.kind in _CAN_BE_APPLIED
        return f"applied_{self.kind.value}" if applied else self.kind.value

    def for_read(self) -> Fault:
        """The fault as a read operation meets it: never applied, never landing late."""
        if self.kind not in _CAN_BE_APPLIED:
            return self
        return attrs.evolve(self, applied=False, lands_late=False, delay=0.0)


def _rate(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, not {value}")


def _to_tuple(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _statuses(_: object, __: attrs.Attribute[tuple[int, ...]], value: tuple[int, ...]) -> None:
    if not value or not all(400 <= status <= 599 for status in value):
        raise ValueError(f"statuses must be error statuses (400-599), not {value}")


def _operation_ids(value: Iterable[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    ids = frozenset([value] if isinstance(value, str) else value)
    if ids - OPERATION_IDS:
        raise ValueError(f"unknown operationId(s): {', '.join(sorted(ids - OPERATION_IDS))}")
    return ids


@attrs.frozen
class FaultRates:
    """Probabilities of random faults per request, drawn from the fake's seeded generator.

    Attributes:
        error: the probability of an error status, nothing applied.
        applied_error: the probability of the operation applied, then an error status.
        applied_drop: the probability of the operation applied, then the connection dropped.
        slow: the probability of a normal reply after ``slow_delay``.
        html: the probability of an HTML error page (a proxy's), nothing applied.
        malformed: the probability of a 2xx reply with its JSON cut short (a write applied).
        late: the probability of a write landing late: an error status (JSON or HTML, an
            even chance) or a dropped connection (one time in three) is answered at once, and
            the write lands after a delay between ``late_delay_min`` and ``late_delay_max``.
            The probabilities' sum must not exceed 1.
        statuses: the statuses ERROR, APPLIED_ERROR, HTML and late faults choose from.
        slow_delay: seconds a SLOW fault waits.
        late_delay_min: the least delay, in seconds, before a late write lands.
        late_delay_max: the longest delay, in seconds, before a late write lands.
        operations: the operationIds that get random faults; None for all.
    """

    error: float = attrs.field(default=0.0, validator=_rate)
    applied_error: float = attrs.field(default=0.0, validator=_rate)
    applied_drop: float = attrs.field(default=0.0, validator=_rate)
    slow: float = attrs.field(default=0.0, validator=_rate)
    html: float = attrs.field(default=0.0, validator=_rate)
    malformed: float = attrs.field(default=0.0, validator=_rate)
    late: float = attrs.field(default=0.0, validator=_rate)
    statuses: tuple[int, ...] = attrs.field(
        default=(500, 502, 503, 504), converter=_to_tuple, validator=_statuses
    )
    slow_delay: float = attrs.field(default=0.05, validator=attrs.validators.ge(0.0))
    late_delay_min: float = attrs.field(default=0.5, validator=attrs.validators.ge(0.0))
    late_delay_max: float = attrs.field(default=3.0, validator=attrs.validators.ge(0.0))
    operations: frozenset[str] | None = attrs.field(default=None, converter=_operation_ids)

    def __attrs_post_init__(self) -> None:
        if sum(rate for rate, _ in self._makers()) > 1.0 + 1e-9:
            raise ValueError("the fault rates add up to more than 1")
        if self.late_delay_min > self.late_delay_max:
            raise ValueError("late_delay_min must not exceed late_delay_max")

    def _makers(self) -> list[tuple[float, Callable[[random.Random], Fault]]]:
        return [
            (self.error, lambda rng: Fault.error(rng.choice(self.statuses))),
            (self.applied_error, lambda rng: Fault.applied_error(rng.choice(self.statuses))),
            (self.applied_drop, lambda _: Fault.applied_drop()),
            (self.slow, lambda _: Fault.slow(self.slow_delay)),
            (self.html, lambda rng: Fault.html(rng.choice(self.statuses))),
            (self.malformed, lambda _: Fault.malformed()),
            (self.late, self._late_fault),  # last, so that adding it moved no other draw
        ]

    def _late_fault(self, rng: random.Random) -> Fault:
        delay = rng.uniform(self.late_delay_min, self.late_delay_max)
        shape = rng.randrange(3)
        if shape == 2:
            return Fault.late_drop(delay)
        return Fault.late(rng.choice(self.statuses), delay=delay, html=shape == 1)

    def covers(self, operation_id: str) -> bool:
        """Whether calls of this operation may get random faults.

        Args:
            operation_id: the operation, by its operationId.
        """
        return self.operations is None or operation_id in self.operations

    def pick(self, rng: random.Random) -> Fault | None:
        """A fault, or None, drawn from `rng` (one draw, plus one for a status if needed).

        Args:
            rng: the fake's seeded generator.
        """
        roll = rng.random()
        for rate, make in self._makers():
            if roll < rate:
                return make(rng)
            roll -= rate
        return None


@attrs.define
class _Scripted:
    fault: Fault
    remaining: int
    account_id: str | None


class FaultPlan:
    """Which fault the next request of an operation gets: scripted first, else random."""

    def __init__(self, rates: FaultRates | None, seed: int) -> None:
        self.rates = rates
        self._rng = random.Random(seed)
        self._scripts: dict[str, deque[_Scripted]] = {}

    def script(self, operation_id: str, fault: Fault, times: int, account_id: str | None) -> None:
        """Queue `fault` for the next `times` matching calls of the operation."""
        if operation_id not in OPERATION_IDS:
            raise ValueError(f"unknown operationId {operation_id!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        queue = self._scripts.setdefault(operation_id, deque())
        queue.append(_Scripted(fault, times, account_id))

    def pending(self) -> int:
        """How many scripted faults are still waiting for their calls."""
        return sum(entry.remaining for queue in self._scripts.values() for entry in queue)

    def clear(self) -> None:
        """Forget every scripted fault."""
        self._scripts.clear()

    def next_fault(self, operation_id: str, account_id: str | None) -> Fault | None:
        """The fault for this call, if any; consumes a scripted one."""
        queue = self._scripts.get(operation_id)
        if queue:
            for entry in queue:
                if entry.account_id is None or entry.account_id == account_id:
                    entry.remaining -= 1
                    if not entry.remaining:
                        queue.remove(entry)
                    return entry.fault
        if self.rates is not None and self.rates.covers(operation_id):
            return self.rates.pick(self._rng)
        return None
