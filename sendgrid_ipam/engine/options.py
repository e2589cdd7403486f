"""Per-call options: the keyword arguments every operation accepts, checked before sending."""

from __future__ import annotations

from typing import TypedDict

import aiohttp

from .._observe import check_hook
from .._text import shown
from ..errors import ValidationError
from ..hooks import ResponseHook
from ..retry import RetryPolicy

__all__ = ["RequestOptions", "as_timeout", "check_options", "header_safe"]


class RequestOptions(TypedDict, total=False):
    """Per-call overrides every operation accepts as keyword arguments.

    ``timeout``: seconds (or an ``aiohttp.ClientTimeout``) for each attempt of this call.
    ``deadline``: seconds for the whole call — every attempt, wait and check — overriding
    the policy's ``deadline``. ``retry``: a `RetryPolicy` for this call. ``on_behalf_of``:
    the ``On-Behalf-Of`` header for this call only (a subuser name, or ``account-id <id>``).
    ``on_response``: a function called with a `ResponseEvent` for each of this call's
    requests (those of a write's checks included): the way to read a reply's headers, such
    as its request id (see ``sendgrid_ipam.hooks``).
    """

    timeout: float | aiohttp.ClientTimeout
    deadline: float
    retry: RetryPolicy
    on_behalf_of: str
    on_response: ResponseHook


_OPTION_NAMES = frozenset(RequestOptions.__annotations__)


def header_safe(value: object) -> bool:
    """Text that can travel in a header: one line, printable, not blank, no lone surrogate."""
    if not (isinstance(value, str) and value.isprintable() and value.strip() == value != ""):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(name, f"must be a positive number of seconds, not {shown(value)}")
    try:
        seconds = float(value)
    except OverflowError:
        raise ValidationError(name, "must be a positive number of seconds, not a huge integer"
                              ) from None
    if not 0 < seconds < float("inf"):
        raise ValidationError(name, f"must be a positive number of seconds, not {seconds!r}")
    return seconds


def check_options(options: RequestOptions) -> None:
    """Per-call options are keyword arguments: refuse a misspelt or mistyped one at once."""
    if unknown := options.keys() - _OPTION_NAMES:
        raise TypeError(f"unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    retry = options.get("retry")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise ValidationError("retry", f"must be a RetryPolicy, not {type(retry).__name__}")
    obo = options.get("on_behalf_of")
    if obo is not None and not header_safe(obo):
        raise ValidationError(
            "on_behalf_of", f"must be non-empty text on one line, not {shown(obo)}"
        )
    if "deadline" in options:
        _seconds("deadline", options["deadline"])
    if "timeout" in options:
        as_timeout(options["timeout"])
    if "on_response" in options:
        check_hook("on_response", options["on_response"], ValidationError)


def as_timeout(value: float | aiohttp.ClientTimeout) -> aiohttp.ClientTimeout:
    """A per-attempt timeout from seconds (at most 10 s of it to connect) or as given."""
    if isinstance(value, aiohttp.ClientTimeout):
        return value
    seconds = _seconds("timeout", value)
    return aiohttp.ClientTimeout(total=seconds, sock_connect=min(seconds, 10.0))
