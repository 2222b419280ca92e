"""Human durations for flags such as ``--older-than``: ``90``, ``90s``, ``15m``, ``1h30m``, ``7d``.

Parsed by pytimeparse2 (also ``1.5h``, ``1h 30m``, ``3 days``, ``1:30``); this module adds what
a flag needs on top: a negative duration and text it cannot read are the operator's to fix.
"""

from __future__ import annotations

import pytimeparse2

from tools.ops.exceptions import InvalidRequest


def parse_duration(text: str) -> float:
    """Seconds in a duration string; a bare number is seconds."""
    try:
        seconds = pytimeparse2.parse(text.strip())
    except (TypeError, ValueError, OverflowError):
        seconds = None
    if not isinstance(seconds, (int, float)):
        raise InvalidRequest(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1h30m, 7d)")
    if seconds < 0:
        raise InvalidRequest(f"a duration cannot be negative: {text!r}")
    return float(seconds)
