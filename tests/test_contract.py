"""The client against the official specs (tests/spec/), both ways.

- Every request the client sends, for each of the 18 operations, validates against the spec.
- Against a mock serving the spec (each operation's own example, then random replies that
  conform to the reply schema with optional fields left out at random), every operation
  returns models and raises nothing.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from aioresponses import CallbackResult

from sendgrid_ipam import ConfigurationError, SendGridError, SendGridIPAM, ValidationError
from sendgrid_ipam.operations import OPERATIONS
from tests.conftest import (
    ACCOUNT_ID,
    BASE,
    IP,
    OPS,
    POOL_ID,
    FakeTime,
    RecordingResponses,
    collect,
    make_client,
    serve_checks,
)
from tests.openapi_support import load_spec, validate_request, validate_response

SPECS = {name: load_spec(name) for name in ("ipam", "provisioning")}


def _spec_operations() -> dict[str, tuple[str, str, dict[str, Any], str]]:
    """operationId -> (method, path template, operation, spec name)."""
    found = {}
    for name, document in SPECS.items():
        for path, item in document["paths"].items():
            for method, operation in item.items():
                if method != "parameters":
                    found[operation["operationId"]] = (method.upper(), path, operation, name)
    return found


SPEC_OPS = _spec_operations()


def _resolve(document: dict[str, Any], node: Any) -> Any:
    """The node with its $ref followed (siblings of a $ref apply too, as in OpenAPI 3.1)."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _success(operation_id: str) -> tuple[int, dict[str, Any] | None]:
    """The documented success status and its JSON media object (None for no content)."""
    _, _, operation, name = SPEC_OPS[operation_id]
    status, response = next(
        (code, resp) for code, resp in operation["responses"].items() if code.startswith("2")
    )
    response = _resolve(SPECS[name], response)
    return int(status), response.get("content", {}).get("application/json")


# ---------------------------------------------------------------- the operation table


def _template(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_the_operation_table_is_the_specs() -> None:
    assert set(OPERATIONS) == set(SPEC_OPS) == set(OPS)
    for operation_id, (method, path, _, _) in SPEC_OPS.items():
        op = OPERATIONS[operation_id]
        assert (op.method, _template(op.path)) == (method, _template(path)), operation_id


def test_the_tests_call_each_operation_at_its_spec_path() -> None:
    for operation_id, call in OPS.items():
        method, path, _, _ = SPEC_OPS[operation_id]
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)) + "$"
        assert call.method == method
        assert re.match(pattern, call.path), (operation_id, call.path, path)


# ---------------------------------------------------------------- what the client sends


def _example(operation_id: str) -> tuple[int, str]:
    """The spec's own example reply for the operation's success status."""
    status, media = _success(operation_id)
    if media is None:
        return status, ""
    if "example" in media:
        return status, json.dumps(media["example"])
    examples = media["examples"]
    return status, json.dumps(_resolve(SPECS[SPEC_OPS[operation_id][3]],
                                       next(iter(examples.values())))["value"])


def _fit(operation_id: str, body: str, request: dict[str, Any]) -> str:
    """AddAccountIps answers as many IPs as were asked (the client holds it to that), so the
    served reply is made to agree with the request; every other reply is served as it is."""
    if operation_id != "AddAccountIps" or not body:
        return body
    asked = json.loads(request["data"])["count"]
    reply = json.loads(body)
    ips = list(dict.fromkeys(reply.get("ips") or []))[:asked]
    spare = (f"198.51.100.{n}" for n in range(1, 255))
    ips += [ip for ip in spare if ip not in ips][: asked - len(ips)]
    return json.dumps({**reply, "ips": ips})


def _serve_examples(mock: RecordingResponses, operation_id: str) -> None:
    serve_checks(mock, operation_id)
    op = OPS[operation_id]
    status, body = _example(operation_id)

    def reply(url: Any, **kwargs: Any) -> CallbackResult:
        return CallbackResult(status=status, body=_fit(operation_id, body, kwargs))

    mock.add(op.url_pattern, method=op.method, callback=reply, repeat=True)


def _validate_everything_sent(mock: RecordingResponses) -> int:
    sent = mock.sent
    for request in sent:
        validate_request(request.method, request.url, headers=dict(request.headers),
                         body=request.data)
    return len(sent)


@pytest.mark.parametrize("operation_id", list(OPS))
async def test_requests_conform_to_the_spec(
    client: SendGridIPAM, mocked: RecordingResponses, operation_id: str
) -> None:
    _serve_examples(mocked, operation_id)
    await OPS[operation_id].invoke(client)
    assert OPS[operation_id].sent(mocked)
    _validate_everything_sent(mocked)


