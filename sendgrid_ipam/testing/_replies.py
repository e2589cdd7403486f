"""What a handler receives and answers, and the two APIs' error bodies; no aiohttp here.

Handlers receive a `Call` and return a `Reply` or raise `Refused`; the server turns a refusal
into the error body of the operation's API:

- IP Address Management: ``{"errors": [{"field": "...", "message": "..."}]}``
- IP Provisioning: ``{"errors": [{"message": "...", "field": "...", "error_id": "10-40002"}]}``
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

import attrs

JSON = "application/json"
HTML = "text/html"


class Api(enum.Enum):
    """Which of the two APIs an operation belongs to (they differ in their error bodies)."""

    IPAM = "ipam"
    PROVISIONING = "provisioning"


@attrs.frozen
class Call:
    """One request as a handler sees it: path parameters, query, raw body and the time."""

    path: Mapping[str, str]
    query: Mapping[str, str]
    body: bytes
    now: float


@attrs.frozen
class Reply:
    """A status, a body and its content type, ready to be sent."""

    status: int
    body: bytes = b""
    content_type: str | None = None

    @classmethod
    def json(cls, status: int, data: Any) -> Reply:
        """A JSON reply."""
        return cls(status, json.dumps(data, separators=(",", ":")).encode(), JSON)


NO_CONTENT = Reply(204)


class Refused(Exception):
    """Raised by a handler to answer an error without changing any state."""

    def __init__(self, status: int, field: str, message: str, error_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.field = field
        self.message = message
        self.error_id = error_id or provisioning_error_id(status)


def provisioning_error_id(status: int) -> str:
    """The IP Provisioning API's generic error id for a status, e.g. 502 -> "10-50200"."""
    return f"10-{status}00"


# Messages the specs give for whole-status errors (the IPAM spec uses lower case).
_IPAM_MESSAGES = {401: "authorization required", 500: "internal server error"}
_PROVISIONING_MESSAGES = {
    401: "Failed to authenticate user",
    403: "The authenticated user is not authorized to perform this request",
    404: "Not Found",
    500: "Something went wrong",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Endpoint request timed out",
}


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def refusal_reply(api: Api, refusal: Refused) -> Reply:
    """The error reply of `api` for a refusal."""
    error: dict[str, str]
    if api is Api.IPAM:
        error = {"field": refusal.field, "message": refusal.message}
    else:
        error = {"message": refusal.message, "field": refusal.field, "error_id": refusal.error_id}
    return Reply.json(refusal.status, {"errors": [error]})


def status_reply(api: Api, status: int) -> Reply:
    """The error reply of `api` for a status with no field to blame (401, 5xx, ...)."""
    if api is Api.IPAM:
        message = _IPAM_MESSAGES.get(status, _phrase(status).lower())
    else:
        message = _PROVISIONING_MESSAGES.get(status, _phrase(status))
    return refusal_reply(api, Refused(status, "", message))


# SendGrid-wide, both APIs: note the null field, unlike every documented error.
TOO_MANY_REQUESTS = Reply.json(429, {"errors": [{"field": None, "message": "too many requests"}]})


def html_reply(status: int) -> Reply:
    """An HTML error page such as a proxy in front of the API answers."""
    title = f"{status} {_phrase(status)}"
    page = (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n"
        f"<center><h1>{title}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return Reply(status, page.encode(), HTML)


def truncated(reply: Reply) -> Reply:
    """The reply with its JSON cut short (a 2xx status even when the original had no body)."""
    body = reply.body or b'{"result":[]}'
    status = 200 if reply.status == 204 else reply.status
    return Reply(status, body[: max(1, len(body) // 2)], JSON)
