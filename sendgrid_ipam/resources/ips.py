"""``sg.ips``: the account's IPs and their subusers (IP Address Management API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Unpack

from .._convert import unstructure
from ..models import (
    AddedIp,
    AddIpBody,
    IpAddress,
    ListIpQuery,
    PageQuery,
    Region,
    RegionFilter,
    SubuserAssignment,
    SubusersBody,
    UpdatedIp,
    UpdateIpBody,
    check_ip,
)
from ..operations import OPERATIONS
from ..reconcile import AddIpReconciler
from ._base import Resource, region_flag

IPAM_LEASE = "ipam"
"""The write lease of AddIp: its check lists the IPs added account-wide."""

if TYPE_CHECKING:
    from ..engine import RequestOptions


class IpsResource(Resource):
    """Add, list, read and update IPs, and assign subusers to them."""

    async def add(
        self,
        *,
        is_auto_warmup: bool,
        is_parent_assigned: bool,
        subusers: Iterable[str] | None = None,
        region: Region | None = None,
        include_region: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> AddedIp:
        """Add a new SendGrid IP to the account, optionally assigned to up to 100 subusers.

        Not safe to resend blindly: before the attempt the client notes the IPs added in the
        last few minutes (one small GET), and after an ambiguous failure (5xx, timeout,
        connection lost) it looks for the IP the attempt added before resending or giving up;
        that IP comes back with ``reconciled=True``.

        Args:
            is_auto_warmup: warm the IP up automatically.
            is_parent_assigned: the parent account may send from it.
            subusers: subuser ids to assign it to (at most 100).
            region: ``"us"`` (the API's default) or ``"eu"``.
            include_region: include the region in the reply.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: a bad argument, before anything is sent: ``is_auto_warmup`` or
                ``is_parent_assigned`` not True/False; ``subusers`` not a list (a lone string
                is refused), over 100, an empty id or a repeat; a region other than
                ``"us"``/``"eu"``; ``include_region`` not True/False.
            BadRequestError: 400, e.g. no IPs remaining, unverified subusers, the caller's
                own user id among the subusers, or subusers with every IP in warm-up.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent (after an ambiguous failure, only when the check
                found that the attempt had no effect).
            AmbiguousResultError: the check found more than one new IP (also after a
                resend: the earlier attempt landed too), or could not be made; ``.found``
                holds what was found.

        Implements operationId AddIp.
        """
        body = AddIpBody(is_auto_warmup, is_parent_assigned, subusers,
                         region, include_region)
        engine = self._engine

        def list_since(since: int) -> AsyncIterator[IpAddress]:
            return self.list(start_added_at=since, **options)

        return await engine.execute(
            OPERATIONS["AddIp"], body=unstructure(body), options=options,
            reconciler=AddIpReconciler(list_since, body, engine.wall_clock()),
            lease=IPAM_LEASE,
        )

    def list(
        self,
        *,
        ip: str | None = None,
        limit: int | None = None,
        is_leased: bool | None = None,
        is_enabled: bool | None = None,
        is_parent_assigned: bool | None = None,
        pool: str | None = None,
        start_added_at: int | None = None,
        end_added_at: int | None = None,
        region: RegionFilter | None = None,
        include_region: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncIterator[IpAddress]:
        """Iterate over the account's IPs, across pages, filtered as given.

        Args:
            ip: only this IP.
            limit: the page size, 1 to 5000.
            is_leased: only IPs leased from SendGrid (True) or not (False).
            is_enabled: only IPs enabled for sending (True) or not (False).
            is_parent_assigned: only IPs assigned to the parent account (True) or not.
            pool: only IPs in this pool (not together with ``is_parent_assigned``).
            start_added_at: only IPs added at or after this Unix time.
            end_added_at: only IPs added at or before this Unix time.
            region: ``"all"``, ``"eu"`` or ``"us"``.
            include_region: include each IP's region.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: a bad argument, raised at once (nothing is sent): an ``ip`` that
                does not parse; ``limit`` outside 1 to 5000; a flag not True/False; a
                ``pool`` that is empty or not a string or an int, or given together with
                ``is_parent_assigned``; a time that is not an integer of at least 0; a
                region other than ``"all"``/``"eu"``/``"us"``.
            BadRequestError: 400 while iterating, e.g. an unknown or non-numeric pool, or
                ``is_parent_assigned`` on a subuser account.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.
            PaginationError: the server repeated a page cursor.

        Implements operationId ListIp.
        """
        query = ListIpQuery(ip, limit, is_leased, is_enabled, is_parent_assigned, pool,
                            start_added_at, end_added_at, region, include_region)
        return self._list("ListIp", query=unstructure(query), options=options)

    async def get(
        self, ip: str, *, include_region: bool | None = None, **options: Unpack[RequestOptions]
    ) -> IpAddress:
        """Get an IP's settings and pools (not its subusers: see `list_subusers`).

        Args:
            ip: the IP address (IPv4 or IPv6).
            include_region: include the IP's region.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: an ``ip`` that does not parse, or ``include_region`` not
                True/False (nothing is sent).
            BadRequestError: 400 ``ip: not found`` for an IP not on the account (this API
                answers 400, not 404), or an IP it finds invalid.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.

        Implements operationId GetIp.
        """
        return await self._engine.execute(
            OPERATIONS["GetIp"], path=check_ip("ip", ip),
            query=region_flag(include_region), options=options,
        )

    async def update(
        self,
        ip: str,
        *,
        is_auto_warmup: bool | None = None,
        is_parent_assigned: bool | None = None,
        is_enabled: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> UpdatedIp:
        """Change an IP's settings; at least one of the three must be given.

        Args:
            ip: the IP address.
            is_auto_warmup: warm the IP up automatically.
            is_parent_assigned: the parent account may send from it.
            is_enabled: the IP may be used at all.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: an ``ip`` that does not parse, none of the three settings given,
                or one not True/False (nothing is sent).
            BadRequestError: 400 for an IP not on the account (``not found``, or ``unable to
                verify IP ownership``; never 404) or an invalid IP.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.

        Implements operationId UpdateIp.
        """
        body = UpdateIpBody(is_auto_warmup, is_parent_assigned, is_enabled)
        return await self._engine.execute(
            OPERATIONS["UpdateIp"], path=check_ip("ip", ip), body=unstructure(body),
            options=options,
        )

    def list_subusers(
        self, ip: str, *, limit: int | None = None, **options: Unpack[RequestOptions]
    ) -> AsyncIterator[str]:
        """Iterate over the ids of the subusers assigned to an IP, across pages.

        Args:
            ip: the IP address.
            limit: the page size, 1 to 100.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: an ``ip`` that does not parse, or ``limit`` outside 1 to 100,
                raised at once (nothing is sent).
            BadRequestError: 400 while iterating, e.g. an IP the API finds invalid or not on
                the account (never 404).
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.
            PaginationError: the server repeated a page cursor.

        Implements operationId ListSubUserAssignedToIp.
        """
        query = PageQuery(limit)
        return self._list(
            "ListSubUserAssignedToIp", path=check_ip("ip", ip),
            query=unstructure(query), options=options,
        )

    async def add_subusers(
        self, ip: str, subusers: Iterable[str], **options: Unpack[RequestOptions]
    ) -> SubuserAssignment:
        """Assign a batch of subusers to an IP; all must succeed.

        Args:
            ip: the IP address.
            subusers: 1 to 1000 subuser ids.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: an ``ip`` that does not parse; ``subusers`` not a list (a lone
                string is refused), empty, over 1000, an empty id or a repeat (nothing is
                sent).
            BadRequestError: 400, e.g. an IP not on the account (never 404), unverified
                subusers, or the caller's own user id among them.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.

        Implements operationId AddSubUsersToIp.
        """
        return await self._subusers("AddSubUsersToIp", ip, subusers, options)

    async def remove_subusers(
        self, ip: str, subusers: Iterable[str], **options: Unpack[RequestOptions]
    ) -> None:
        """Remove a batch of subusers from an IP.

        Args:
            ip: the IP address.
            subusers: 1 to 1000 subuser ids.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: an ``ip`` that does not parse; ``subusers`` not a list (a lone
                string is refused), empty, over 1000, an empty id or a repeat (nothing is
                sent).
            BadRequestError: 400, e.g. an IP not on the account (never 404), unverified
                subusers, or the caller's own user id among them. When the call is resent
                after an ambiguous failure, a "not found" reply counts as done (the first
                attempt removed them), and the call returns normally.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.

        Implements operationId DeleteSubUsersFromIp.
        """
        await self._subusers("DeleteSubUsersFromIp", ip, subusers, options)

    async def _subusers(
        self, operation_id: str, ip: str, subusers: Iterable[str], options: RequestOptions
    ) -> SubuserAssignment:
        body = SubusersBody(subusers)
        return await self._engine.execute(
            OPERATIONS[operation_id], path=check_ip("ip", ip), body=unstructure(body),
            options=options,
        )