# Calls with every optional argument, so each query parameter and body field is checked.
FULL_CALLS: dict[str, Callable[[SendGridIPAM], Any]] = {
    "ListAccountIps": lambda sg: collect(sg.provisioning.list_ips(ACCOUNT_ID, limit=5000)),
    "AddAccountIps": lambda sg: sg.provisioning.add_ips(ACCOUNT_ID, count=10, region="eu"),
    "RemoveAccountIps": lambda sg: sg.provisioning.remove_ips(
        ACCOUNT_ID, ips=[f"192.0.2.{n}" for n in range(1, 11)]),
    "ListIp": lambda sg: collect(sg.ips.list(
        ip=IP, limit=5000, is_leased=False, is_enabled=True, pool=POOL_ID,
        start_added_at=1664390000, end_added_at=1664399999, region="eu",
        include_region=True)),
    "AddIp": lambda sg: sg.ips.add(is_auto_warmup=False, is_parent_assigned=True,
                                   subusers=[str(n) for n in range(100)], region="eu",
                                   include_region=True),
    "GetIp": lambda sg: sg.ips.get(IP, include_region=True),
    "UpdateIp": lambda sg: sg.ips.update(IP, is_auto_warmup=True, is_parent_assigned=False,
                                         is_enabled=True),
    "ListSubUserAssignedToIp": lambda sg: collect(sg.ips.list_subusers(IP, limit=100)),
    "AddSubUsersToIp": lambda sg: sg.ips.add_subusers(IP, [str(n) for n in range(50)]),
    "DeleteSubUsersFromIp": lambda sg: sg.ips.remove_subusers(IP, ["1", "2"]),
    "ListIpPool": lambda sg: collect(sg.pools.list(ip=IP, limit=100, region="all",
                                                   include_region=False)),
    "CreateIpPool": lambda sg: sg.pools.create(
        "transactional_pool", ips=[f"192.0.2.{n}" for n in range(1, 101)]),
    "GetIpPool": lambda sg: sg.pools.get(POOL_ID, include_region=True),
    "UpdateIpPool": lambda sg: sg.pools.rename(POOL_ID, "p" * 64),
    "DeleteIpPool": lambda sg: sg.pools.delete(POOL_ID),
    "ListIpAssignedToIpPool": lambda sg: collect(sg.pools.list_ips(POOL_ID, limit=100,
                                                                   include_region=True)),
    "AddIpsToIpPool": lambda sg: sg.pools.add_ips(POOL_ID, [f"10.0.0.{n}" for n in
                                                            range(1, 101)]),
    "DeleteIpsFromIpPool": lambda sg: sg.pools.remove_ips(POOL_ID, ["10.0.0.1"]),
}


@pytest.mark.parametrize("operation_id", list(OPS))
async def test_requests_with_every_option_conform_to_the_spec(
    mocked: RecordingResponses, fake_time: FakeTime, operation_id: str
) -> None:
    _serve_examples(mocked, operation_id)
    async with make_client(fake_time, on_behalf_of="subuser-1") as sg:
        await FULL_CALLS[operation_id](sg)
    assert OPS[operation_id].sent(mocked)
    _validate_everything_sent(mocked)


@pytest.mark.parametrize(
    ("operation_id", "cursor"),
    [("ListIpPool", 12345), ("ListIpAssignedToIpPool", 67890),
     ("ListSubUserAssignedToIp", 555), ("ListIp", 99)],
)
async def test_follow_up_page_requests_conform_to_the_spec(
    client: SendGridIPAM, mocked: RecordingResponses, operation_id: str, cursor: int
) -> None:
    op = OPS[operation_id]
    first = json.loads(_example(operation_id)[1])
    first["_metadata"] = {"next_params": {"after_key": cursor}}
    mocked.get(re.compile(re.escape(op.url) + r"\?(.*&)?after_key=.*"),
               body=_example(operation_id)[1], repeat=True)
    mocked.get(op.url_pattern, payload=first)
    await op.invoke(client)
    assert len(op.sent(mocked)) == 2
    assert f"after_key={cursor}" in mocked.last.url
    _validate_everything_sent(mocked)


async def test_account_ip_follow_up_page_conforms_to_the_spec(
    client: SendGridIPAM, mocked: RecordingResponses
) -> None:
    op = OPS["ListAccountIps"]
    full = {"result": [{"ip": f"10.0.0.{n}", "region": "us"} for n in range(10, 0, -1)],
            "pages": {"last": "10.0.0.1"}}
    mocked.get(re.compile(re.escape(op.url) + r"\?offset=.*"),
               payload={"result": [], "pages": {}})
    mocked.get(op.url, payload=full)
    assert len(await op.invoke(client)) == 10
    assert mocked.last.url == f"{op.url}?offset=10.0.0.1"
    _validate_everything_sent(mocked)


