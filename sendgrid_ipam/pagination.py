"""Following the two APIs' cursors across pages.

IP Address Management lists return ``_metadata.next_params.after_key`` (ListIp's own example
puts it directly under ``_metadata``: both places are read), null on the last page; the value
is treated as an opaque string. ListAccountIps returns its IPs newest first with
``pages.last``, the IP to pass as ``offset`` for the next page; a page without ``last``, an
empty page or a short page is the last one.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import attrs

from ._text import shown
from ._wire import FAST_LOADS, MAX_DEPTH, deeper_than
from .errors import PaginationError
from .operations import Paging

__all__ = ["Page", "PageReader", "page_reader", "paginate"]

T = TypeVar("T")


@attrs.frozen
class Page:
    """One page of a list: its items (as models) and the cursor of the next page, if any."""

    items: list[Any]
    next_cursor: str | None


def _after_key(data: dict[str, Any]) -> str | None:
    meta = data.get("_metadata")
    if not isinstance(meta, dict):
        return None
    next_params = meta.get("next_params")
    key = next_params.get("after_key") if isinstance(next_params, dict) else None
    if key is None:
        key = meta.get("after_key")
    return None if key is None or key == "" else _cursor(key)


_MAX_CURSOR = 2048  # characters; SendGrid's cursors are ids and IPs


def _cursor(value: object) -> str:
    """A cursor from the server as the text to send back; TypeError when it cannot be.

    Cursors are opaque, but only text or a whole number can be sent back as a query value,
    and only text that has a UTF-8 form and fits in a URL. The client reports the
    TypeError as a `DecodeError` of the reply.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # (the JSON reader never makes an int too long to write out)
    if not isinstance(value, str):
        raise TypeError(f"a page cursor must be text or a number, not {shown(value)}")
    if len(value) > _MAX_CURSOR:
        raise TypeError(f"a page cursor must be at most {_MAX_CURSOR} characters long")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise TypeError(f"a page cursor must be valid Unicode, not {shown(value)}") from None
    return value


def _offset(data: dict[str, Any], count: int, page_size: int) -> str | None:
    pages = data.get("pages")
    last = pages.get("last") if isinstance(pages, dict) else None
    if last is None or last == "" or count == 0 or count < page_size:
        return None
    return _cursor(last)


class PageReader:
    """Reads one reply of a list into a `Page` (raises on a malformed one).

    ``bounds_depth``: whether it refuses a reply nested deeper than `_wire.MAX_DEPTH`
    itself (it reads the items with a page reader that does), so the reply may be decoded
    without `_wire.load_json`'s scan for it. ``reads_exact``: whether `PageReader.exact`
    can read the reply's raw body (with orjson) instead.
    """

    __slots__ = (
        "_page_size", "_paging", "_read_exact", "_read_item", "_read_items", "bounds_depth",
        "reads_exact",
    )

    def __init__(
        self,
        paging: Paging,
        read_item: Callable[[Any], Any],
        page_size: int,
        read_items: Callable[[list[Any]], list[Any]] | None = None,
        read_exact: Callable[[list[Any]], list[Any] | None] | None = None,
    ) -> None:
        self._paging: Paging = paging
        self._read_item: Callable[[Any], Any] = read_item
        self._page_size: int = page_size
        self._read_items: Callable[[list[Any]], list[Any]] | None = read_items
        self.bounds_depth: bool = read_items is not None
        self._read_exact: Callable[[list[Any]], list[Any] | None] | None = read_exact
        self.reads_exact: bool = (  # (a flag, not a bound method: that would be a cycle)
            read_items is not None and read_exact is not None and FAST_LOADS is not None)

    def exact(self, body: bytes) -> Page | None:
        """The `Page` of a reply's raw ``body``, or None to have it read the usual way.

        Decoded with orjson (`_wire.FAST_LOADS`), at twice the standard library's speed.
        A page is returned only when everything it holds was checked to be exactly what
        the standard library's decoding would give: every item read inline by the exact
        items reader, the cursor text or an int. Anything else, malformed or merely
        unusual, gives None, and the caller decodes and reads the body as before, with the
        same result or error as without orjson.
        """
        loads, read_exact = FAST_LOADS, self._read_exact
        if loads is None or read_exact is None:
            return None
        try:
            data = loads(body)
            if type(data) is not dict or type(result := data.get("result")) is not list:
                return None
            for key, value in data.items():  # as in __call__: the items bound their own
                if key != "result" and deeper_than(value, MAX_DEPTH - 1):
                    return None
            items = read_exact(result)
            if items is None:
                return None
            cursor = (
                _after_key(data) if self._paging == "after_key"
                else _offset(data, len(items), self._page_size)
            )
        except Exception:  # any refusal: read again the usual way, which says why
            return None
        return Page(items, cursor)

    def __call__(self, data: Any) -> Page:
        if not isinstance(data, dict):
            raise TypeError("a list reply must be a JSON object")
        result = data.get("result", [])  # the spec requires no field: absent means no items
        if not isinstance(result, list):
            raise TypeError("a list reply's 'result' must be a list")
        if self._read_items is None:
            items = [self._read_item(item) for item in result]
        else:
            for key, value in data.items():  # the items' reader bounds their depth
                if key != "result" and deeper_than(value, MAX_DEPTH - 1):
                    raise ValueError(f"JSON nested more than {MAX_DEPTH} levels deep")
            items = self._read_items(result)
        cursor = (
            _after_key(data) if self._paging == "after_key"
            else _offset(data, len(items), self._page_size)
        )
        return Page(items, cursor)


def page_reader(
    paging: Paging,
    read_item: Callable[[Any], Any],
    page_size: int,
    read_items: Callable[[list[Any]], list[Any]] | None = None,
    read_exact: Callable[[list[Any]], list[Any] | None] | None = None,
) -> PageReader:
    """A function reading one reply of a list into a `Page` (raises on a malformed one).

    ``read_items``, when given, reads a whole page's items at once as ``read_item`` would
    one by one, and bounds their JSON depth (`_fast.page_items_reader`); ``read_exact``
    reads them only if it can vouch for each exactly (`_fast.exact_page_items_reader`).
    """
    return PageReader(paging, read_item, page_size, read_items, read_exact)


async def paginate(fetch: Callable[[str | None], Awaitable[Page]]) -> AsyncIterator[Any]:
    """Yield every item of every page; ``fetch(cursor)`` gets one page (None: the first).

    Raises:
        PaginationError: the server handed back a cursor it had already given.
    """
    seen: set[str] = set()
    cursor: str | None = None
    while True:
        page = await fetch(cursor)
        for item in page.items:
            yield item
        cursor = page.next_cursor
        if cursor is None:
            return
        if cursor in seen:
            raise PaginationError(f"the server repeated the page cursor {shown(cursor)}")
        seen.add(cursor)
