"""Finding out whether a failed write took effect, instead of resending it blindly.

SendGrid documents no idempotency key, so resending AddAccountIps, CreateIpPool or AddIp
after an ambiguous failure (a 5xx, a timeout or a connection lost after sending) may buy or
create twice. Before any resend the client asks the API what the failed attempt did:

- AddAccountIps: the account's IPs are listed newest first. Before the first attempt the
  client notes the newest IP (or takes the IPs the caller already knows are newest, as a bulk
  run does from the previous chunk's reply); afterwards the IPs above that marker in the
  requested region are the attempt's result.
- CreateIpPool: the pool is looked up by name; if present with the requested IPs, that is
  the result. A 400 "already exists" after our own ambiguous attempt is resolved the same way.
- AddIp: the IPs added since shortly before the attempt (ListIp's ``start_added_at``),
  less those already there before it.

All three rest on **one writer per account at a time**: another writer adding IPs or pools
between the attempt and the check would make its work look like ours. The engine enforces
it: each of these writes holds a write lease (the account, the pool name, the IPAM account)
from before its marker is read to its last check; a coordinator shared by several processes
(Redis) extends that to all of them.

Reconcilers read through listing functions the resources hand them, so they depend on
nothing above the engine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from .errors import AmbiguousResultError, BadRequestError, SendGridError
from .models import (
    AccountIp,
    AccountIps,
    AddAccountIpsBody,
    AddedIp,
    AddIpBody,
    CreatePoolBody,
    IpAddress,
    IpPool,
    IpPoolIps,
    PoolIp,
)

__all__ = ["AddAccountIpsReconciler", "AddIpReconciler", "CreatePoolReconciler"]

# How far before the attempt AddIp's check looks, to allow for the server's clock being
# behind ours; IPs already present in that span are excluded by the snapshot.
ADD_IP_CLOCK_SLACK = 300


class _Base:
    __slots__ = ()
    prepares = False
    """Whether `prepare` does anything (the client skips awaiting it when not)."""

    @property
    def needs_token(self) -> bool:
        """Whether `prepare` uses the lease's token (no: a shared coordinator may then take
        the lease with the first request's gate check)."""
        return False

    async def prepare(self, lease_token: int | None) -> None:
        """Nothing to note before the first attempt."""

    def items(self, result: Any) -> tuple[str, ...]:
        """The IPs a result holds (what must never go unreported)."""
        ips = getattr(result, "ips", None)
        if ips is not None:
            return tuple(ips)
        ip = getattr(result, "ip", None)
        return () if ip is None else (ip,)

    def is_echo(self, exc: SendGridError) -> bool:
        """No error of this operation can be our own earlier attempt answering back."""
        return False

    async def verify(self, result: Any) -> None:
        """Nothing to verify after a resend."""


class AddAccountIpsReconciler(_Base):
    """Reconciles AddAccountIps by listing the account down to the newest IP known before."""

    __slots__ = ("account_id", "body", "known", "known_token", "list_ips")
    prepares = True

    def __init__(
        self,
        list_ips: Callable[[int], AsyncIterator[AccountIp]],
        account_id: str,
        body: AddAccountIpsBody,
        known: frozenset[str] | None = None,
        known_token: int | None = None,
    ) -> None:
        """``list_ips(limit)`` lists the account newest first. ``known``: IPs the caller
        knows are the account's newest, valid only while nobody else wrote: with
        ``known_token``, the lease token of the holding that learnt them."""
        self.list_ips: Callable[[int], AsyncIterator[AccountIp]] = list_ips
        self.account_id: str = account_id
        self.body: AddAccountIpsBody = body
        self.known: frozenset[str] | None = known
        self.known_token: int | None = known_token

    @property
    def needs_token(self) -> bool:
        """Whether `prepare` compares the lease's token with the one the caller knows."""
        return self.known is not None and self.known_token is not None

    async def prepare(self, lease_token: int | None) -> None:
        """Note the account's newest IP, unless the caller knows it and nobody wrote since.

        The caller's IPs are kept only if this holding's lease token follows the one they
        were learnt under: any other holder in between (a single call beside a bulk run)
        may have added newer IPs, so the marker is read again.
        """
        if self.known is not None and self.known_token is not None and (
                lease_token is None or lease_token != self.known_token + 1):
            self.known = None
        if self.known is None:
            newest = self.list_ips(1)
            first = await anext(aiter(newest), None)
            await newest.aclose()  # type: ignore[attr-defined]
            self.known = frozenset() if first is None else frozenset({first.ip})

    async def _new_ips(self) -> list[str]:
        """The account's IPs above the marker, in the requested region."""
        known = self.known or frozenset()
        found: list[str] = []
        async for item in self.list_ips(100):
            if item.ip in known:
                break
            if item.region == self.body.region:
                found.append(item.ip)
        return found

    async def verify(self, result: Any) -> None:
        """After a resend: if the earlier, ambiguous attempt landed too, report all it bought.

        The settle wait makes this rare (a write still running when it was checked), but
        when it happens every IP must reach the caller, so the call raises with all of them.
        """
        found = await self._new_ips()
        if len(found) > self.body.count:
            raise AmbiguousResultError(
                f"AddAccountIps for {self.account_id!r}: an earlier attempt that failed "
                f"ambiguously took effect after it was checked; the account holds "
                f"{len(found)} new IPs where {self.body.count} were asked",
                found=found, expected=self.body.count,
            )

    async def resolve(self) -> AccountIps | None:
        """The IPs the failed attempt added, None if it added none."""
        found = await self._new_ips()
        if not found:
            return None
        if len(found) != self.body.count:
            raise AmbiguousResultError(
                f"AddAccountIps for {self.account_id!r} failed ambiguously and the account "
                f"now holds {len(found)} new {self.body.region} IPs where {self.body.count} "
                "were asked", found=found, expected=self.body.count,
            )
        return AccountIps(ips=tuple(found), region=self.body.region, reconciled=True)


