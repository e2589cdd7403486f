"""Hooks: what each HTTP request of a call looked like, for code of your own.

``SendGridIPAM(on_request=..., on_response=...)`` calls ``on_request`` with a `RequestEvent`
just before each request goes out (each attempt, and each read a reconciliation makes) and
``on_response`` with a `ResponseEvent` once it has ended: its status or what failed, how long
it took, the rate-limit state and the reply's headers. One call of a single operation can
also take ``on_response=`` (``await sg.pools.get("x", on_response=seen.append)``): the way to
get the headers of that call's own reply (its request id, say), safe under concurrency, as
it sees that call's requests only (its attempts, and the reads of a write's checks).

Hooks are plain functions, called inline on the request path, in order: they must be quick
and must not block (hand anything slow to a queue or a task). Coroutine functions are
refused: awaiting a hook would add a suspension to every request and let a slow hook hold a
connection slot. A hook that raises is logged (``sendgrid_ipam`` logger, WARNING) and
ignored: observing never breaks a call.

Their types: ``RequestHook`` is ``Callable[[RequestEvent], object]`` and ``ResponseHook`` is
``Callable[[ResponseEvent], object]`` (a return value is ignored).

Events never hold the API key: no request header is passed, and a reply header that echoes
the key has it replaced by ``<redacted>``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import attrs

from .ratelimit import RateLimit

__all__ = ["RequestEvent", "RequestHook", "ResponseEvent", "ResponseHook"]


@attrs.frozen
class RequestEvent:
    """One HTTP request, about to be sent.

    Attributes:
        operation_id: the spec's operationId (``"AddAccountIps"``).
        method: the HTTP method.
        url_template: the operation's path template (``/v3/partners/accounts/{account_id}/ips``).
        path: the path sent, ids filled in and percent-encoded as on the wire.
        attempt: 1 for the call's first attempt, 2 for its first retry, and so on.
    """

    operation_id: str
    method: str
    url_template: str
    path: str
    attempt: int


@attrs.frozen
class ResponseEvent:
    """One HTTP request, ended: answered, or failed without a usable answer.

    Attributes:
        operation_id, method, url_template, path, attempt: as in `RequestEvent`.
        status: the reply's HTTP status; None when no reply came (a dropped connection or a
            timeout).
        error_type: the name of the `SendGridError` the attempt ended with (``"ServerError"``,
            ``"TransportError"``), or None when it succeeded.
        duration: seconds from sending the request to having read its reply.
        rate_limit: the reply's rate-limit headers, parsed; None when no reply came.
        headers: the reply's headers, read-only (empty when no reply came); for a request id
            or anything else the reply carries.
    """

    operation_id: str
    method: str
    url_template: str
    path: str
    attempt: int
    status: int | None
    error_type: str | None
    duration: float
    rate_limit: RateLimit | None
    headers: Mapping[str, str] = attrs.field(repr=False)

    @property
    def ok(self) -> bool:
        """True when the request succeeded (a 2xx reply that was read and decoded)."""
        return self.error_type is None


RequestHook = Callable[[RequestEvent], object]
"""Called with each `RequestEvent`; its return value is ignored."""

ResponseHook = Callable[[ResponseEvent], object]
"""Called with each `ResponseEvent`; its return value is ignored."""
