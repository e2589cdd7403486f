"""Check requests and replies against the official OpenAPI specs in tests/spec/, by URL.

Both specs say OpenAPI 3.1 but use 3.0's ``nullable: true``; `load_spec` rewrites each into a
``[type, "null"]`` union, so the specs' own examples validate, and adds loopback servers
(``http://127.0.0.1:{port}`` and ``http://localhost:{port}``) at the document level and to
the operations that declare their own servers (AddIp, UpdateIp, the subuser operations), so
an exchange with a local fake server matches. The spec is chosen by path: ``/v3/partners/...``
is IP Provisioning, everything else IP Address Management.

The whole API (URLs are full, query string included; bodies are the raw bytes):

    validate_request(method, url, *, headers=None, body=None) -> None
    validate_response(method, url, *, status, headers=None, body=None) -> None
    documented_statuses(method, url) -> frozenset[int]
    operation_id(method, url) -> str
    load_spec("ipam" | "provisioning") -> dict

The validators raise `SpecViolation` (an AssertionError, so pytest shows it as a failed
assertion) naming the exchange and every schema error. Request validation includes the
security requirement, so a request without ``Authorization: Bearer ...`` fails it. A reply
whose status the operation does not document (429, say) fails `validate_response`; ask
`documented_statuses` first when a test expects one.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from openapi_core import OpenAPI
from openapi_core.exceptions import OpenAPIError
from openapi_core.testing import MockRequest, MockResponse

__all__ = [
    "SpecViolation",
    "documented_statuses",
    "load_spec",
    "operation_id",
    "validate_request",
    "validate_response",
]

SpecName = Literal["ipam", "provisioning"]

SPEC_DIR = Path(__file__).parent / "spec"
_FILES: dict[SpecName, str] = {
    "ipam": "tsg_ip_address_management_v3.json",
    "provisioning": "tsg_ip_provisioning_v3.json",
}
_LOOPBACK_SERVERS = [
    {"url": f"http://{host}:{{port}}", "variables": {"port": {"default": "80"}}}
    for host in ("127.0.0.1", "localhost")
]
_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


class SpecViolation(AssertionError):
    """A request or reply that the official spec does not allow."""


def _without_nullable(node: Any) -> Any:
    """A copy of the schema tree with each ``nullable: true`` folded into its type."""
    if isinstance(node, list):
        return [_without_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _without_nullable(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        kind = result.get("type")
        if isinstance(kind, str):
            result["type"] = [kind, "null"]
        elif isinstance(kind, list):
            result["type"] = [*kind, "null"] if "null" not in kind else kind
        else:
            result = {"anyOf": [result, {"type": "null"}]}
    return result


@functools.cache
def _spec_text(name: SpecName) -> dict[str, Any]:
    with (SPEC_DIR / _FILES[name]).open(encoding="utf-8") as file:
        document: dict[str, Any] = json.load(file)
    document = _without_nullable(document)
    document["servers"] = [*document.get("servers", []), *_LOOPBACK_SERVERS]
    for path_item in document["paths"].values():
        for method in _METHODS:
            operation = path_item.get(method)
            if operation is not None and "servers" in operation:
                operation["servers"] = [*operation["servers"], *_LOOPBACK_SERVERS]
    return document


def load_spec(name: SpecName) -> dict[str, Any]:
    """The spec as a dict, normalised as described above (a fresh copy each time)."""
    return copy.deepcopy(_spec_text(name))


@functools.cache
def _openapi(name: SpecName) -> OpenAPI:
    return OpenAPI.from_dict(_spec_text(name))


def _spec_name(path: str) -> SpecName:
    return "provisioning" if path.startswith("/v3/partners/") else "ipam"


def _template_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"(\{[^}]+\})", template)
    regex = "".join("[^/]+" if part.startswith("{") else re.escape(part) for part in parts)
    return re.compile(regex + "$")


@functools.cache
def _templates(name: SpecName) -> list[tuple[re.Pattern[str], dict[str, Any]]]:
    return [(_template_pattern(path), item) for path, item in _spec_text(name)["paths"].items()]


def _operation(method: str, url: str) -> dict[str, Any]:
    path = urlsplit(url).path
    for pattern, item in _templates(_spec_name(path)):
        if pattern.match(path) and method.lower() in item:
            operation: dict[str, Any] = item[method.lower()]
            return operation
    raise SpecViolation(f"{method.upper()} {url}: no such operation in the specs")


def operation_id(method: str, url: str) -> str:
    """The spec's operationId for a method and URL (SpecViolation if there is none)."""
    return str(_operation(method, url)["operationId"])


def documented_statuses(method: str, url: str) -> frozenset[int]:
    """The statuses the spec documents for the operation at this method and URL."""
    return frozenset(int(status) for status in _operation(method, url)["responses"])


def _content_type(headers: Mapping[str, str] | None) -> str:
    for name, value in (headers or {}).items():
        if name.lower() == "content-type":
            return value.split(";")[0].strip().lower()
    return "application/json"


def _request(
    method: str, url: str, headers: Mapping[str, str] | None, body: bytes | None
) -> MockRequest:
    parts = urlsplit(url)
    return MockRequest(
        f"{parts.scheme}://{parts.netloc}",
        method.lower(),
        parts.path,
        args=parse_qsl(parts.query, keep_blank_values=True),  # type: ignore[arg-type]
        headers=dict(headers or {}),
        data=body,
        content_type=_content_type(headers),
    )


def _describe(error: BaseException) -> str:
    lines = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__ or error.__context__
    while cause is not None:
        lines.append(f"  caused by {type(cause).__name__}: {cause}")
        lines.extend(
            f"    - {'/'.join(map(str, schema_error.absolute_path)) or '(root)'}: "
            f"{schema_error.message}"
            for schema_error in getattr(cause, "schema_errors", ())
        )
        cause = cause.__cause__ or cause.__context__
    return "\n".join(lines)


def _check(exchange: str, validate: Callable[[], object]) -> None:
    try:
        validate()
    except OpenAPIError as error:
        raise SpecViolation(f"{exchange}\n{_describe(error)}") from error


def validate_request(
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> None:
    """Check a request (security, path, query and body) against its spec."""
    request = _request(method, url, headers, body)
    spec = _openapi(_spec_name(request.path))
    _check(f"{method.upper()} {url}", lambda: spec.validate_request(request))


def validate_response(
    method: str,
    url: str,
    *,
    status: int,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> None:
    """Check a reply to `method url` (status, content type and body) against its spec."""
    request = _request(method, url, None, None)
    response = MockResponse(
        body or b"", status, headers=dict(headers or {}), content_type=_content_type(headers)
    )
    spec = _openapi(_spec_name(request.path))
    exchange = f"{method.upper()} {url} -> {status} {body!r}"
    _check(exchange, lambda: spec.validate_response(request, response))
