"""OpenTelemetry for sendgrid-ipam: a span per operation call, and metrics (optional).

Install with ``pip install "sendgrid-ipam[otel]"`` (opentelemetry-api) and turn it on with
``SendGridIPAM(tracer_provider=..., meter_provider=...)``, or ``telemetry=True`` for the
global providers. It is off otherwise, and then costs nothing.

Each call of an operation (each page of a listing) is one span of kind CLIENT, named as the
HTTP client conventions say: ``"POST /v3/partners/accounts/{account_id}/ips"``. Its
attributes: ``http.request.method``, ``server.address``, ``server.port``, ``url.full``,
``url.template``, ``sendgrid.operation_id`` and, once it ends, ``http.response.status_code``
(of the last reply), ``http.request.resend_count`` and, if it failed, ``error.type`` (the
status of an error reply, else the error's class name) with the span's status ERROR. Its
events, in order: ``attempt`` (each request: ``sendgrid.attempt``, the status or
``error.type``, ``sendgrid.duration``), ``retry`` (``sendgrid.attempt`` that failed,
``sendgrid.wait`` before the next, ``error.type``), ``reconcile`` (``sendgrid.attempt``,
``sendgrid.outcome``: "took effect", "no effect" or "unknown"), and ``wait`` (``sendgrid.wait``
seconds for ``sendgrid.waited_for``: "gate", "slot", "lease" or "settle"). The reads a
reconciliation makes are spans of their own, children of the write's span.

Metrics (no account id, no path, no key in any attribute):
``http.client.request.duration`` (histogram, seconds, per request), ``sendgrid_ipam.retries``,
``sendgrid_ipam.reconciliations`` (by ``sendgrid.outcome``), ``sendgrid_ipam.rate_limited``
(429 replies) and ``sendgrid_ipam.audit.excess`` (IPs an audit found that no call reported).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._observe import error_type
from ._version import __version__
from .errors import ConfigurationError

if TYPE_CHECKING:
    from yarl import URL

    from .hooks import RequestEvent, ResponseEvent
    from .operations import Operation

__all__ = ["Telemetry"]

_NAME = "sendgrid_ipam"
# The conventions' advisory buckets for http.client.request.duration (seconds).
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)


def _api() -> Any:
    try:
        import opentelemetry.context
        import opentelemetry.metrics
        import opentelemetry.trace
    except ImportError:
        raise ConfigurationError(
            'telemetry needs OpenTelemetry: pip install "sendgrid-ipam[otel]"') from None
    return opentelemetry


class Telemetry:
    """Spans and metrics from the engine's events (a sink of ``_observe.Observer``).

    Built by `SendGridIPAM` when telemetry is turned on; not constructed by users.

    Args:
        tracer_provider: where spans go (None: no spans, unless ``use_global``).
        meter_provider: where metrics go (None: no metrics, unless ``use_global``).
        use_global: take the global provider for whichever is not given.

    Raises:
        ConfigurationError: opentelemetry-api is not installed.
    """

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None,
                 *, use_global: bool = False) -> None:
        self.otel: Any = _api()
        otel = self.otel
        trace, metrics = otel.trace, otel.metrics
        self.tracer: Any = None
        if tracer_provider is not None or use_global:
            self.tracer = trace.get_tracer(_NAME, __version__, tracer_provider=tracer_provider)
        self.duration: Any = None
        self.retries: Any = None
        self.reconciliations: Any = None
        self.rate_limited: Any = None
        self.audit_excess: Any = None
        if meter_provider is not None or use_global:
            meter = metrics.get_meter(_NAME, __version__, meter_provider=meter_provider)
            self.duration = meter.create_histogram(
                "http.client.request.duration", unit="s",
                description="Duration of HTTP client requests.",
                explicit_bucket_boundaries_advisory=list(_BUCKETS))
            self.retries = meter.create_counter(
                "sendgrid_ipam.retries", unit="{retry}", description="Attempts retried.")
            self.reconciliations = meter.create_counter(
                "sendgrid_ipam.reconciliations", unit="{check}",
                description="Checks of whether a failed write took effect.")
            self.rate_limited = meter.create_counter(
                "sendgrid_ipam.rate_limited", unit="{reply}", description="429 replies.")
            self.audit_excess = meter.create_counter(
                "sendgrid_ipam.audit.excess", unit="{ip}",
                description="IPs an audit found that no call reported (late writes).")

    def start(self, op: Operation, url: URL) -> _CallTelemetry:
        """A call begins: its span (if tracing), made the current span while it runs."""
        return _CallTelemetry(self, op, url)

    def excess(self, count: int) -> None:
        """Count IPs an audit found that no call reported."""
        if self.audit_excess is not None and count:
            self.audit_excess.add(count)


class _CallTelemetry:
    """One call's span and metric attributes."""

    __slots__ = ("attempts", "metric_attributes", "span", "status", "telemetry", "token")

    def __init__(self, telemetry: Telemetry, op: Operation, url: URL) -> None:
        self.telemetry: Telemetry = telemetry
        common: dict[str, str | int] = {
            "http.request.method": op.method,
            "server.address": url.host or "",
            "server.port": url.port or 443,
            "url.template": op.path,
            "sendgrid.operation_id": op.operation_id,
        }
        self.metric_attributes: dict[str, str | int] = common
        self.status: int | None = None
        self.attempts: int = 0
        self.span: Any = None
        self.token: Any = None
        if telemetry.tracer is not None:
            otel = telemetry.otel
            # url.full carries the account id: fine on a span, never on a metric.
            self.span = telemetry.tracer.start_span(
                f"{op.method} {op.path}", kind=otel.trace.SpanKind.CLIENT,
                attributes={**common, "url.full": str(url.with_query(None))})
            self.token = otel.context.attach(otel.trace.set_span_in_context(self.span))

    def request(self, event: RequestEvent) -> None:
        """Nothing until it ends (the ``attempt`` event carries the request too)."""

    def response(self, event: ResponseEvent) -> None:
        """An ``attempt`` event, and the request's duration."""
        self.attempts += 1
        if event.status is not None:
            self.status = event.status
        outcome: dict[str, Any] = {}
        if event.status is not None:
            outcome["http.response.status_code"] = event.status
        if event.error_type is not None:
            outcome["error.type"] = (str(event.status) if event.status and event.status >= 400
                                     else event.error_type)
        if self.span is not None:
            self.span.add_event("attempt", {
                "sendgrid.attempt": event.attempt, "sendgrid.duration": event.duration,
                **outcome})
        telemetry = self.telemetry
        if telemetry.duration is not None:
            telemetry.duration.record(event.duration, {**self.metric_attributes, **outcome})
        if event.status == 429 and telemetry.rate_limited is not None:
            telemetry.rate_limited.add(1, self.metric_attributes)

    def retry(self, attempt: int, wait: float, error: str) -> None:
        """A ``retry`` event, and one more retry counted."""
        if self.span is not None:
            self.span.add_event("retry", {
                "sendgrid.attempt": attempt, "sendgrid.wait": wait, "error.type": error})
        if self.telemetry.retries is not None:
            self.telemetry.retries.add(1, {**self.metric_attributes, "error.type": error})

    def reconcile(self, attempt: int, outcome: str) -> None:
        """A ``reconcile`` event, and one more check counted."""
        if self.span is not None:
            self.span.add_event("reconcile", {
                "sendgrid.attempt": attempt, "sendgrid.outcome": outcome})
        if self.telemetry.reconciliations is not None:
            self.telemetry.reconciliations.add(
                1, {**self.metric_attributes, "sendgrid.outcome": outcome})

    def waited(self, what: str, seconds: float) -> None:
        """A ``wait`` event."""
        if self.span is not None:
            self.span.add_event("wait", {"sendgrid.waited_for": what, "sendgrid.wait": seconds})

    def end(self, error: BaseException | None) -> None:
        """End the span: the last status, the resends, and what failed (never a message:
        the class name or status only)."""
        span = self.span
        if span is None:
            return
        otel = self.telemetry.otel
        try:
            if self.attempts > 1:
                span.set_attribute("http.request.resend_count", self.attempts - 1)
            if self.status is not None:
                span.set_attribute("http.response.status_code", self.status)
            if error is not None:
                kind = error_type(error)
                span.set_attribute("error.type", kind)
                span.set_status(otel.trace.Status(otel.trace.StatusCode.ERROR, kind))
            span.end()
        finally:
            otel.context.detach(self.token)
