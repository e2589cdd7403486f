"""Cursor pagination over sorted sequences, visiting only the items of the page asked for."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")


def page(
    items: Sequence[T],
    key: Callable[[T], int],
    cursor: int | None,
    limit: int,
    *,
    descending: bool = False,
    keep: Callable[[T], bool] | None = None,
) -> tuple[list[T], bool]:
    """Up to `limit` kept items past the cursor, and whether more kept items lie beyond them.

    `items` must be sorted by `key`, ascending. Ascending pages take the items whose key is
    above `cursor`; descending pages take those below it, nearest first. A None cursor starts
    at the beginning (or, descending, at the end). Only the items from the cursor to the end
    of the page are visited, so paging through a long list stays cheap.
    """
    if descending:
        end = len(items) if cursor is None else bisect_left(items, cursor, key=key)
        indexes = range(end - 1, -1, -1)
    else:
        start = 0 if cursor is None else bisect_right(items, cursor, key=key)
        indexes = range(start, len(items))
    found: list[T] = []
    for index in indexes:
        item = items[index]
        if keep is None or keep(item):
            if len(found) == limit:
                return found, True
            found.append(item)
    return found, False
