"""The engine's one way of being observed: an `Observer`, present only when something is on.

The engine holds ``observer = None`` unless the client was given hooks or telemetry, so with
nothing turned on the request path pays one ``is not None`` test at each point below and
builds nothing. When it is on, each call gets a `Call`; the engine reports to it what the
call goes through (each request and its end, retry waits, waits at the gate, for a slot or
for a write lease, reconciliations, the call's end), and the `Call` builds each event once
and hands it to every sink: the user's hooks (`HookSink`) and OpenTelemetry (``otel.py``)
consume the same events. A sink that raises is logged and ignored.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from .errors import APIError, ConfigurationError, SendGridError, ValidationError
from .hooks import RequestEvent, RequestHook, ResponseEvent, ResponseHook
from .ratelimit import RateLimit
from .retry import logger

if TYPE_CHECKING:
    from .operations import Operation

__all__ = ["Call", "CallSink", "HookSink", "Observer", "Sink", "check_hook", "error_type"]

_NO_HEADERS: Mapping[str, str] = CIMultiDictProxy(CIMultiDict())


class EngineState(Protocol):
    """What a `Call` reads of the engine (``engine/state.py``, which imports this module)."""

    clock: Callable[[], float]
    wall_clock: Callable[[], float]

    def scrub_headers(self, headers: Mapping[str, str]) -> Mapping[str, str]:
        """A reply's headers with the API key redacted."""


def error_type(error: BaseException) -> str:
    """What failed, as OpenTelemetry's ``error.type`` wants it: an error reply's status, or
    the class name of what ended the attempt without one."""
    if isinstance(error, APIError):
        return str(error.status)
    return type(error).__name__


def check_hook(name: str, hook: object, error: type[Exception] = ConfigurationError) -> None:
    """Refuse a hook that is not a plain callable (hooks are called, never awaited)."""
    if not callable(hook):
        raise _error(error, name, f"must be callable, not {type(hook).__name__}")
    if inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(
            getattr(hook, "__call__", None)):  # noqa: B004 (an object whose __call__ is async)
        raise _error(error, name, "must be a plain function: hooks are called inline, never "
                                  "awaited (hand slow work to a queue or a task)")


def _error(error: type[Exception], name: str, rule: str) -> Exception:
    if error is ValidationError:
        return ValidationError(name, rule)
    return error(f"{name} {rule}")


class CallSink(Protocol):
    """What one consumer does with the events of one call."""

    def request(self, event: RequestEvent) -> None:
        """A request is about to be sent."""

    def response(self, event: ResponseEvent) -> None:
        """A request ended (answered or failed)."""

    def retry(self, attempt: int, wait: float, error: str) -> None:
        """Attempt ``attempt`` failed with ``error`` (`error_type`); the next one comes
        after ``wait`` seconds (reported when it starts)."""

    def reconcile(self, attempt: int, outcome: str) -> None:
        """A check after attempt ``attempt`` found: "took effect", "no effect", "unknown"."""

    def waited(self, what: str, seconds: float) -> None:
        """The call waited ``seconds`` for ``what``: "gate", "slot", "lease" or "settle"."""

    def end(self, error: BaseException | None) -> None:
        """The call ended: with its result (None) or raising ``error``."""


class Sink(Protocol):
    """A consumer of the engine's events: one `CallSink` per call (None: not this call)."""

    def start(self, op: Operation, url: URL) -> CallSink | None:
        """A call of ``op`` to ``url`` begins."""

    def excess(self, count: int) -> None:
        """An audit found ``count`` IPs that no call reported (bought by a late write)."""


class HookSink:
    """The user's ``on_request`` / ``on_response`` hooks, as a sink (the same for every call)."""

    __slots__ = ("on_request", "on_response")

    def __init__(self, on_request: RequestHook | None, on_response: ResponseHook | None) -> None:
        self.on_request = on_request
        self.on_response = on_response

    def start(self, op: Operation, url: URL) -> CallSink:
        """Hooks keep no state per call: the sink is its own call sink."""
        return self

    def excess(self, count: int) -> None:
        """Hooks see requests only."""

    def request(self, event: RequestEvent) -> None:
        """Pass the event to ``on_request``."""
        if self.on_request is not None:
            self.on_request(event)

    def response(self, event: ResponseEvent) -> None:
        """Pass the event to ``on_response``."""
        if self.on_response is not None:
            self.on_response(event)

    def retry(self, attempt: int, wait: float, error: str) -> None:
        """Hooks see requests only."""

    def reconcile(self, attempt: int, outcome: str) -> None:
        """Hooks see requests only."""

    def waited(self, what: str, seconds: float) -> None:
        """Hooks see requests only."""

    def end(self, error: BaseException | None) -> None:
        """Hooks see requests only."""


