"""``sg.pools``: IP pools (IP Address Management API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
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
)
from ..operations import OPERATIONS
from ..reconcile import CreatePoolReconciler
from ._base import Resource, region_flag

if TYPE_CHECKING:
    from ..client import RequestOptions

PoolId = str | int


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

        Raises:
            ValidationError: a bad argument (raised at once, nothing is sent).

        Implements operationId ListIpPool.
        """
        query = ListPoolsQuery(ip, limit, region, include_region)
        return self._list("ListIpPool", query=unstructure(query), options=options)

    async def create(
        self, name: str, *, ips: Iterable[str] = (), **options: Unpack[RequestOptions]
    ) -> IpPoolIps:
        """Create a pool named ``name`` holding ``ips`` (at most 100).

        Not safe to resend blindly: after an ambiguous failure the client looks the pool up
        by name and returns it with ``reconciled=True`` if the attempt created it.

        Raises:
            ValidationError: a name under 2 or over 64 characters, or beginning with a space
                or a period; more than 100 IPs; an IP that does not parse.
            BadRequestError: e.g. the name already exists, or the 100-pool limit.

        Implements operationId CreateIpPool.
        """
        body = CreatePoolBody(name, ips)
        return await self._client._execute(
            OPERATIONS["CreateIpPool"], body=unstructure(body), options=options,
            reconciler=CreatePoolReconciler(self, body, options),
        )

    async def get(
        self, pool_id: PoolId, *, include_region: bool | None = None,
        **options: Unpack[RequestOptions],
    ) -> IpPool:
        """Get a pool, with a preview of up to 10 of its IPs and their total.

        Implements operationId GetIpPool.
        """
        return await self._client._execute(
            OPERATIONS["GetIpPool"], path=pool_id,
            query=region_flag(include_region), options=options,
        )

    async def rename(
        self, pool_id: PoolId, name: str, **options: Unpack[RequestOptions]
    ) -> PoolRef:
        """Rename a pool.

        Raises:
            ValidationError: a name the API refuses (see `create`).

        Implements operationId UpdateIpPool.
        """
        body = RenamePoolBody(name)
        return await self._client._execute(
            OPERATIONS["UpdateIpPool"], path=pool_id, body=unstructure(body),
            options=options,
        )

    async def delete(self, pool_id: PoolId, **options: Unpack[RequestOptions]) -> None:
        """Delete a pool; its IPs stay on the account.

        Implements operationId DeleteIpPool.
        """
        await self._client._execute(
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
        """Iterate over every IP in a pool, across pages (``limit``: page size, 1 to 100).

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

        Implements operationId AddIpsToIpPool.
        """
        return await self._batch("AddIpsToIpPool", pool_id, ips, options)

    async def remove_ips(
        self, pool_id: PoolId, ips: Iterable[str], **options: Unpack[RequestOptions]
    ) -> None:
        """Remove 1 to 100 IPs from a pool; they stay on the account.

        Implements operationId DeleteIpsFromIpPool.
        """
        await self._batch("DeleteIpsFromIpPool", pool_id, ips, options)

    async def _batch(
        self, operation_id: str, pool_id: PoolId, ips: Iterable[str], options: RequestOptions
    ) -> IpPoolIps:
        body = PoolIpsBody(ips)
        return await self._client._execute(
            OPERATIONS[operation_id], path=pool_id, body=unstructure(body),
            options=options,
        )
