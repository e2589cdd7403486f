"""Waiting for an event the test can observe, instead of sleeping a fixed time for it.

A fixed sleep assumes the other side got that far within it, which a loaded machine breaks;
polling the observable state waits exactly as long as needed, bounded so that a defect
(the state never comes) fails the test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def until(condition: Callable[[], object], what: str, within: float = 10.0) -> None:
    """Return once ``condition()`` is true; fail (naming ``what``) after ``within`` s."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.002)
