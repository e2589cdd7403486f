"""The exceptions sendgrid-ipam raises.

Every exception derives from `SendGridError`::

    SendGridError
    ├── ValidationError            bad input, raised before any request is sent (also a ValueError)
    ├── ConfigurationError         a client that cannot be used as configured (also a ValueError)
    ├── ClientStateError           a call outside ``async with`` or after close (RuntimeError)
    ├── TransportError             no usable reply: connection refused, reset, dropped
    │   └── RequestTimeoutError    the attempt did not finish in time
    ├── DecodeError                a reply that cannot be read as the spec says (raw text kept)
    ├── PaginationError            a server that repeats a cursor (would loop forever)
    ├── AmbiguousResultError       a write may or may not have taken effect, and checking
    │                              could not settle it; carries what was found
    ├── BulkProvisioningError      BulkResult.raise_for_failures(): some accounts failed
    └── APIError                   the API answered with an error status
        ├── BadRequestError        400
        ├── AuthenticationError    401 (also a missing scope on IP Address Management)
        ├── PermissionDeniedError  403
        ├── NotFoundError          404
        ├── RateLimitError         429 (or a rate-limit wait longer than the policy accepts)
        └── ServerError            5xx

Errors raised by an operation that went through retries carry ``.attempts``: what each attempt
met and how long the client waited after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

import attrs

if TYPE_CHECKING:
    from .ratelimit import RateLimit

__all__ = [
    "APIError",
    "AmbiguousResultError",
    "AttemptRecord",
    "AuthenticationError",
    "BadRequestError",
    "BulkProvisioningError",
    "ClientStateError",
    "ConfigurationError",
    "DecodeError",
    "ErrorDetail",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeoutError",
    "SendGridError",
    "ServerError",
    "TransportError",
    "ValidationError",
]

_RAW_TEXT_LIMIT = 2000


@attrs.frozen
class ErrorDetail:
    """One entry of an error reply's ``errors`` list."""

    message: str
    field: str | None = None
    error_id: str | None = None


@attrs.frozen
class AttemptRecord:
    """What one attempt of an operation met, and how long the client waited after it."""

    number: int
    outcome: str
    status: int | None = None
    waited: float = 0.0


class SendGridError(Exception):
    """Base class of every error sendgrid-ipam raises."""

    operation: str | None = None
    attempts: tuple[AttemptRecord, ...] = ()


