"""Children that a Ctrl-C (SIGINT) reaches, however the test run itself was started."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


@contextlib.contextmanager
def sigint_at_default() -> Iterator[None]:
    """Start processes inside this block with SIGINT at its default, as in a terminal.

    A test run started in the background by a non-interactive shell (``cmd &``, some CI
    runners) ignores SIGINT, and a child inherits an ignored signal: a Ctrl-C test's
    command would then run on to its end (exit 0, not 130).
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
