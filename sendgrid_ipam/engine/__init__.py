"""The one request path, below the resources: options, slots, attempts, retries and the
ambiguous-write flow (``flow.py``). Resources and reconcilers depend on it; it depends on
neither, nor on the client."""

from .core import Engine
from .flow import CallTrace, Reconciler
from .options import RequestOptions, as_timeout, check_options, header_safe

__all__ = [
    "CallTrace", "Engine", "Reconciler", "RequestOptions", "as_timeout", "check_options",
    "header_safe",
]
