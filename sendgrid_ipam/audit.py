"""Audits of late writes: the IPs an account holds that no call reported.

After an ambiguous failure of AddAccountIps (a 5xx, a timeout, a dropped connection) the client
checks the account before it resends. But the backend behind a gateway may finish a write after
the gateway gave up (gateways answer 504 while the backend completes 0.5-3 s later), after every
check the call made: the IPs are bought twice and nobody is told. So the client remembers every
account that met an ambiguous write failure — its *marker* (the newest IPs before the first such
write), the IPs reported since, the time of the last failure — and `audit` lists the account
again once ``audit_delay`` has passed: whatever is above the marker and was never reported is
``excess``. A bulk run does the same for its own accounts before it returns.

Both rest on the rule reconciliation rests on: while an account is watched, only this client
adds IPs to it. Writers through the same coordinator are seen: the account's lease token
tells whether anyone else held it since this client's last write, and if so the audit counts
nothing as excess and releases nothing (its ``error`` says why, with the candidates in
``.found``). A writer that bypasses the coordinator cannot be seen.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable

import attrs

from .errors import ValidationError

__all__ = ["DEFAULT_AUDIT_DELAY", "AccountAudit", "Listing", "above_marker", "check_delay"]

DEFAULT_AUDIT_DELAY = 5.0
"""Seconds an audit waits after an account's last ambiguous write failure before listing it.

Observed: SendGrid's gateways answer 504 while the backend finishes the write 0.5-3 s later.
5 s covers the slowest observed with a margin, and costs a bulk run those seconds only when
something was ambiguous."""


@attrs.frozen
class AccountAudit:
    """What an audit found on one account.

    Attributes:
        account_id: the account.
        held: the IPs above the marker (in the regions written), newest first.
        excess: those of them that no call reported: bought by a write that landed late.
        released: the IPs of `excess` that were removed again (``release_excess=True``).
        error: why the audit or the release could not be completed (None if it was).
    """

    account_id: str
    held: tuple[str, ...] = ()
    excess: tuple[str, ...] = ()
    released: tuple[str, ...] = ()
    error: BaseException | None = None


@attrs.frozen
class Listing:
    """An account listed down to a marker, under its write lease.

    Attributes:
        newest: the account's newest IP when listed (empty if it had none): the marker of a
            write that follows under the next lease holding.
        token: the token of the lease holding the listing was made under.
        held: the IPs above the marker in the regions asked, newest first.
    """

    newest: frozenset[str]
    token: int | None
    held: tuple[str, ...]


@attrs.define
class Watch:
    """An account that met an ambiguous write failure, as the client remembers it."""

    marker: frozenset[str]
    regions: set[str]
    reported: dict[str, None]  # an ordered set
    last_ambiguous: float  # Unix seconds
    last_token: int | None = None  # the lease token of this client's last write to it


class Watches:
    """The accounts the client watches for late writes, by account id."""

    def __init__(self) -> None:
        self._by_account: dict[str, Watch] = {}

    def note(
        self,
        account_id: str,
        region: str,
        marker: frozenset[str] | None,
        ips: Iterable[str],
        ambiguous: bool,
        now: float,
        token: int | None = None,
    ) -> None:
        """After an AddAccountIps call: start or extend the account's watch if the call met
        an ambiguous failure, and count the IPs it reported if the account is watched.
        ``token`` is the write lease's token of the call (None: it took none)."""
        watch = self._by_account.get(account_id)
        if ambiguous:
            if watch is None:
                watch = self._by_account[account_id] = Watch(
                    marker or frozenset(), set(), {}, now)
            watch.regions.add(region)
            watch.last_ambiguous = max(watch.last_ambiguous, now)
        if watch is not None:
            watch.reported.update(dict.fromkeys(ips))
            if token is not None:
                watch.last_token = token

    @staticmethod
    def others_wrote(watch: Watch, listing_token: int | None) -> bool:
        """Whether another writer held the account's lease since this client's last write:
        then the IPs above the marker cannot all be told from that writer's."""
        return (watch.last_token is not None and listing_token is not None
                and listing_token != watch.last_token + 1)

    def get(self, account_id: str) -> Watch | None:
        """The account's watch, if it is watched."""
        return self._by_account.get(account_id)

    def accounts(self) -> tuple[str, ...]:
        """Every watched account, in the order they were first watched."""
        return tuple(self._by_account)

    def forget(self, account_id: str, audited_after: float) -> None:
        """Stop watching the account if it met no ambiguous failure after `audited_after`."""
        watch = self._by_account.get(account_id)
        if watch is not None and watch.last_ambiguous <= audited_after:
            del self._by_account[account_id]


def check_delay(audit_delay: object) -> float:
    """`audit_delay` as seconds, checked.

    Raises:
        ValidationError: not a finite number of at least 0.
    """
    if isinstance(audit_delay, bool) or not isinstance(audit_delay, int | float) or (
            not math.isfinite(audit_delay) or audit_delay < 0):
        raise ValidationError(
            "audit_delay", f"must be a finite number of seconds of at least 0, not {audit_delay!r}")
    return float(audit_delay)


async def wait_until(
    moment: float, wall_clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
) -> None:
    """Sleep until the Unix time `moment` (at once if it has passed)."""
    delay = moment - wall_clock()
    if delay > 0:
        await sleep(delay)


async def above_marker(
    items: AsyncIterator[tuple[str, str | None]],
    marker: frozenset[str],
    regions: frozenset[str] | None,
) -> tuple[frozenset[str], tuple[str, ...]]:
    """From ``(ip, region)`` items listed newest first: the newest IP, and the IPs above the
    marker (the first item in `marker`) in `regions` (None: all)."""
    newest: frozenset[str] | None = None
    held: list[str] = []
    async for ip, region in items:
        if newest is None:
            newest = frozenset({ip})
        if ip in marker:
            break
        if regions is None or region in regions:
            held.append(ip)
    return newest or frozenset(), tuple(held)
