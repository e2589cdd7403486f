"""tests/openapi_support.py itself: it accepts what the specs allow and rejects the rest."""

from __future__ import annotations

import json

import pytest

from tests.openapi_support import (
    SpecViolation,
    documented_statuses,
    load_spec,
    operation_id,
    validate_request,
    validate_response,
)

BASE = "http://127.0.0.1:4010"
AUTH = {"Authorization": "Bearer SG.test"}


def test_nullable_becomes_a_null_union_everywhere() -> None:
    for name in ("ipam", "provisioning"):
        assert '"nullable"' not in json.dumps(load_spec(name))
    ipam = load_spec("ipam")
    schema = ipam["paths"]["/v3/send_ips/ips/{ip}"]["get"]["responses"]["200"]["content"]
    assert schema["application/json"]["schema"]["properties"]["updated_at"]["type"] == [
        "integer",
        "null",
    ]


def test_the_specs_own_example_validates_once_normalised() -> None:
    ipam = load_spec("ipam")
    content = ipam["paths"]["/v3/send_ips/ips/{ip}"]["get"]["responses"]["200"]["content"]
    example = content["application/json"]["examples"]["200"]["value"]
    validate_response(
        "GET", f"{BASE}/v3/send_ips/ips/127.0.0.1", status=200, body=json.dumps(example).encode()
    )


def test_operation_level_servers_accept_the_loopback_url() -> None:
    validate_request(
        "POST",
        f"{BASE}/v3/send_ips/ips/192.0.2.1/subusers:batchAdd",
        headers=AUTH,
        body=b'{"subusers": ["1"]}',
    )


def test_a_wrong_body_is_a_violation_naming_the_field() -> None:
    with pytest.raises(SpecViolation, match="count"):
        validate_request(
            "POST",
            f"{BASE}/v3/partners/accounts/a/ips",
            headers=AUTH,
            body=b'{"count": 11, "region": "us"}',
        )
    with pytest.raises(SpecViolation, match="not of type 'array'"):
        validate_response(
            "GET", f"{BASE}/v3/partners/accounts/a/ips", status=200, body=b'{"result": 1}'
        )


def test_a_request_without_bearer_auth_is_a_violation() -> None:
    with pytest.raises(SpecViolation, match="Security"):
        validate_request("GET", f"{BASE}/v3/send_ips/pools")


def test_an_undocumented_status_is_a_violation() -> None:
    assert 429 not in documented_statuses("GET", f"{BASE}/v3/send_ips/pools")
    with pytest.raises(SpecViolation, match="429"):
        validate_response("GET", f"{BASE}/v3/send_ips/pools", status=429, body=b"{}")


def test_a_percent_encoded_colon_matches_no_operation() -> None:
    assert operation_id("POST", f"{BASE}/v3/send_ips/pools/1/ips:batchAdd") == "AddIpsToIpPool"
    with pytest.raises(SpecViolation, match="no such operation"):
        operation_id("POST", f"{BASE}/v3/send_ips/pools/1/ips%3AbatchAdd")
