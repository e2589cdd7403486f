"""``sg.pools``: IP pools (IP Address Management API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from json.encoder import encode_basestring
from typing import TYPE_CHECKING, Unpack

from .._convert import unstructure
from ..models import (
    CreatePoolBody,
    IpPool,
    IpPoolIps,
    ListPoolsQuery,
    PageQuery,
    PoolIp,
    PoolIpsBody,
    PoolRef,
    RegionFilter,
    RenamePoolBody,
    plain_create_pool,
)
from ..operations import OPERATIONS
from ..reconcile import CreatePoolReconciler
from ._base import Resource, region_flag

if TYPE_CHECKING:
    from ..engine import RequestOptions

PoolId = str | int
_BETWEEN_IPS = '","'


def _create_pool_json(name: str, ips: tuple[str, ...]) -> bytes:
    """CreateIpPool's request body for a `CreatePoolBody`'s ``name`` and ``ips``: exactly
    ``dump_json(unstructure(body))``, written by hand, as that round trip through cattrs and
    the JSON encoder costs about four times as much (tests/test_fast_paths.py compares)."""
    # The model has refused text with no UTF-8 form, so encode() cannot fail here; and an
    # IP address it accepts is hex digits, colons and dots: nothing to escape.
    if not ips:
        return f'{{"name":{encode_basestring(name)}}}'.encode()
    return f'{{"name":{encode_basestring(name)},"ips":["{_BETWEEN_IPS.join(ips)}"]}}'.encode()


class PoolsResource(Resource):
    """Create, read, rename and delete IP pools, and move IPs in and out of them."""

    def list(
        self,
        *,
        ip: str | None = None,
        limit: int | None = None,
        region: RegionFilter | None = None,
        include_region: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncIterator[IpPool]:
        """Iterate over every IP pool, with a preview of its IPs, across pages.

        Args:
            ip: only pools holding this IP.
            limit: the page size, 1 to 100.
            region: ``"all"``, ``"eu"`` or ``"us"``.
            include_region: include each pool's regions.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: a bad argument, raised at once (nothing is sent): an ``ip`` that
                does not parse, ``limit`` outside 1 to 100, a region other than
                ``"all"``/``"eu"``/``"us"``, or ``include_region`` not True/False.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.
            PaginationError: the server repeated a page cursor.

        Implements operationId ListIpPool.
        """
        query = ListPoolsQuery(ip, limit, region, include_region)
        return self._list("ListIpPool", query=unstructure(query), options=options)

    async def create(
        self, name: str, *, ips: Iterable[str] = (), **options: Unpack[RequestOptions]
    ) -> IpPoolIps:
        """Create a pool named ``name`` holding ``ips`` (at most 100).

        Not safe to resend blindly: after an ambiguous failure (5xx, timeout, connection
        lost) the client looks the pool up by name before resending or giving up, and
        returns it with ``reconciled=True`` if the attempt created it.

        Args:
            name: 2 to 64 characters, not beginning with a space or a period.
            ips: up to 100 IP addresses to put in it; all must be assignable.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: a ``name`` that is not 2 to 64 characters long or begins with
                a space or a period; ``ips`` not a list (a lone string is refused), over 100,
                an IP that does not parse, or a repeat (nothing is sent).
            BadRequestError: 400, e.g. the name already exists, the 100-pool limit is
                reached, or an IP cannot be assigned (then no pool is created).
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent (after an ambiguous failure, only when the check
                found that the attempt had no effect).
            AmbiguousResultError: a pool of that name exists with other IPs than asked, or
                checking whether the attempt took effect failed; ``.found`` holds what was found.

        Implements operationId CreateIpPool.
        """
        if (checked := plain_create_pool(name, ips)) is None:  # (not the common kind)
            body = CreatePoolBody(name, ips)  # raises ValidationError for bad arguments
            name, checked = body.name, body.ips

        def reconciler() -> CreatePoolReconciler:  # built only if the first attempt fails
            return CreatePoolReconciler(
                lambda: self.list(**options),
                lambda pool_id: self.list_ips(pool_id, **options),
                CreatePoolBody(name, checked),
            )

        return await self._engine.execute(
            OPERATIONS["CreateIpPool"], body=_create_pool_json(name, checked),
            options=options, reconcile=reconciler, lease=f"pool:{name}",
        )

    async def get(
        self, pool_id: PoolId, *, include_region: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> IpPool:
        """Get a pool, with a preview of up to 10 of its IPs and their total.

        Args:
            pool_id: the pool's id (as returned by `create` or `list`).
            include_region: include the pool's regions.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: a ``pool_id`` that is not a string or an int, is empty, or is
                ``'.'`` or ``'..'``, or ``include_region`` not True/False (nothing is sent).
            BadRequestError: 400 ``poolid: not found`` for an unknown pool (this API
                answers 400, not 404), or a non-numeric pool id.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.

        Implements operationId GetIpPool.
        """
        return await self._engine.execute(
            OPERATIONS["GetIpPool"], path=pool_id, options=options,
            query=None if include_region is None else region_flag(include_region),
        )

    async def rename(
        self, pool_id: PoolId, name: str, **options: Unpack[RequestOptions]
    ) -> PoolRef:
        """Rename a pool.

        Args:
            pool_id: the pool's id (as returned by `create` or `list`).
            name: the new name, 2 to 64 characters, not beginning with a space or a period.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: a ``pool_id`` that is not a string or an int, is empty, or is
                ``'.'`` or ``'..'``; a ``name`` that is not 2 to 64 characters long or begins
                with a space or a period (nothing is sent).
            BadRequestError: 400 ``poolid: not found`` for an unknown pool (this API
                answers 400, not 404), a non-numeric pool id, or a name that already
                exists.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.

        Implements operationId UpdateIpPool.
        """
        body = RenamePoolBody(name)
        return await self._engine.execute(
            OPERATIONS["UpdateIpPool"], path=pool_id, body=unstructure(body),
            options=options,
        )

    async def delete(self, pool_id: PoolId, **options: Unpack[RequestOptions]) -> None:
        """Delete a pool; its IPs stay on the account.

        Args:
            pool_id: the pool's id (as returned by `create` or `list`).
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: a ``pool_id`` that is not a string or an int, is empty, or is
                ``'.'`` or ``'..'`` (nothing is sent).
            BadRequestError: 400 ``poolid: not found`` for an unknown pool (this API
                answers 400, not 404), or a non-numeric pool id. When the call is resent
                after an ambiguous failure, "not found" means the first attempt deleted the
                pool, and the call returns normally.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.

        Implements operationId DeleteIpPool.
        """
        await self._engine.execute(
            OPERATIONS["DeleteIpPool"], path=pool_id, options=options
        )

    def list_ips(
        self,
        pool_id: PoolId,
        *,
        limit: int | None = None,
        include_region: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> AsyncIterator[PoolIp]:
        """Iterate over every IP in a pool, across pages.

        Args:
            pool_id: the pool's id (as returned by `create` or `list`).
            limit: the page size, 1 to 100.
            include_region: include each IP's region.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: ``limit`` outside 1 to 100 or ``include_region`` not True/False,
                raised at once; a ``pool_id`` that is not a string or an int, is empty, or
                is ``'.'`` or ``'..'``, raised when iteration starts (nothing is sent).
            BadRequestError: 400 ``poolid: not found`` for an unknown pool (this API
                answers 400, not 404), or a non-numeric pool id, while iterating.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.
            PaginationError: the server repeated a page cursor.

        Implements operationId ListIpAssignedToIpPool.
        """
        query = PageQuery(limit, include_region)
        return self._list(
            "ListIpAssignedToIpPool", path=pool_id, query=unstructure(query),
            options=options,
        )

    async def add_ips(
        self, pool_id: PoolId, ips: Iterable[str], **options: Unpack[RequestOptions]
    ) -> IpPoolIps:
        """Add 1 to 100 IPs to a pool; returns the pool with all its IPs.

        Args:
            pool_id: the pool's id (as returned by `create` or `list`).
            ips: 1 to 100 IP addresses; all must be assignable.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: a ``pool_id`` that is not a string or an int, is empty, or is
                ``'.'`` or ``'..'``; ``ips`` not a list (a lone string is refused), empty,
                over 100, an IP that does not parse, or a repeat (nothing is sent).
            BadRequestError: 400 ``poolid: not found`` for an unknown pool (this API
                answers 400, not 404), a non-numeric pool id, an IP that cannot be
                assigned, or a pool that would then hold more than 100 IPs.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.

        Implements operationId AddIpsToIpPool.
        """
        return await self._batch("AddIpsToIpPool", pool_id, ips, options)

    async def remove_ips(
        self, pool_id: PoolId, ips: Iterable[str], **options: Unpack[RequestOptions]
    ) -> None:
        """Remove 1 to 100 IPs from a pool; they stay on the account.

        Args:
            pool_id: the pool's id (as returned by `create` or `list`).
            ips: 1 to 100 IP addresses in the pool.
            **options: ``timeout``, ``retry``, ``deadline``, ``on_behalf_of`` for this call
                (see `RequestOptions`).

        Raises:
            ValidationError: a ``pool_id`` that is not a string or an int, is empty, or is
                ``'.'`` or ``'..'``; ``ips`` not a list (a lone string is refused), empty,
                over 100, an IP that does not parse, or a repeat (nothing is sent).
            BadRequestError: 400 ``poolid: not found`` for an unknown pool (this API
                answers 400, not 404), a non-numeric pool id, or IPs not in the pool. When
                the call is resent after an ambiguous failure, "not found" means the first
                attempt removed them, and the call returns normally.
            AuthenticationError: 401, a wrong API key or a missing scope.
            ServerError, RateLimitError, TransportError: a 5xx, a 429 or no usable reply,
                once retries are spent.

        Implements operationId DeleteIpsFromIpPool.
        """
        await self._batch("DeleteIpsFromIpPool", pool_id, ips, options)

    async def _batch(
        self, operation_id: str, pool_id: PoolId, ips: Iterable[str], options: RequestOptions
    ) -> IpPoolIps:
        body = PoolIpsBody(ips)
        return await self._engine.execute(
            OPERATIONS[operation_id], path=pool_id, body=unstructure(body),
            options=options,
        )
