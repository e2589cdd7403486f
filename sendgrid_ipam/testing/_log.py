"""The fake's request log: one frozen record per request, for assertions in tests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypedDict

import attrs


@attrs.frozen
class RequestRecord:
    """One request the fake received and what became of it.

    Attributes:
        operation_id: the spec's operationId; None when the path matched no operation.
        method: the HTTP method.
        path: the path as sent on the wire (percent-encoding kept).
        query: the query parameters (the first value of a repeated one).
        status: the status answered; None when the connection was dropped instead.
        applied: whether the request changed the fake's state (for a late write: once it
            landed, and only if it took effect then).
        fault: the injected fault's name ("error", "applied_error", "drop", "applied_drop",
            "slow", "html", "applied_html", "malformed", "late_error", "late_html",
            "late_drop"), or None.
        account_id: the partner account in the path (IP Provisioning), else None.
        on_behalf_of: the On-Behalf-Of header, else None. The Authorization header is never kept.
        received_at: the fake's clock when the request arrived.
        answered_at: the fake's clock when the reply was sent or the connection dropped.
        landed_at: the fake's clock when a late write was carried out; None before it landed,
            and for every other request.
    """

    operation_id: str | None
    method: str
    path: str
    query: Mapping[str, str] = attrs.field(hash=False)
    status: int | None
    applied: bool
    fault: str | None
    account_id: str | None
    on_behalf_of: str | None
    received_at: float
    answered_at: float
    landed_at: float | None = None


class LogFilter(TypedDict, total=False):
    """Filters on the request log; a filter left out (or None) matches any value."""

    applied: bool | None
    account_id: str | None
    status: int | None
    fault: str | None


def select(
    log: Iterable[RequestRecord], operation_id: str | None, filters: LogFilter
) -> list[RequestRecord]:
    """The records of `operation_id` (None: any) that match every filter given."""
    tests = [(name, value) for name, value in filters.items() if value is not None]
    if operation_id is not None:
        tests.append(("operation_id", operation_id))
    return [
        record for record in log if all(getattr(record, name) == value for name, value in tests)
    ]
