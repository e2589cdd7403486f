"""``sg.provisioning``: a partner's customer accounts' IPs (IP Provisioning API)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Unpack

from .._convert import unstructure
from ..audit import (
    DEFAULT_AUDIT_DELAY,
    AccountAudit,
    Listing,
    Watches,
    above_marker,
    check_delay,
    wait_until,
)
from ..bulk import BulkResult, ProgressCallback, run_bulk
from ..engine import CallTrace
from ..errors import AmbiguousResultError, SendGridError, ValidationError
from ..models import (
    AccountIp,
    AccountIps,
    AddAccountIpsBody,
    PageQuery,
    ProvisionRequest,
    Region,
    RemoveAccountIpsBody,
    text_problem,
)
from ..operations import OPERATIONS
from ..reconcile import AddAccountIpsReconciler
from ._base import Resource

if TYPE_CHECKING:
    from ..coordination.base import Lease
    from ..engine import Engine, RequestOptions
    from ..journal import Journal

BeforeSend = Callable[[frozenset[str]], Awaitable[None]]
"""Called under the account's write lease, after the marker is known and before the POST,
with the marker (the account's newest IPs): where a bulk run makes its journal durable."""

_REMOVE_CHUNK = 10  # the most IPs one RemoveAccountIps request may name


class _Reconciler(AddAccountIpsReconciler):
    """The AddAccountIps reconciler, calling `before_send` once its marker is known."""

    __slots__ = ("before_send",)

    def __init__(self, *args: Any, before_send: BeforeSend) -> None:
        super().__init__(*args)
        self.before_send = before_send

    async def prepare(self, lease_token: int | None) -> None:
        """Note the marker, then let the caller record it (and its intent) durably."""
        await super().prepare(lease_token)
        await self.before_send(self.known or frozenset())


class ProvisioningResource(Resource):
    """Add, list and remove the IPs of a partner's customer accounts."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._watches = Watches()

    async def add_ips(
        self, account_id: str, *, count: int, region: Region, **options: Unpack[RequestOptions]
    ) -> AccountIps:
        """Provision ``count`` new IPs (1 to 10) in ``region`` on a customer account.

        This write is not safe to resend (SendGrid has no idempotency key): before the first
        attempt the client notes the account's newest IP (one small GET), and after an
        ambiguous failure (5xx, timeout, connection lost) it lists the account down to that
        IP instead of resending. If the IPs are there, they are returned with
        ``reconciled=True``. The call holds the account's write lease throughout, so other
        writes to the account through the same coordinator wait their turn.

        A write that failed ambiguously may still land seconds after every check (a gateway
        answered 504 while the backend went on): the client remembers the account, and
        `audit` finds such IPs later.

        Args:
            account_id: the customer's SendGrid account ID.
            count: how many IPs, 1 to 10.
            region: ``"us"`` or ``"eu"``.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: a bad argument (nothing is sent).
            AmbiguousResultError: the failed attempt added a different number of IPs than
                asked, or checking failed or ran out of the call's deadline; ``.found``
                holds what was found. Nothing was resent.
            LeaseLostError: the account's write lease was lost (a shared coordinator's
                lease expired) before a request was sent; nothing was sent after it.
            APIError: its subclasses per status (NotFoundError for an unknown account),
                once retries are spent.
            TransportError: no usable reply once retries are spent (each retry came after a
                check found that the failed attempt had not landed).

        Implements operationId AddAccountIps (and ListAccountIps for its checks).
        """
        return await self._add_ips(account_id, count, region, None, None, options, None)

    async def _add_ips(
        self,
        account_id: str,
        count: int,
        region: Region,
        known: frozenset[str] | None,
        known_token: int | None,
        options: RequestOptions,
        trace: CallTrace | None,
        before_send: BeforeSend | None = None,
    ) -> AccountIps:
        """AddAccountIps; ``known`` are the account's newest IPs as of lease ``known_token``.

        Every call is noted for the audit: an account whose call met an ambiguous failure is
        watched from that call's marker on, with every IP reported for it since.
        """
        body = AddAccountIpsBody(count, region)
        path = _account(account_id)

        def list_ips(limit: int) -> AsyncIterator[AccountIp]:
            return self.list_ips(path, limit=limit, **options)

        args = (list_ips, path, body, known, known_token)
        reconciler = (AddAccountIpsReconciler(*args) if before_send is None
                      else _Reconciler(*args, before_send=before_send))
        trace = trace if trace is not None else CallTrace()
        engine = self._engine
        try:
            added: AccountIps = await engine.execute(
                OPERATIONS["AddAccountIps"], path=path, body=unstructure(body),
                options=options, read=functools.partial(_read_added, body),
                reconciler=reconciler, trace=trace, lease=account_lease(path),
            )
        except SendGridError as exc:
            found = exc.found if isinstance(exc, AmbiguousResultError) else ()
            self._watches.note(path, region, reconciler.known, found,
                               trace.ambiguous or isinstance(exc, AmbiguousResultError),
                               engine.wall_clock(), trace.lease_token)
            raise
        except asyncio.CancelledError:
            # Cancelled with the POST perhaps in flight: it may land, unreported. Once the
            # lease was taken, the account is watched, so that an audit finds it.
            if trace.lease_token is not None:
                self._watches.note(path, region, reconciler.known, (), True,
                                   engine.wall_clock(), trace.lease_token)
            raise
        self._watches.note(path, region, reconciler.known, added.ips, trace.ambiguous,
                           engine.wall_clock(), trace.lease_token)
        return added

    def list_ips(
        self, account_id: str, *, limit: int | None = None, **options: Unpack[RequestOptions]
    ) -> AsyncIterator[AccountIp]:
        """Iterate over every IP of a customer account, newest first, across pages.

        Args:
            account_id: the customer's SendGrid account ID.
            limit: the page size, 1 to 5000 (default: the API's, 10).

        Raises:
            ValidationError: a bad argument (raised at once, nothing is sent).
            PaginationError: the server repeated a page cursor.

        Implements operationId ListAccountIps.
        """
        query = PageQuery(limit, max_limit=5000)
        return self._list(
            "ListAccountIps", path=_account(account_id),
            query=unstructure(query), options=options,
        )

    async def remove_ips(
        self, account_id: str, *, ips: Iterable[str], **options: Unpack[RequestOptions]
    ) -> None:
        """Remove 1 to 10 IPs from a customer account.

        Safe to resend: removing an IP twice leaves the account as once. The call holds the
        account's write lease.

        Args:
            account_id: the customer's SendGrid account ID.
            ips: the IPv4 addresses to remove, 1 to 10.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: no IPs, more than 10, or one that is not an IPv4 address.
            LeaseLostError: the account's write lease was lost before a request was sent.
            APIError: its subclasses per status (NotFoundError for an unknown account),
                once retries are spent.
            TransportError: no usable reply, once retries are spent.

        Implements operationId RemoveAccountIps.
        """
        body = RemoveAccountIpsBody(ips)
        path = _account(account_id)
        await self._engine.execute(
            OPERATIONS["RemoveAccountIps"], path=path,
            body=unstructure(body), options=options, lease=account_lease(path),
        )

    async def bulk_add_ips(
        self,
        requests: Iterable[ProvisionRequest],
        *,
        concurrency: int = 32,
        on_progress: ProgressCallback | None = None,
        journal: str | os.PathLike[str] | Journal | None = None,
        run_id: str | None = None,
        audit_delay: float = DEFAULT_AUDIT_DELAY,
        release_excess: bool = False,
        **options: Unpack[RequestOptions],
    ) -> BulkResult:
        """Provision IPs for many accounts at once; never raises for one account's failure.

        Each account's count is split into requests of at most 10, sent one after another
        for that account (never two writes in flight for one account), while accounts run in
        parallel, up to ``concurrency`` at once. With a journal, a run killed at any moment
        resumes when run again: see `sendgrid_ipam.bulk`. Before it returns, the run audits
        the accounts that met an ambiguous failure (waiting ``audit_delay`` after the last
        one) and reports any IP a late write added as ``excess``.

        Args:
            requests: `ProvisionRequest` items; one account may appear once.
            concurrency: accounts provisioned at the same time.
            on_progress: called with each account's result as soon as it is final, and
                with every chunk of IPs as soon as it is obtained.
            journal: the journal that makes the run resumable: the path of an SQLite file
                (created if missing), a ``redis://`` URL (`RedisJournal`: workers with the
                same requests share the run, see `sendgrid_ipam.bulk`), or a `Journal`.
                None: no journal.
            run_id: the run's name in the journal (default: a digest of the requests, so the
                same requests resume the same run).
            audit_delay: seconds to wait after an account's last ambiguous failure before
                listing it for late writes (default 5).
            release_excess: remove the excess IPs the audit finds again (RemoveAccountIps).
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for each call
                of the run (see `RequestOptions`).

        Returns:
            A `BulkResult` with every account's outcome.

        Raises:
            ValidationError: a bad argument (nothing is sent).
            JournalError: the journal cannot be opened or written (before any write), or it
                holds another target for an account of the requests (`JournalMismatchError`,
                before any write), or holds an unfinished run of another id on one of them.

        Uses operationIds AddAccountIps (through `add_ips`), ListAccountIps for checks and
        audits, and RemoveAccountIps with ``release_excess``.
        """
        return await run_bulk(
            _Port(self, options), requests, concurrency=concurrency, on_progress=on_progress,
            options=options, journal=journal, run_id=run_id, audit_delay=audit_delay,
            release_excess=release_excess,
        )

    async def audit(
        self,
        accounts: Iterable[str] | None = None,
        *,
        audit_delay: float = DEFAULT_AUDIT_DELAY,
        release_excess: bool = False,
        **options: Unpack[RequestOptions],
    ) -> tuple[AccountAudit, ...]:
        """Look for IPs that writes which failed ambiguously added after every check.

        Each account that met an ambiguous AddAccountIps failure through this client is
        listed, under its write lease, once ``audit_delay`` seconds have passed since its last
        such failure, down to the marker noted before the first of them. Every IP above the
        marker that no call reported is ``excess``. An audited account is forgotten unless
        it met another ambiguous failure meanwhile.

        Args:
            accounts: the accounts to audit; None: every account the client watches. An
                account never watched gets an empty `AccountAudit` without a request.
            audit_delay: seconds to wait after an account's last ambiguous failure (default
                5: gateways answer 504 while the backend finishes up to ~3 s later).
            release_excess: remove the excess IPs again (RemoveAccountIps, 10 per request;
                safe to retry after an ambiguous failure).
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for each call
                (see `RequestOptions`).

        Returns:
            One `AccountAudit` per account, in order; a failure is in its ``error``.

        Raises:
            ValidationError: a bad argument (nothing is sent).

        Uses operationIds ListAccountIps, and RemoveAccountIps with ``release_excess``.
        """
        delay = check_delay(audit_delay)
        if not isinstance(release_excess, bool):
            raise ValidationError("release_excess",
                                  f"must be True or False, not {release_excess!r}")
        ids = self._watches.accounts() if accounts is None else tuple(
            _account(account) for account in _strings("accounts", accounts))
        port = _Port(self, options)
        return await _gather(*(self._audit(port, account, delay, release_excess)
                               for account in ids))

    async def _audit(
        self, port: _Port, account_id: str, delay: float, release: bool
    ) -> AccountAudit:
        watch = self._watches.get(account_id)
        if watch is None:
            return AccountAudit(account_id)
        engine = self._engine
        last = watch.last_ambiguous
        await wait_until(last + delay, engine.wall_clock, engine.sleep)
        try:
            listing = await port.above_marker(account_id, watch.marker,
                                              frozenset(watch.regions))
        except SendGridError as exc:
            return AccountAudit(account_id, error=exc)
        excess = tuple(ip for ip in listing.held if ip not in watch.reported)
        if excess and self._watches.others_wrote(watch, listing.token):
            self._watches.forget(account_id, last)
            return AccountAudit(account_id, listing.held, error=AmbiguousResultError(
                f"another writer held {account_id!r}'s write lease since this client's last "
                "write: IPs above the marker cannot be told from its own, so none is called "
                "excess or released", found=excess))
        port.found_excess(len(excess))
        released: tuple[str, ...] = ()
        error: SendGridError | None = None
        if release and excess:
            released, error = await port.release(account_id, excess)
        self._watches.forget(account_id, last)
        return AccountAudit(account_id, listing.held, excess, released, error)


class _Port:
    """What a bulk run (and an audit) needs of the resource, bound to one call's options."""

    def __init__(self, resource: ProvisioningResource, options: RequestOptions) -> None:
        self.resource = resource
        self.options = options
        engine = resource._engine
        self.wall_clock = engine.wall_clock
        self.sleep = engine.sleep
        self.lease_ttl = engine.coordinator.lease_ttl

    def claim(self, key: str) -> AbstractAsyncContextManager[Lease]:
        """The coordinator's lease on `key` if it is free now (a bulk worker's claim on an
        account of a shared run); `RequestTimeoutError` if another holder has it."""
        return self.resource._engine.coordinator.lease(key, wait=0.0)

    def try_claim(self, key: str) -> Lease | None:
        """That lease at once, if it is free and takes no round trip (else None: `claim`)."""
        return self.resource._engine.coordinator.try_lease(key)

    def found_excess(self, count: int) -> None:
        """Tell the observer (telemetry's audit excess counter) of IPs an audit found."""
        if count and (observer := self.resource._engine.observer) is not None:
            observer.excess(count)

    def add(
        self,
        account_id: str,
        count: int,
        region: Region,
        known: frozenset[str] | None,
        known_token: int | None,
        trace: CallTrace,
        before_send: BeforeSend,
    ) -> Awaitable[AccountIps]:
        """AddAccountIps for one chunk (see `ProvisioningResource._add_ips`)."""
        return self.resource._add_ips(account_id, count, region, known, known_token,
                                      self.options, trace, before_send)

    async def above_marker(
        self, account_id: str, marker: frozenset[str], regions: frozenset[str] | None
    ) -> Listing:
        """List the account down to `marker` under its write lease (no write interleaves)."""
        engine = self.resource._engine
        lease = engine.coordinator.lease(account_lease(account_id), wait=engine.policy.deadline)
        async with lease as held:
            items = self.resource.list_ips(account_id, limit=100, **self.options)

            async def pairs() -> AsyncIterator[tuple[str, str | None]]:
                async for item in items:
                    yield item.ip, item.region

            try:
                newest, above = await above_marker(pairs(), marker, regions)
            finally:
                with contextlib.suppress(AttributeError):
                    await items.aclose()  # type: ignore[attr-defined]
            return Listing(newest, held.token, above)

    async def release(
        self, account_id: str, ips: Sequence[str]
    ) -> tuple[tuple[str, ...], SendGridError | None]:
        """Remove `ips` from the account, 10 per request; (removed, the error that stopped it)."""
        removed: list[str] = []
        for start in range(0, len(ips), _REMOVE_CHUNK):
            chunk = ips[start:start + _REMOVE_CHUNK]
            try:
                await self.resource.remove_ips(account_id, ips=chunk, **self.options)
            except SendGridError as exc:
                return tuple(removed), exc
            removed.extend(chunk)
        return tuple(removed), None

    def settled(self, account_id: str, audited_after: float) -> None:
        """The bulk run audited the account: the client need not watch it any longer."""
        self.resource._watches.forget(account_id, audited_after)


