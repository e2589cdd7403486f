"""Hostile input: always a `ValidationError` naming the field, before anything is sent.

A lone surrogate has no UTF-8 form, ``10**5000`` no decimal form Python will write, and an
IPv6 zone id names no IP the API knows. The rule lives in the shared encoder and text
validator, so every operation's text and id inputs are tried here.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from sendgrid_ipam import (
    AmbiguousResultError,
    ProvisionRequest,
    SendGridIPAM,
    ValidationError,
    _wire,
)
from sendgrid_ipam._text import shown
from sendgrid_ipam.models import check_ip
from sendgrid_ipam.operations import Paging
from sendgrid_ipam.pagination import page_reader
from tests.conftest import IP, POOL_ID, RecordingResponses

ACCOUNT = "acct"
SURROGATE = "\ud800"
HUGE = 10**5000
Call = Callable[[SendGridIPAM, Any], Any]

# (field, how a user passes the bad value) for every text or id input of every operation
INPUTS: dict[str, tuple[str, Call]] = {
    "GetIp ip": ("ip", lambda sg, v: sg.ips.get(v)),
    "UpdateIp ip": ("ip", lambda sg, v: sg.ips.update(v, is_enabled=True)),
    "ListSubUserAssignedToIp ip": ("ip", lambda sg, v: sg.ips.list_subusers(v)),
    "AddSubUsersToIp ip": ("ip", lambda sg, v: sg.ips.add_subusers(v, ["1"])),
    "AddSubUsersToIp subuser": ("subusers", lambda sg, v: sg.ips.add_subusers(IP, [v])),
    "DeleteSubUsersFromIp subuser": ("subusers", lambda sg, v: sg.ips.remove_subusers(IP, [v])),
    "AddIp subuser": ("subusers", lambda sg, v: sg.ips.add(
        is_auto_warmup=True, is_parent_assigned=False, subusers=[v])),
    "ListIp ip": ("ip", lambda sg, v: sg.ips.list(ip=v)),
    "ListIp pool": ("pool", lambda sg, v: sg.ips.list(pool=v)),
    "ListIpPool ip": ("ip", lambda sg, v: sg.pools.list(ip=v)),
    "CreateIpPool name": ("name", lambda sg, v: sg.pools.create(f"p{v}")),
    "CreateIpPool ip": ("ips", lambda sg, v: sg.pools.create("pool", ips=[v])),
    "UpdateIpPool name": ("name", lambda sg, v: sg.pools.rename(POOL_ID, f"p{v}")),
    "GetIpPool id": ("poolid", lambda sg, v: sg.pools.get(v)),
    "UpdateIpPool id": ("poolid", lambda sg, v: sg.pools.rename(v, "pool")),
    "DeleteIpPool id": ("poolid", lambda sg, v: sg.pools.delete(v)),
    "ListIpAssignedToIpPool id": ("poolid", lambda sg, v: sg.pools.list_ips(v)),
    "AddIpsToIpPool id": ("poolid", lambda sg, v: sg.pools.add_ips(v, [IP])),
    "AddIpsToIpPool ip": ("ips", lambda sg, v: sg.pools.add_ips(POOL_ID, [v])),
    "DeleteIpsFromIpPool ip": ("ips", lambda sg, v: sg.pools.remove_ips(POOL_ID, [v])),
    "AddAccountIps account": ("account_id", lambda sg, v: sg.provisioning.add_ips(
        v, count=1, region="us")),
    "ListAccountIps account": ("account_id", lambda sg, v: sg.provisioning.list_ips(v)),
    "RemoveAccountIps account": ("account_id", lambda sg, v: sg.provisioning.remove_ips(
        v, ips=["192.0.2.1"])),
    "RemoveAccountIps ip": ("ips", lambda sg, v: sg.provisioning.remove_ips(ACCOUNT, ips=[v])),
    "on_behalf_of": ("on_behalf_of", lambda sg, v: sg.pools.get(POOL_ID, on_behalf_of=v)),
}
# Where a value can be an int (ids, numbers), 10**5000 must be refused the same way.
HUGE_INPUTS = {
    name: case for name, case in INPUTS.items()
    if case[0] in ("ip", "ips", "pool", "poolid", "subusers")
}
NUMBERS: dict[str, tuple[str, Call]] = {
    "AddAccountIps count": ("count", lambda sg, v: sg.provisioning.add_ips(
        ACCOUNT, count=v, region="us")),
    "ListIp limit": ("limit", lambda sg, v: sg.ips.list(limit=v)),
    "ListIp start_added_at": ("start_added_at", lambda sg, v: sg.ips.list(start_added_at=v)),
    "ListIp end_added_at": ("end_added_at", lambda sg, v: sg.ips.list(end_added_at=v)),
    "ListIpPool limit": ("limit", lambda sg, v: sg.pools.list(limit=v)),
    "ListAccountIps limit": ("limit", lambda sg, v: sg.provisioning.list_ips(ACCOUNT, limit=v)),
}
ZONE_IDS = ["fe80::1%eth0", "fe80::1%25eth0", "fe80::1%1", "::1%lo", "192.0.2.1%eth0"]
IP_INPUTS = {name: case for name, case in INPUTS.items() if case[0] in ("ip", "ips")}


async def run(sg: SendGridIPAM, call: Call, value: Any) -> None:
    """Make the call; list calls are iterated."""
    result = call(sg, value)
    if inspect.isawaitable(result):
        await result
    else:
        async for _ in result:
            pass


async def refused(sg: SendGridIPAM, mocked: RecordingResponses, call: Call, value: Any) -> Any:
    """The ValidationError the call raises; nothing was sent."""
    with pytest.raises(ValidationError) as info:
        await run(sg, call, value)
    assert mocked.sent == []
    str(info.value).encode()  # the message itself can be printed
    return info.value


@pytest.mark.parametrize(("field", "call"), INPUTS.values(), ids=INPUTS.keys())
async def test_a_lone_surrogate_is_a_validation_error(
    client: SendGridIPAM, mocked: RecordingResponses, field: str, call: Call
) -> None:
    error = await refused(client, mocked, call, f"1{SURROGATE}")
    assert error.field == field


@pytest.mark.parametrize(("field", "call"), HUGE_INPUTS.values(), ids=HUGE_INPUTS.keys())
async def test_a_huge_int_id_is_a_validation_error(
    client: SendGridIPAM, mocked: RecordingResponses, field: str, call: Call
) -> None:
    error = await refused(client, mocked, call, HUGE)
    assert error.field == field
    assert len(str(error)) < 200


@pytest.mark.parametrize(("field", "call"), NUMBERS.values(), ids=NUMBERS.keys())
async def test_a_huge_number_is_a_validation_error(
    client: SendGridIPAM, mocked: RecordingResponses, field: str, call: Call
) -> None:
    error = await refused(client, mocked, call, HUGE)
    assert error.field == field
    assert len(str(error)) < 200


@pytest.mark.parametrize("zone", ZONE_IDS)
@pytest.mark.parametrize(("field", "call"), IP_INPUTS.values(), ids=IP_INPUTS.keys())
async def test_an_ip_with_a_zone_id_is_refused(
    client: SendGridIPAM, mocked: RecordingResponses, field: str, call: Call, zone: str
) -> None:
    error = await refused(client, mocked, call, zone)
    assert error.field == field


def test_bulk_requests_refuse_surrogates_and_huge_counts() -> None:
    with pytest.raises(ValidationError, match="account_id"):
        ProvisionRequest(f"a{SURROGATE}", 1, "us")
    with pytest.raises(ValidationError, match="count"):
        ProvisionRequest("acct", HUGE, "us")


# ---------------------------------------------------------------- the shared encoders


@pytest.mark.parametrize(
    "value", [SURROGATE, f"a{SURROGATE}b", "\udfff", HUGE, -HUGE],
    ids=["high", "inside", "low", "10**5000", "-10**5000"],
)
def test_encode_segment_names_the_field(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        _wire.encode_segment("poolid", value)
    assert info.value.field == "poolid"


@pytest.mark.parametrize(
    "value", [SURROGATE, f"10.0.0.1{SURROGATE}", HUGE], ids=["alone", "inside", "10**5000"]
)
def test_encode_query_names_the_parameter(value: object) -> None:
    with pytest.raises(ValidationError) as info:
        _wire.encode_query({"limit": 10, "after_key": value})
    assert info.value.field == "after_key"


@pytest.mark.parametrize(
    "body", [{"name": SURROGATE}, {SURROGATE: 1}, {"count": HUGE}], ids=["value", "key", "int"]
)
def test_dump_json_refuses_what_has_no_json_bytes(body: object) -> None:
    with pytest.raises(ValidationError):
        _wire.dump_json(body)


def test_valid_unicode_still_passes() -> None:
    assert _wire.encode_segment("poolid", "\U0001f600") == "%F0%9F%98%80"
    assert _wire.encode_query({"pool": "池"}) == "pool=%E6%B1%A0"
    assert _wire.encode_segment("poolid", 10**20) == str(10**20)


@pytest.mark.parametrize("ip", ["192.0.2.1", "2001:db8::1", "::ffff:192.0.2.1"])
def test_ips_without_a_zone_still_pass(ip: str) -> None:
    assert check_ip("ip", ip) == ip


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(HUGE, "an integer of 16610 bits"), (_BadRepr(), "a _BadRepr that cannot be shown"),
     ("x" * 1000, repr("x" * 79)[:-1] + "..."), (12, "12"), (SURROGATE, "'\\ud800'")],
    ids=["huge int", "bad repr", "long text", "int", "surrogate"],
)
def test_shown_values_are_short_and_never_raise(value: object, expected: str) -> None:
    assert shown(value) == expected
    assert len(shown(value)) <= 83


# ---------------------------------------------------------------- cursors from the server


@pytest.mark.parametrize(
    ("paging", "data"),
    [
        ("after_key", {"_metadata": {"next_params": {"after_key": "k" * 5_000}}}),
        ("after_key", {"_metadata": {"next_params": {"after_key": SURROGATE}}}),
        ("after_key", {"_metadata": {"after_key": 1.5}}),
        ("after_key", {"_metadata": {"after_key": {"a": [[[]]]}}}),
        ("offset", {"pages": {"last": "1" * 5_000}}),
        ("offset", {"pages": {"last": f"10.0.0.1{SURROGATE}"}}),
        ("offset", {"pages": {"last": True}}),
    ],
    ids=["long key", "surrogate key", "float key", "object key", "long last",
         "surrogate last", "bool last"],
)
def test_a_cursor_that_cannot_be_sent_back_is_refused(paging: Paging, data: Any) -> None:
    read = page_reader(paging, lambda item: item, page_size=1)
    with pytest.raises(TypeError):  # the client reports it as a DecodeError of the reply
        read({"result": [{"ip": "10.0.0.1"}], **data})


def test_a_numeric_cursor_is_its_digits() -> None:
    read = page_reader("after_key", lambda item: item, page_size=1)
    assert read({"_metadata": {"after_key": 10**40}}).next_cursor == str(10**40)


# ---------------------------------------------------------------- types a user sees


def test_ambiguous_result_found_is_a_tuple_of_ip_strings() -> None:
    assert typing.get_type_hints(AmbiguousResultError)["found"] == tuple[str, ...]
    error = AmbiguousResultError("maybe", found=(ip for ip in ["192.0.2.1", "192.0.2.2"]))
    assert error.found == ("192.0.2.1", "192.0.2.2")
    assert AmbiguousResultError("maybe").found == ()
