"""The deadline of the write a read is checking for, if any.

A write's checks (its marker read, the reads that find out whether a failed attempt took
effect, the verification after a resend) are ordinary calls of the engine; they run with
`OUTER_DEADLINE` set, so each ends with the write's deadline instead of getting a fresh one.
"""

from __future__ import annotations

import contextvars

__all__ = ["OUTER_DEADLINE"]

OUTER_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "sendgrid_ipam_deadline", default=None)
"""Set (to the write's deadline on the engine's clock) while a write's checks run."""