class ValidationError(SendGridError, ValueError):
    """Bad input, found before any request was sent. ``.field`` names it, ``.rule`` says why."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


class ConfigurationError(SendGridError, ValueError):
    """The client cannot be used as configured (no API key, an unsafe base URL, ...)."""


class ClientStateError(SendGridError, RuntimeError):
    """A call made outside ``async with SendGridIPAM(...)`` or after the client was closed."""


class TransportError(SendGridError):
    """No usable reply: the connection failed, was reset or was dropped.

    ``.request_sent`` is False only when the request certainly never reached the server
    (the connection could not be opened), so a write that failed this way had no effect.
    """

    def __init__(self, message: str, *, request_sent: bool = True) -> None:
        super().__init__(message)
        self.request_sent = request_sent


class RequestTimeoutError(TransportError):
    """The attempt did not finish within its timeout (or what was left of the deadline)."""


class DecodeError(SendGridError):
    """A reply that cannot be read as the spec says. ``.body`` holds the raw text."""

    def __init__(self, message: str, *, status: int, body: str) -> None:
        super().__init__(f"{message} (HTTP {status}): {_clip(body)!r}")
        self.status = status
        self.body = body


class PaginationError(SendGridError):
    """The server handed back a cursor it had already given: following it would loop."""


class AmbiguousResultError(SendGridError):
    """A write failed in a way that may have taken effect, and checking did not settle it.

    ``.found`` holds the IPs the check found (for example those that appeared on the
    account), ``.expected`` what was asked. Nothing was resent: resending could buy twice.
    """

    found: tuple[str, ...]
    """The IP addresses the check found (empty when it found none or could not check)."""

    def __init__(self, message: str, *, found: Iterable[str] = (),
                 expected: int | Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.found = tuple(found)
        self.expected: int | Sequence[str] | None = expected
        """What was asked: a count of IPs, or the IPs themselves (None when not known)."""


class FailedAccount(Protocol):
    """What `BulkProvisioningError.failed` holds: a failed account's `AccountResult`.

    (A protocol only because this module cannot import the bulk runner's types.)
    """

    @property
    def account_id(self) -> str:
        """The account."""

    @property
    def requested(self) -> int:
        """How many IPs were asked for."""

    @property
    def ips(self) -> tuple[str, ...]:
        """The IPs it obtained before failing."""

    @property
    def error(self) -> BaseException | None:
        """Why it failed (None when it simply obtained fewer IPs than asked)."""


class BulkProvisioningError(SendGridError):
    """Raised by `BulkResult.raise_for_failures`; ``.failed`` lists the failed accounts."""

    def __init__(self, failed: Sequence[FailedAccount]) -> None:
        names = ", ".join(r.account_id for r in failed[:5])
        more = f" and {len(failed) - 5} more" if len(failed) > 5 else ""
        super().__init__(f"{len(failed)} account(s) failed: {names}{more}")
        self.failed: tuple[FailedAccount, ...] = tuple(failed)


class APIError(SendGridError):
    """The API answered with an error status.

    ``.status`` is the HTTP status, ``.errors`` the parsed details (possibly empty),
    ``.body`` the raw reply text and ``.headers`` the reply headers.
    """

    def __init__(
        self,
        status: int,
        errors: Sequence[ErrorDetail],
        body: str,
        headers: Mapping[str, str],
        rate_limit: RateLimit | None = None,
    ) -> None:
        self.status = status
        self.errors: list[ErrorDetail] = list(errors)
        self.body = body
        self.headers: dict[str, str] = dict(headers)
        self.rate_limit = rate_limit
        super().__init__(self._summary())

    def _summary(self) -> str:
        if self.errors:
            parts = [f"{e.field}: {e.message}" if e.field else e.message for e in self.errors]
            return f"HTTP {self.status}: " + _clip("; ".join(parts))
        return f"HTTP {self.status}: {_clip(self.body)!r}" if self.body else f"HTTP {self.status}"


class BadRequestError(APIError):
    """400: the API refused the request's content."""


class AuthenticationError(APIError):
    """401: the API key is missing, wrong, or lacks a required scope."""


class PermissionDeniedError(APIError):
    """403: the authenticated user may not do this."""


class NotFoundError(APIError):
    """404: no such resource (for example an unknown partner account)."""


class RateLimitError(APIError):
    """429: too many requests. ``.rate_limit`` holds the parsed rate-limit headers."""

    @property
    def retry_at(self) -> float | None:
        """Unix time at which to try again, when the reply said.

        From ``Retry-After`` when the reply had a readable one (it is the server's answer to
        this very request), else from ``X-RateLimit-Reset``; None when it had neither.
        These are what the server said, unclamped: the client itself never holds its
        requests longer than its ``max_rate_limit_wait``.
        """
        if self.rate_limit is None:
            return None
        if self.rate_limit.retry_at is not None:
            return self.rate_limit.retry_at
        return self.rate_limit.reset_at


class ServerError(APIError):
    """5xx: the API (or a proxy in front of it) failed."""


def _clip(text: str) -> str:
    return text if len(text) <= _RAW_TEXT_LIMIT else text[:_RAW_TEXT_LIMIT] + "..."


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def error_class_for(status: int) -> type[APIError]:
    """The `APIError` subclass for an HTTP status."""
    if status >= 500:
        return ServerError
    return _BY_STATUS.get(status, APIError)