class CreatePoolReconciler(_Base):
    """Reconciles CreateIpPool by looking the pool up by name."""

    __slots__ = ("body", "list_pool_ips", "list_pools")

    def __init__(
        self,
        list_pools: Callable[[], AsyncIterator[IpPool]],
        list_pool_ips: Callable[[str], AsyncIterator[PoolIp]],
        body: CreatePoolBody,
    ) -> None:
        self.list_pools: Callable[[], AsyncIterator[IpPool]] = list_pools
        self.list_pool_ips: Callable[[str], AsyncIterator[PoolIp]] = list_pool_ips
        self.body: CreatePoolBody = body

    def is_echo(self, exc: SendGridError) -> bool:
        """A 400 "already exists" on the name may be our own earlier attempt."""
        return isinstance(exc, BadRequestError) and any(
            "already exists" in detail.message for detail in exc.errors
        )

    async def resolve(self) -> IpPoolIps | None:
        """The pool the failed attempt created, None if there is no pool by that name."""
        async for pool in self.list_pools():
            if pool.name == self.body.name:
                break
        else:
            return None
        ips = [item.ip async for item in self.list_pool_ips(pool.id)]
        if set(ips) != set(self.body.ips):
            raise AmbiguousResultError(
                f"CreateIpPool failed ambiguously and a pool named {self.body.name!r} exists "
                "with other IPs than asked", found=ips, expected=self.body.ips,
            )
        return IpPoolIps(id=pool.id, name=pool.name, ips=tuple(ips), reconciled=True)


class AddIpReconciler(_Base):
    """Reconciles AddIp by listing the IPs added since shortly before the attempt."""

    __slots__ = ("before", "body", "list_since", "since")
    prepares = True

    def __init__(
        self, list_since: Callable[[int], AsyncIterator[IpAddress]], body: AddIpBody, now: float
    ) -> None:
        """``list_since(t)`` lists the IPs added since Unix time ``t``."""
        self.list_since: Callable[[int], AsyncIterator[IpAddress]] = list_since
        self.body: AddIpBody = body
        self.since: int = max(0, int(now) - ADD_IP_CLOCK_SLACK)
        self.before: frozenset[str] = frozenset()

    async def _recent(self) -> list[Any]:
        return [ip async for ip in self.list_since(self.since)]

    async def prepare(self, lease_token: int | None) -> None:
        """Note the IPs already added in the slack window, so they are not taken for ours."""
        self.before = frozenset(item.ip for item in await self._recent())

    async def _new(self) -> list[Any]:
        return [item for item in await self._recent() if item.ip not in self.before]

    async def verify(self, result: Any) -> None:
        """After a resend: if the earlier, ambiguous attempt landed too, say so with both."""
        if len(new := await self._new()) > 1:
            raise AmbiguousResultError(
                "AddIp: an earlier attempt that failed ambiguously took effect after it was "
                f"checked; {len(new)} IPs were added", found=[i.ip for i in new], expected=1,
            )

    async def resolve(self) -> AddedIp | None:
        """The IP the failed attempt added, None if it added none."""
        new = await self._new()
        if not new:
            return None
        if len(new) > 1:
            raise AmbiguousResultError(
                f"AddIp failed ambiguously and {len(new)} IPs were added since",
                found=[item.ip for item in new], expected=1,
            )
        item = new[0]
        return AddedIp(
            ip=item.ip,
            is_auto_warmup=item.is_auto_warmup,
            is_parent_assigned=item.is_parent_assigned,
            subusers=self.body.subusers or (),
            region=item.region,
            reconciled=True,
        )
