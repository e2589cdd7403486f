"""``sg.provisioning``: a partner's customer accounts' IPs (IP Provisioning API)."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, Unpack

from .._convert import unstructure
from ..bulk import BulkResult, ProgressCallback, run_bulk
from ..errors import ValidationError
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
    from ..engine import CallTrace, RequestOptions


class ProvisioningResource(Resource):
    """Add, list and remove the IPs of a partner's customer accounts."""

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

        Args:
            account_id: the customer's SendGrid account ID.
            count: how many IPs, 1 to 10.
            region: ``"us"`` or ``"eu"``.
            **options: ``timeout``, ``retry``, ``on_behalf_of`` for this call.

        Raises:
            ValidationError: a bad argument (nothing is sent).
            AmbiguousResultError: the failed attempt added a different number of IPs than
                asked, or checking failed; ``.found`` holds what was found.
            APIError: its subclasses per status (NotFoundError for an unknown account).

        Implements operationId AddAccountIps.
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
    ) -> AccountIps:
        """AddAccountIps; ``known`` are the account's newest IPs as of lease ``known_token``."""
        body = AddAccountIpsBody(count, region)
        path = _account(account_id)

        def list_ips(limit: int) -> AsyncIterator[AccountIp]:
            return self.list_ips(path, limit=limit, **options)

        return await self._engine.execute(
            OPERATIONS["AddAccountIps"], path=path, body=unstructure(body),
            options=options, read=functools.partial(_read_added, body),
            reconciler=AddAccountIpsReconciler(list_ips, path, body, known, known_token),
            trace=trace, lease=account_lease(path),
        )

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

        Raises:
            ValidationError: no IPs, more than 10, or one that is not an IPv4 address.

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
        **options: Unpack[RequestOptions],
    ) -> BulkResult:
        """Provision IPs for many accounts at once; never raises for one account's failure.

        Each account's count is split into requests of at most 10, sent one after another
        for that account (never two writes in flight for one account), while accounts run in
        parallel, up to ``concurrency`` at once. See `sendgrid_ipam.bulk`.

        Args:
            requests: `ProvisionRequest` items; one account may appear once.
            concurrency: accounts provisioned at the same time.
            on_progress: called with each account's result as soon as it is final, and
                with every chunk of IPs as soon as it is obtained.

        Returns:
            A `BulkResult` with every account's outcome.
        """
        return await run_bulk(self._add_ips, requests, concurrency=concurrency,
                              on_progress=on_progress, options=options)


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