GLOBAL_ONLY = [
    operation_id for operation_id, (_, _, operation, _) in SPEC_OPS.items()
    if [server["url"] for server in operation.get("servers", [])
        if server["url"].startswith("https://")] == [BASE]
]


def test_the_specs_global_only_operations() -> None:
    assert sorted(GLOBAL_ONLY) == sorted([
        "AddIp", "UpdateIp", "ListSubUserAssignedToIp", "AddSubUsersToIp",
        "DeleteSubUsersFromIp",
    ])


async def test_eu_client_sends_global_only_operations_where_the_spec_says(
    mocked: RecordingResponses, fake_time: FakeTime
) -> None:
    """The spec serves these operations from https://api.sendgrid.com only.

    Sending them to the global host, or refusing them with a clear error before sending,
    would both do; sending them to https://api.eu.sendgrid.com does not.
    """
    violations = []
    for operation_id in GLOBAL_ONLY:
        op = OPS[operation_id]
        mocked.clear()
        eu = re.compile(re.escape("https://api.eu.sendgrid.com" + op.path) + r"(\?.*)?$")
        status, body = _example(operation_id)
        for pattern in (op.url_pattern, eu):
            mocked.add(pattern, method=op.method, status=status, body=body, repeat=True)
        mocked.get(re.compile(r".*/v3/send_ips/ips\?.*"), payload={"result": []}, repeat=True)
        before = len(mocked.sent)
        async with make_client(fake_time, region="eu") as sg:
            with contextlib.suppress(ConfigurationError, ValidationError):
                await op.invoke(sg)
        for request in mocked.sent[before:]:
            if request.method == op.method and request.url.startswith("https://api.eu."):
                violations.append(f"{operation_id}: {request.method} {request.url}")
    assert violations == []


# ---------------------------------------------------------------- what the client accepts


def _item_model(operation_id: str) -> type[Any] | None:
    model: type[Any] | None = OPERATIONS[operation_id].model
    return model


def _assert_models(operation_id: str, result: Any) -> None:
    model = _item_model(operation_id)
    if model is None:
        assert result is None, (operation_id, result)
    elif OPERATIONS[operation_id].paging is not None:
        assert isinstance(result, list)
        assert all(isinstance(item, model) for item in result), (operation_id, result)
    else:
        assert isinstance(result, model), (operation_id, result)
        assert attrs.has(type(result))


@pytest.mark.parametrize("operation_id", list(OPS))
async def test_spec_example_replies_are_read_into_models(
    client: SendGridIPAM, mocked: RecordingResponses, operation_id: str
) -> None:
    op = OPS[operation_id]
    status, body = _example(operation_id)
    validate_response(op.method, op.url, status=status,
                      headers={"Content-Type": "application/json"} if body else {},
                      body=body.encode())
    _serve_examples(mocked, operation_id)
    result = await op.invoke(client)
    _assert_models(operation_id, result)
    if body and not OPERATIONS[operation_id].paging:
        example = json.loads(body)
        for key in ("ip", "id", "name"):
            if key in example:
                assert getattr(result, key) == example[key]


# A small seeded generator of JSON that conforms to a schema of the subset the specs use
# (type, possibly a list after nullable was folded in; properties; required; items;
# maxItems; enum; format ipv4; $ref; anyOf).

_STRINGS = ["", "x", "transactional_pool", "池", "a b/c?d#e", "12345", "Ünïcode ✓", "null",
            "0" * 80]


