"""OpenTelemetry, checked with the SDK's in-memory span exporter and metric reader: a span
per operation call whose attempt, retry and reconcile events match what the fake SendGrid
received, metrics that add up to the same, and the key nowhere."""

from __future__ import annotations

import collections
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

pytest.importorskip("opentelemetry.sdk", reason='needs opentelemetry-sdk (the test extra)')

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from sendgrid_ipam import (
    ConfigurationError,
    ProvisionRequest,
    RetryPolicy,
    SendGridIPAM,
    ServerError,
)
from sendgrid_ipam.testing import FakeSendGrid, Fault, FaultRates

KEY = "SG.otel-secret-key-Zx81Pq0Lw"
FAST = RetryPolicy(max_attempts=6, initial_backoff=0.01, max_backoff=0.02, settle=0.02)
ACCOUNTS = [f"acct-{n:02d}" for n in range(1, 13)]


class Telemetry:
    """An SDK tracer provider and meter provider that keep everything in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self) -> list[ReadableSpan]:
        return sorted(self.exporter.get_finished_spans(), key=lambda s: s.start_time or 0)

    def points(self) -> Iterator[tuple[str, Any]]:
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        yield metric.name, point

    def total(self, name: str) -> int:
        return sum(p.count if hasattr(p, "count") else p.value
                   for n, p in self.points() if n == name)


@pytest.fixture
def otel() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()


@pytest.fixture
async def fake() -> AsyncIterator[FakeSendGrid]:
    async with FakeSendGrid(api_key=KEY, accounts=ACCOUNTS, seed=5) as server:
        yield server


def _client(fake: FakeSendGrid, otel: Telemetry) -> SendGridIPAM:
    return SendGridIPAM(KEY, base_url=fake.url, retry=FAST,
                        tracer_provider=otel.tracer_provider, meter_provider=otel.meter_provider)


def _events(span: ReadableSpan, name: str) -> list[dict[str, Any]]:
    return [dict(e.attributes or {}) for e in span.events if e.name == name]


def _account(span: ReadableSpan) -> str:
    return str((span.attributes or {})["url.full"]).split("/accounts/")[1].split("/")[0]


async def test_a_bulk_run_through_faults_is_one_span_per_call_matching_the_fakes_log(
    fake: FakeSendGrid, otel: Telemetry
) -> None:
    fake.faults = FaultRates(error=0.08, applied_error=0.08, applied_drop=0.06)
    # Besides the random faults, one of each kind of ambiguous write failure for certain.
    fake.script("AddAccountIps", Fault.error(503), account_id="acct-01")
    fake.script("AddAccountIps", Fault.applied_error(502), account_id="acct-02")
    async with _client(fake, otel) as sg:
        result = await sg.provisioning.bulk_add_ips(
            [ProvisionRequest(a, 12, "us") for a in ACCOUNTS], concurrency=6, audit_delay=0.05)
    assert result.failed == ()
    assert result.retries > 0
    assert result.reconciled > 0
    spans = otel.spans()

    # One span per operation call: each AddAccountIps request of the run is one span, and
    # every request the fake received is an `attempt` event of exactly one span.
    writes = [s for s in spans if (s.attributes or {})["sendgrid.operation_id"] == "AddAccountIps"]
    assert len(writes) == sum(r.requests for r in result.results)
    assert sum(len(_events(s, "attempt")) for s in spans) == len(fake.log)
    for span in spans:
        attempts = [e["sendgrid.attempt"] for e in _events(span, "attempt")]
        assert attempts, span.name  # every call sent something
        assert attempts == sorted(set(attempts))
        assert attempts[0] == 1
        assert span.kind is SpanKind.CLIENT
        assert span.name == f"{span.attributes['http.request.method']} "  \
            f"{span.attributes['url.template']}"  # type: ignore[index]

    # Per account every request is serial (the write lease): the attempts of its spans, in
    # time order, are what the fake received for that account, in order.
    attempts_by_account: dict[str, list[tuple[int, str, int | None]]] = \
        collections.defaultdict(list)
    for span in spans:
        for event in span.events:
            if event.name == "attempt":
                attributes = event.attributes or {}
                attempts_by_account[_account(span)].append((
                    event.timestamp, str((span.attributes or {})["sendgrid.operation_id"]),
                    attributes.get("http.response.status_code")))
    for account in ACCOUNTS:
        seen = [(op, status) for _, op, status in sorted(attempts_by_account[account])]
        assert seen == [(r.operation_id, r.status) for r in fake.log if r.account_id == account]

    # Reconcile events: each applied fault on a write was found to have taken effect, each
    # other ambiguous failure of a write was found to have taken none.
    outcomes = collections.Counter(
        e["sendgrid.outcome"] for s in spans for e in _events(s, "reconcile"))
    failed_writes = [r for r in fake.log if r.operation_id == "AddAccountIps"
                     and (r.status is None or r.status >= 500)]
    assert outcomes["took effect"] == sum(r.applied for r in failed_writes) > 0
    assert outcomes["no effect"] == sum(not r.applied for r in failed_writes) > 0
    assert all(s.attributes["sendgrid.operation_id"] == "AddAccountIps"  # type: ignore[index]
               for s in spans if _events(s, "reconcile"))
    # The checks' reads are children of the write's span.
    by_id = {s.context.span_id: s for s in spans}  # type: ignore[union-attr]
    for span in writes:
        if _events(span, "reconcile"):
            assert any(s.parent is not None and by_id.get(s.parent.span_id) is span
                       for s in spans)

    # Retry events: numbered from 1 in each span, each naming the failure of its attempt,
    # with the wait that came before the next one.
    retries = 0
    for span in spans:
        failures = {e["sendgrid.attempt"]: e.get("error.type") for e in _events(span, "attempt")}
        numbers = [e["sendgrid.attempt"] for e in _events(span, "retry")]
        assert numbers == list(range(1, len(numbers) + 1))
        for event in _events(span, "retry"):
            retries += 1
            assert event["sendgrid.wait"] >= 0
            if event["sendgrid.attempt"] in failures:
                assert event["error.type"] == failures[event["sendgrid.attempt"]]
    assert retries > 0

    # Metrics add up to the same.
    assert otel.total("http.client.request.duration") == len(fake.log)
    assert otel.total("sendgrid_ipam.retries") == retries
    assert otel.total("sendgrid_ipam.reconciliations") == sum(outcomes.values())
    assert otel.total("sendgrid_ipam.rate_limited") == sum(r.status == 429 for r in fake.log)

    _assert_no_secret(otel, spans)


def _assert_no_secret(otel: Telemetry, spans: list[ReadableSpan]) -> None:
    secret = KEY.removeprefix("SG.")
    pieces = {secret[i:i + 6] for i in range(len(secret) - 5)}
    texts = []
    for span in spans:
        texts += [span.name, repr(dict(span.attributes or {})), span.status.description or ""]
        texts += [f"{e.name} {dict(e.attributes or {})!r}" for e in span.events]
    for name, point in otel.points():
        texts.append(f"{name} {dict(point.attributes)!r}")
        # No account id (nor any path) in a metric's attributes: cardinality.
        assert not any(a in repr(dict(point.attributes)) for a in ACCOUNTS)
        assert "url.full" not in point.attributes
    assert texts
    for text in texts:
        assert not any(piece in text for piece in pieces), text


async def test_a_failed_call_is_an_error_span(fake: FakeSendGrid, otel: Telemetry) -> None:
    fake.script("ListIpPool", Fault.error(500), times=2)
    async with SendGridIPAM(KEY, base_url=fake.url, tracer_provider=otel.tracer_provider,
                            retry=RetryPolicy(max_attempts=2, initial_backoff=0.01)) as sg:
        with pytest.raises(ServerError):
            [pool async for pool in sg.pools.list()]
    [span] = otel.spans()
    assert span.name == "GET /v3/send_ips/pools"
    assert span.status.status_code is StatusCode.ERROR
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == "500"
    assert attributes["http.response.status_code"] == 500
    assert attributes["http.request.resend_count"] == 1
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == int(fake.url.rsplit(":", 1)[1])
    assert attributes["url.template"] == "/v3/send_ips/pools"
    assert [e.name for e in span.events] == ["attempt", "retry", "attempt"]
    _assert_no_secret(otel, [span])


async def test_only_what_was_given_is_on(fake: FakeSendGrid, otel: Telemetry) -> None:
    async with SendGridIPAM(KEY, base_url=fake.url, meter_provider=otel.meter_provider) as sg:
        [pool async for pool in sg.pools.list()]
    assert otel.spans() == []
    assert otel.total("http.client.request.duration") == 1


async def test_an_audit_counts_its_excess(fake: FakeSendGrid, otel: Telemetry) -> None:
    fake.script("AddAccountIps", Fault.late(504, delay=0.1))
    async with _client(fake, otel) as sg:
        result = await sg.provisioning.bulk_add_ips(
            [ProvisionRequest("acct-01", 2, "us")], audit_delay=0.3)
    assert len(result.results[0].excess) == 2
    assert otel.total("sendgrid_ipam.audit.excess") == 2


def test_telemetry_without_opentelemetry_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)  # as if not installed
    with pytest.raises(ConfigurationError, match=r'pip install "sendgrid-ipam\[otel\]"'):
        SendGridIPAM(KEY, telemetry=True)


def test_a_client_without_telemetry_never_imports_opentelemetry() -> None:
    code = ("import sys, sendgrid_ipam; sendgrid_ipam.SendGridIPAM('SG.k', on_request=print); "
            "print(sorted(m for m in sys.modules if m.startswith('opentelemetry')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
