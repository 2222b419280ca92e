"""Human durations for flags such as ``--older-than``: ``90``, ``90s``, ``15m``, ``1h30m``."""

from __future__ import annotations

import re

from tools.ops.exceptions import InvalidRequest

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")


def parse_duration(text: str) -> float:
    """Seconds in a duration string; a bare number is seconds."""
    cleaned = text.strip().lower().replace(" ", "")
    try:
        return _non_negative(float(cleaned), text)
    except ValueError:
        pass
    parts = _PART.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise InvalidRequest(f"not a duration: {text!r} (use e.g. 90s, 15m, 2h, 1h30m, 7d)")
    return _non_negative(sum(float(n) * _UNITS[u] for n, u in parts), text)


def _non_negative(value: float, text: str) -> float:
    if value < 0:
        raise InvalidRequest(f"a duration cannot be negative: {text!r}")
    return value