@attrs.define
class SchemaFaker:
    document: dict[str, Any]
    rng: random.Random
    keep: frozenset[str] = frozenset()
    """Property names always generated (even where the schema leaves them optional)."""

    def value(self, schema: Any) -> Any:
        schema = _resolve(self.document, schema)
        if "anyOf" in schema:
            return self.value(self.rng.choice(schema["anyOf"]))
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        kinds = schema.get("type", "object")
        kinds = kinds if isinstance(kinds, list) else [kinds]
        if "null" in kinds and self.rng.random() < 0.3:
            return None
        kind = self.rng.choice([k for k in kinds if k != "null"] or ["null"])
        return getattr(self, f"_{kind}")(schema)

    def _object(self, schema: dict[str, Any]) -> dict[str, Any]:
        required = set(schema.get("required", ())) | self.keep
        out = {
            name: self.value(sub) for name, sub in schema.get("properties", {}).items()
            if name in required or self.rng.random() < 0.5
        }
        if self.rng.random() < 0.3:  # the beta API may add fields at any time
            out[f"new_field_{self.rng.randrange(99)}"] = self.rng.choice(
                [1, "text", None, [1, {"a": 2}], {"nested": True}])
        return out

    def _array(self, schema: dict[str, Any]) -> list[Any]:
        high = min(schema.get("maxItems", 3), 3)
        low = schema.get("minItems", 0)
        return [self.value(schema.get("items", {})) for _ in range(self.rng.randint(low, high))]

    def _string(self, schema: dict[str, Any]) -> str:
        if schema.get("format") == "ipv4":
            return ".".join(str(self.rng.randrange(256)) for _ in range(4))
        return self.rng.choice(_STRINGS)

    def _integer(self, schema: dict[str, Any]) -> int:
        return self.rng.choice([0, 1, 2, 1664390835, 2**53, -1])

    def _number(self, schema: dict[str, Any]) -> float:
        return self.rng.choice([0.0, 1.5])

    def _boolean(self, schema: dict[str, Any]) -> bool:
        return self.rng.random() < 0.5

    def _null(self, schema: dict[str, Any]) -> None:
        return None


def _random_reply(operation_id: str, seed: int, keep: frozenset[str]) -> tuple[int, str]:
    status, media = _success(operation_id)
    if media is None:
        return status, ""
    name = SPEC_OPS[operation_id][3]
    faker = SchemaFaker(SPECS[name], random.Random(f"{operation_id}-{seed}"), keep)
    return status, json.dumps(faker.value(media["schema"]))


def _end_page(operation_id: str) -> str:
    if OPERATIONS[operation_id].paging == "offset":
        return json.dumps({"result": [], "pages": {}})
    return json.dumps({"result": [], "_metadata": {"next_params": {"after_key": None}}})


async def _serve_and_call(
    sg: SendGridIPAM, mock: RecordingResponses, operation_id: str, status: int, body: str
) -> Any:
    """Serve ``body`` to the operation's request (and its retries), an end page to the next.

    A random cursor is followed once, to a last page: a cursor must be usable, whatever it is.
    """
    op = OPS[operation_id]

    def reply(url: Any, **kwargs: Any) -> CallbackResult:
        follow_up = re.search(r"[?&](after_key|offset)=", str(url))
        served = _end_page(operation_id) if follow_up else _fit(operation_id, body, kwargs)
        return CallbackResult(status=status, body=served)

    serve_checks(mock, operation_id)
    mock.add(op.url_pattern, method=op.method, callback=reply, repeat=True)
    return await op.invoke(sg)


SEEDS = range(12)
# The fields that say which IP or pool a reply is about, and a list's items. The IP Address
# Management spec marks no reply field required; see the strict test below for what the
# library does when these are missing too.
IDENTITY = frozenset({"ip", "id", "result"})


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("operation_id", list(OPS))
async def test_random_spec_replies_are_read_into_models(
    client: SendGridIPAM, mocked: RecordingResponses, operation_id: str, seed: int
) -> None:
    op = OPS[operation_id]
    status, body = _random_reply(operation_id, seed, IDENTITY)
    validate_response(op.method, op.url, status=status, body=body.encode(),
                      headers={"Content-Type": "application/json"} if body else {})
    result = await _serve_and_call(client, mocked, operation_id, status, body)
    _assert_models(operation_id, result)


@pytest.mark.parametrize(
    "operation_id", [op for op in OPS if _success(op)[1] is not None],
)
async def test_random_spec_replies_without_identity_fields_are_read(
    client: SendGridIPAM, mocked: RecordingResponses, operation_id: str
) -> None:
    """Strictly by the spec: a field it leaves optional may be missing, `ip` and `id` too.

    The IP Address Management spec marks no reply field required, so `{}` is a valid GetIp
    reply and a list reply may lack `result`.
    """
    op = OPS[operation_id]
    failures = []
    for seed in SEEDS:
        status, body = _random_reply(operation_id, 1000 + seed, frozenset())
        validate_response(op.method, op.url, status=status, body=body.encode(),
                          headers={"Content-Type": "application/json"})
        mocked.clear()
        try:
            result = await _serve_and_call(client, mocked, operation_id, status, body)
        except SendGridError as exc:
            failures.append(f"{body} -> {type(exc).__name__}: {exc}")
        else:
            _assert_models(operation_id, result)
    assert failures == []