class Observer:
    """The sinks the engine reports to; held by the engine only when there is one."""

    __slots__ = ("sinks",)

    def __init__(self, sinks: tuple[Sink, ...]) -> None:
        self.sinks: tuple[Sink, ...] = sinks

    def with_sink(self, sink: Sink) -> Observer:
        """This observer with one more sink (a single call's own ``on_response``)."""
        return Observer((*self.sinks, sink))

    def start(self, engine: EngineState, op: Operation, url: URL) -> Call:
        """The `Call` that reports one call's events to every sink."""
        sinks: list[CallSink] = []
        for sink in self.sinks:
            try:
                call_sink = sink.start(op, url)
            except Exception:
                logger.warning("an observer of %s raised; ignored", op.operation_id,
                               exc_info=True)
                continue
            if call_sink is not None:
                sinks.append(call_sink)
        return Call(engine, op, url, tuple(sinks))

    def excess(self, count: int) -> None:
        """Report IPs an audit found that no call reported."""
        for sink in self.sinks:
            try:
                sink.excess(count)
            except Exception:
                logger.warning("an observer of an audit raised; ignored", exc_info=True)


class Call:
    """One call's events, built once each and handed to every sink."""

    __slots__ = ("engine", "op", "path", "sinks")

    def __init__(self, engine: EngineState, op: Operation, url: URL,
                 sinks: tuple[CallSink, ...]) -> None:
        self.engine: EngineState = engine
        self.op: Operation = op
        self.path: str = url.raw_path
        self.sinks: tuple[CallSink, ...] = sinks

    def request(self, number: int) -> float:
        """Attempt ``number`` is about to be sent; returns when (the engine's clock)."""
        op = self.op
        self._emit(CallSink.request, RequestEvent(
            op.operation_id, op.method, op.path, self.path, number))
        return self.engine.clock()

    def response(self, number: int, started: float, failure: SendGridError | None,
                 status: int | None, headers: Mapping[str, str] | None) -> None:
        """Attempt ``number`` ended: ``status`` and ``headers`` are a success's reply."""
        engine = self.engine
        duration = max(0.0, engine.clock() - started)
        rate_limit: RateLimit | None = None
        if failure is None and headers is not None:
            headers = CIMultiDictProxy(CIMultiDict(engine.scrub_headers(headers)))
            rate_limit = RateLimit.from_headers(headers, now=engine.wall_clock())
        elif isinstance(failure, APIError):  # its headers are scrubbed already
            status, rate_limit = failure.status, failure.rate_limit
            headers = CIMultiDictProxy(CIMultiDict(failure.headers))
        else:
            status = getattr(failure, "status", None)
            headers = None
        op = self.op
        self._emit(CallSink.response, ResponseEvent(
            op.operation_id, op.method, op.path, self.path, number, status,
            None if failure is None else type(failure).__name__, duration, rate_limit,
            _NO_HEADERS if headers is None else headers,
        ))

    def retry(self, attempt: int, wait: float, error: BaseException) -> None:
        """Attempt ``attempt`` failed with ``error``; the next came after ``wait`` seconds."""
        self._emit(CallSink.retry, attempt, wait, error_type(error))

    def reconcile(self, attempt: int, outcome: str) -> None:
        """A check after attempt ``attempt`` found ``outcome``."""
        self._emit(CallSink.reconcile, attempt, outcome)

    def waited(self, what: str, seconds: float) -> None:
        """The call waited ``seconds`` for ``what`` ("gate", "slot", "lease", "settle")."""
        self._emit(CallSink.waited, what, seconds)

    def end(self, error: BaseException | None) -> None:
        """The call ended (``error``: what it raises; it is not kept)."""
        self._emit(CallSink.end, error)

    def _emit(self, method: Callable[..., None], *args: object) -> None:
        name = method.__name__
        for sink in self.sinks:
            try:
                getattr(sink, name)(*args)
            except Exception:
                logger.warning("%s hook for %s raised; ignored", name, self.op.operation_id,
                               exc_info=True)
