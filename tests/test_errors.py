"""Error replies become the right exception, with everything the reply said, and never a KeyError.

The error bodies are the specs' own examples, for every status each operation documents.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sendgrid_ipam import (
    APIError,
    AuthenticationError,
    BadRequestError,
    DecodeError,
    ErrorDetail,
    NotFoundError,
    PaginationError,
    PermissionDeniedError,
    RateLimitError,
    RetryPolicy,
    SendGridIPAM,
    ServerError,
)
from tests.conftest import OPS, FakeTime, RecordingResponses, serve_checks
from tests.openapi_support import load_spec

CLASSES: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
    500: ServerError,
    502: ServerError,
    503: ServerError,
    504: ServerError,
}
ONE_ATTEMPT = RetryPolicy(max_attempts=1)


def _resolve(document: dict[str, Any], node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def _error_examples() -> list[Any]:
    """(operationId, status, example body) for every documented error reply of both specs."""
    cases = []
    for name in ("ipam", "provisioning"):
        document = load_spec(name)
        for path_item in document["paths"].values():
            for method, operation in path_item.items():
                if method == "parameters":
                    continue
                for status, response in operation["responses"].items():
                    if status.startswith("2"):
                        continue
                    content = _resolve(document, response).get("content", {})
                    media = content.get("application/json", {})
                    examples = [_resolve(document, e)["value"]
                                for e in media.get("examples", {}).values()]
                    if "example" in media:
                        examples.append(media["example"])
                    for number, example in enumerate(examples):
                        cases.append(pytest.param(
                            operation["operationId"], int(status), example,
                            id=f"{operation['operationId']}-{status}-{number}",
                        ))
    return cases


ERROR_EXAMPLES = _error_examples()


def test_every_operation_has_documented_error_examples() -> None:
    covered = {param.values[0] for param in ERROR_EXAMPLES}
    assert covered == set(OPS)
    statuses = {param.values[1] for param in ERROR_EXAMPLES}
    assert statuses == {400, 401, 403, 404, 500, 502, 503, 504}


@pytest.mark.parametrize(("operation_id", "status", "example"), ERROR_EXAMPLES)
async def test_documented_error_reply_becomes_the_right_exception(
    client: SendGridIPAM, mocked: RecordingResponses,
    operation_id: str, status: int, example: dict[str, Any],
) -> None:
    op = OPS[operation_id]
    text = json.dumps(example)
    serve_checks(mocked, operation_id)
    mocked.add(op.url_pattern, method=op.method, status=status, body=text, repeat=True,
               headers={"X-Request-Id": "req-1", "X-RateLimit-Remaining": "99"})
    with pytest.raises(APIError) as info:
        await op.invoke(client, retry=ONE_ATTEMPT)
    exc = info.value
    assert type(exc) is CLASSES[status]
    assert exc.status == status
    assert exc.errors == [
        ErrorDetail(item["message"], item.get("field"), item.get("error_id"))
        for item in example["errors"]
    ]
    assert exc.body == text
    assert exc.headers["X-Request-Id"] == "req-1"
    assert exc.operation == operation_id
    assert f"HTTP {status}" in str(exc)
    assert example["errors"][0]["message"] in str(exc)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
@pytest.mark.parametrize("operation_id", list(OPS))
async def test_client_errors_are_sent_once(
    client: SendGridIPAM, mocked: RecordingResponses, operation_id: str, status: int
) -> None:
    op = OPS[operation_id]
    serve_checks(mocked, operation_id)
    mocked.add(op.url_pattern, method=op.method, status=status, repeat=True,
               payload={"errors": [{"field": "", "message": "no"}]})
    with pytest.raises(APIError) as info:
        await op.invoke(client)
    assert info.value.status == status
    assert len(op.sent(mocked)) == 1


async def test_missing_scope_on_ipam_is_an_authentication_error(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    op = OPS["ListIpPool"]
    mocked.get(op.url_pattern, status=401, payload={
        "errors": [{"field": "", "message": "missing required scope: ips.pools.read"}]})
    with pytest.raises(AuthenticationError, match="missing required scope"):
        await op.invoke(client)


async def test_server_errors_are_retried_then_raised_with_the_attempts(
    client: SendGridIPAM, mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    op = OPS["GetIpPool"]
    mocked.get(op.url, status=503, repeat=True,
               payload={"errors": [{"field": "", "message": "unavailable"}]})
    with pytest.raises(ServerError) as info:
        await op.invoke(client)
    assert len(op.sent(mocked)) == 3
    assert [a.status for a in info.value.attempts] == [503, 503, 503]
    assert len(fake_time.sleeps) == 2


async def test_rate_limit_reply(
    client: SendGridIPAM, mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    op = OPS["ListIpPool"]
    reset = int(fake_time.wall_clock()) + 5
    mocked.get(op.url, status=429, repeat=True,
               payload={"errors": [{"field": None, "message": "too many requests"}]},
               headers={"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "0",
                        "X-Ratelimit-Reset": str(reset)})
    with pytest.raises(RateLimitError) as info:
        await op.invoke(client, retry=ONE_ATTEMPT)
    exc = info.value
    assert exc.errors == [ErrorDetail("too many requests", None)]
    assert exc.rate_limit is not None
    assert (exc.rate_limit.limit, exc.rate_limit.remaining) == (100, 0)
    assert exc.retry_at == reset


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (502, "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
         "text/html"),
        (504, "<html><body><h1>504 Gateway Time-out</h1></body></html>", "text/html"),
        (503, "", "text/plain"),
        (500, '{"errors": [{"field": "", "message": "broken', "application/json"),
        (502, '["not", "an", "object"]', "application/json"),
        (500, "null", "application/json"),
        (404, '{"error": "route not found"}', "application/json"),
        (400, '{"errors": "just text"}', "application/json"),
        (401, '{"errors": [{}]}', "application/json"),
    ],
    ids=["html-502", "html-504", "empty-503", "truncated-json", "list", "null",
         "error-string", "errors-string", "empty-item"],
)
@pytest.mark.parametrize("operation_id", ["GetIp", "ListAccountIps", "AddAccountIps"])
async def test_unreadable_error_bodies_keep_status_and_raw_text(
    client: SendGridIPAM, mocked: RecordingResponses,
    operation_id: str, status: int, body: str, content_type: str,
) -> None:
    op = OPS[operation_id]
    serve_checks(mocked, operation_id)
    mocked.add(op.url_pattern, method=op.method, status=status, body=body,
               content_type=content_type, repeat=True)
    with pytest.raises(APIError) as info:
        await op.invoke(client, retry=ONE_ATTEMPT)
    exc = info.value
    assert type(exc) is CLASSES[status]
    assert exc.status == status
    assert exc.body == body
    assert exc.headers["Content-Type"] == content_type
    assert f"HTTP {status}" in str(exc)
    assert all(isinstance(detail, ErrorDetail) for detail in exc.errors)


async def test_null_message_is_not_shown_as_none(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    op = OPS["GetIpPool"]
    mocked.get(op.url, status=400, payload={"errors": [{"field": "poolid", "message": None}]})
    with pytest.raises(BadRequestError) as info:
        await op.invoke(client)
    assert info.value.errors == [ErrorDetail("", "poolid")]
    assert "None" not in str(info.value)


@pytest.mark.parametrize(
    "body", ["{not json", "<html>OK</html>", '{"ip": "192.0.2.1"', "\ufeff{}x"],
)
async def test_success_status_with_invalid_json_is_a_decode_error_with_the_raw_text(
    client: SendGridIPAM, mocked: RecordingResponses, body: str
) -> None:
    op = OPS["GetIp"]
    mocked.get(op.url, status=200, body=body, repeat=True)
    with pytest.raises(DecodeError) as info:
        await op.invoke(client)
    assert info.value.status == 200
    assert info.value.body == body
    assert "HTTP 200" in str(info.value)


ODD_SUCCESS_BODIES = [
    "", "{}", "[]", "null", "0", '"text"', "true", '{"result": null}', '{"result": {}}',
    '{"result": [null]}', '{"result": [[]]}', '{"result": [{}]}', '{"result": ["x"]}',
    '{"result": [{"ip": null}]}', '{"result": [{"id": []}]}', '{"_metadata": []}',
    '{"result": [], "_metadata": {"next_params": []}}',
    '{"result": [], "_metadata": {"next_params": {"after_key": {}}}}',
    '{"result": [], "pages": []}', '{"result": [], "pages": {"last": {}}}',
    '{"ips": null}', '{"ips": [null]}', '{"ips": {}}', '{"id": null}', '{"id": {}}',
    '{"ip": []}', '{"subusers": "1"}', '{"pools": {}}', '{"pools": [[]]}',
    '{"regions": 1}', '{"ip_count_by_region": [[]]}', '{"region": 1}',
]


@pytest.mark.parametrize("operation_id", list(OPS))
async def test_odd_success_replies_never_escape_as_anything_but_sendgrid_errors(
    client: SendGridIPAM, mocked: RecordingResponses, operation_id: str
) -> None:
    """Whatever a 2xx body holds, the user gets a model, None, or a DecodeError with the text.

    (A PaginationError is right too where a page, served again and again, names a cursor.)
    """
    op = OPS[operation_id]
    status = 201 if operation_id in ("AddAccountIps", "AddIp", "CreateIpPool") else 200
    wrong = []
    for body in ODD_SUCCESS_BODIES:
        mocked.clear()
        serve_checks(mocked, operation_id)
        mocked.add(op.url_pattern, method=op.method, status=status, body=body, repeat=True)
        try:
            await op.invoke(client, retry=ONE_ATTEMPT)
        except DecodeError as exc:
            if exc.body != body:
                wrong.append((body, exc))
        except PaginationError as exc:
            if op.method != "GET" or "_metadata" not in body:
                wrong.append((body, exc))
        except Exception as exc:  # any other exception is the failure this test looks for
            wrong.append((body, exc))
    assert wrong == []
