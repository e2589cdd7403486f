"""One DEBUG line per HTTP request on the ``sendgrid_ipam`` logger: method, path, status (or
what failed), attempt number and duration, for retries and reconciliation reads alike, and
never the key. Checked against the fake SendGrid's own log of what it received."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable

import pytest

from sendgrid_ipam import RetryPolicy, SendGridIPAM
from sendgrid_ipam.testing import FakeSendGrid, Fault

KEY = "SG.request-log-key-Hq83nZ"
FAST = RetryPolicy(initial_backoff=0.01, max_backoff=0.02, settle=0.02)
LINE = re.compile(r"^(GET|POST|PUT|PATCH|DELETE) (/v3/\S+) -> (\d{3}|[A-Za-z]+Error) "
                  r"\(attempt (\d+), (\d+\.\d) ms\)$")


@pytest.fixture
async def fake() -> AsyncIterator[FakeSendGrid]:
    async with FakeSendGrid(api_key=KEY, accounts=["acct-1"]) as server:
        yield server


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[str, str, str, int]]:
    """(method, path, outcome, attempt) of each per-request record, checked for shape."""
    lines = []
    for record in caplog.records:
        if getattr(record, "sendgrid_ipam_event", None) != "request":
            continue
        assert record.levelno == logging.DEBUG
        message = record.getMessage()
        assert KEY not in message
        assert KEY not in repr(vars(record))
        match = LINE.match(message)
        assert match, message
        method, path, outcome, attempt, _ = match.groups()
        assert (record.method, record.path, str(record.status), record.attempt) == (  # type: ignore[attr-defined]
            method, path, outcome, int(attempt))
        assert record.duration >= 0  # type: ignore[attr-defined]
        lines.append((method, path, outcome, int(attempt)))
    return lines


def _received(fake: FakeSendGrid) -> list[tuple[str, str, str]]:
    return [(r.method, r.path, str(r.status)) for r in fake.records()]


READS = {
    "a retried read": ("ListIp", Fault.error(503), lambda sg: sg.ips.list(), [
        ("GET", "/v3/send_ips/ips", "503", 1),
        ("GET", "/v3/send_ips/ips", "200", 2),
    ]),
    "a dropped connection": ("ListIpPool", Fault.drop(), lambda sg: sg.pools.list(), [
        ("GET", "/v3/send_ips/pools", "TransportError", 1),  # what failed, as no status came
        ("GET", "/v3/send_ips/pools", "200", 2),
    ]),
}


@pytest.mark.parametrize(("operation", "fault", "listing", "expected"), READS.values(),
                         ids=READS.keys())
async def test_each_attempt_of_a_read_is_one_line(
    fake: FakeSendGrid, caplog: pytest.LogCaptureFixture, operation: str, fault: Fault,
    listing: Callable[[SendGridIPAM], AsyncIterator[object]],
    expected: list[tuple[str, str, str, int]],
) -> None:
    caplog.set_level(logging.DEBUG, logger="sendgrid_ipam")
    fake.script(operation, fault)
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
        [item async for item in listing(sg)]
    assert _request_lines(caplog) == expected


async def test_a_reconciled_write_logs_its_checks_too(
    fake: FakeSendGrid, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sendgrid_ipam")
    fake.script("AddAccountIps", Fault.applied_error(502))
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
        added = await sg.provisioning.add_ips("acct-1", count=2, region="us")
    assert added.reconciled
    lines = _request_lines(caplog)
    assert [(m, p, o) for m, p, o, _ in lines] == _received(fake)
    path = "/v3/partners/accounts/acct-1/ips"
    assert [line[:3] for line in lines] == [
        ("GET", path, "200"),  # the newest IP, noted before writing
        ("POST", path, "502"),
        ("GET", path, "200"),  # the check: it took effect
    ]


async def test_no_request_line_below_debug(
    fake: FakeSendGrid, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sendgrid_ipam")
    fake.script("ListIp", Fault.error(503))
    async with SendGridIPAM(KEY, base_url=fake.url, retry=FAST) as sg:
        [ip async for ip in sg.ips.list()]
    assert [r for r in caplog.records if getattr(r, "sendgrid_ipam_event", None) == "request"
            ] == []
    assert [getattr(r, "sendgrid_ipam_event", None) for r in caplog.records] == ["retry"]
