"""What every resource shares: the engine it calls through and how it lists."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from .._fast import exact_page_items_reader, page_items_reader
from ..engine import Engine, RequestOptions, check_options
from ..errors import ValidationError
from ..operations import OPERATIONS, Operation
from ..pagination import Page, page_reader, paginate

# The API's own default page size, used to tell a short (last) page when none is given.
_DEFAULT_PAGE_SIZE = 10


def region_flag(include_region: bool | None) -> dict[str, bool] | None:
    """The ``include_region`` query of a single read, validated (None when not given)."""
    if include_region is None:
        return None
    if not isinstance(include_region, bool):
        raise ValidationError("include_region", f"must be True or False, not {include_region!r}")
    return {"include_region": include_region}


class Resource:
    """A group of operations sharing one engine."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def _list(
        self,
        operation_id: str,
        *,
        query: Mapping[str, object],
        options: RequestOptions,
        path: object = None,
    ) -> AsyncIterator[Any]:
        """An async iterator over every item of a list operation, page after page."""
        if options:
            check_options(options)  # now, like every other bad argument, not at iteration
        op: Operation = OPERATIONS[operation_id]
        assert op.paging is not None
        limit = query.get("limit")
        read = page_reader(
            op.paging, op.read, limit if isinstance(limit, int) else _DEFAULT_PAGE_SIZE,
            page_items_reader(op.model) if op.model is not None else None,
            exact_page_items_reader(op.model) if op.model is not None else None,
        )
        cursor_name = "after_key" if op.paging == "after_key" else "offset"
        engine = self._engine

        async def fetch(cursor: str | None) -> Page:
            page_query = query if cursor is None else {**query, cursor_name: cursor}
            return await engine.execute(
                op, path=path, query=page_query, options=options, read=read
            )

        return paginate(fetch)
