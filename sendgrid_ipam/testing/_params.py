"""Reading query values, JSON bodies and IP addresses; shared by both APIs' handlers."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from ._replies import Refused

JSON_PARSE_ERROR = "failed to parse the request body as a JSON payload"


def parse_int(text: str) -> int | None:
    """The integer written in decimal digits (optionally negative), else None."""
    digits = text[1:] if text.startswith("-") else text
    return int(text) if digits.isascii() and digits.isdigit() else None


def parse_bool(text: str) -> bool | None:
    """True for "true", False for "false", None for anything else."""
    return {"true": True, "false": False}.get(text)


def is_ip(text: str) -> bool:
    """Whether the text is an IPv4 or IPv6 address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_ipv4(value: object) -> bool:
    """Whether the value is a string holding an IPv4 address in dotted-quad form."""
    if not isinstance(value, str):
        return False
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def json_object(body: bytes, error_id: str = "10-40000") -> dict[str, Any]:
    """The body as a JSON object, or a 400 with the spec's JSON parse error."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise Refused(400, "", JSON_PARSE_ERROR, error_id)
    return data


def is_strings(value: object) -> bool:
    """Whether the value is a JSON array of strings."""
    return isinstance(value, list) and all(isinstance(item, str) for item in value)