async def _gather(*audits: Awaitable[AccountAudit]) -> tuple[AccountAudit, ...]:
    return tuple(await asyncio.gather(*audits))


def _strings(field: str, values: object) -> list[object]:
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise ValidationError(field, f"must be an iterable of account ids, not {values!r}")
    return list(values)


_read_account_ips = OPERATIONS["AddAccountIps"].read


def _read_added(body: AddAccountIpsBody, data: Any) -> AccountIps:
    """AddAccountIps' reply, which must hold exactly the IPs asked for.

    A reply that does not (no ``ips``, too few, too many) is a `DecodeError`: ambiguous, so
    the client checks the account instead of trusting it, and a bulk run never keeps
    buying because a reply looked short.
    """
    added: AccountIps = _read_account_ips(data)
    if len(added.ips) != body.count or len(set(added.ips)) != body.count:
        raise ValueError(f"{body.count} IPs were asked and the reply lists {len(added.ips)}")
    return added


def account_lease(account_id: str) -> str:
    """The write lease of an account's IPs (AddAccountIps, RemoveAccountIps, bulk chunks)."""
    return f"account:{account_id}"


def _account(account_id: Any) -> str:
    if (problem := text_problem(account_id)) is not None:
        raise ValidationError("account_id", problem)
    return str(account_id)
