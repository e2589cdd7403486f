"""Showing a caller's value in an error message, safely (no imports: any module may use it)."""

from __future__ import annotations

__all__ = ["shown"]

_SHOWN_LIMIT = 80


def shown(value: object) -> str:
    """A short repr of a caller's value for an error message; never raises.

    ``repr`` itself can fail: ``repr(10**5000)`` raises ValueError (Python's limit on int to
    text conversion), and a user's object may raise anything. A huge value is also no use
    in a message, so the text is cut to a few dozen characters.
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 256:
        return f"an integer of {value.bit_length()} bits"
    try:
        text = repr(value)
    except Exception:  # a failing __repr__ of a caller's object must not hide the real error
        return f"a {type(value).__name__} that cannot be shown"
    return text if len(text) <= _SHOWN_LIMIT else text[:_SHOWN_LIMIT] + "..."
