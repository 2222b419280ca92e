"""Generate mode's answer parser: free text to per-category confidences and a rationale.

The generate prompt asks for ``Category: confidence`` lines and a ``Reason:`` line, or ``None``.
Anything else is unparseable, and the caller routes it to review with the reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from model.policy import Policy

_NUMBER = r"(\d{1,3}(?:\.\d+)?)"


@dataclass(frozen=True)
class ParsedAnswer:
    """What a generated answer said: confidences per named category, and the rationale."""

    confidences: dict[str, float]
    rationale: str
    none: bool


class Unparseable(ValueError):
    """The text names no category with a confidence and does not say None."""


def parse_answer(text: str, policy: Policy) -> ParsedAnswer:
    """Parse ``text``; raise ``Unparseable`` when it follows neither answer form."""
    confidences: dict[str, float] = {}
    for category in policy.categories:
        match = re.search(rf"{re.escape(category.name)}\s*[:=-]\s*{_NUMBER}", text, re.IGNORECASE)
        if match and float(match.group(1)) <= 100:
            confidences[category.name] = float(match.group(1))
    reason = re.search(r"reason\s*:\s*(.+)", text, re.IGNORECASE)
    rationale = reason.group(1).strip() if reason else ""
    said_none = re.match(r"\s*none\b", text, re.IGNORECASE) is not None
    if not confidences and not said_none:
        raise Unparseable(f"no 'Category: confidence' line and no 'None' in {text[:120]!r}")
    return ParsedAnswer(confidences, rationale, said_none and not confidences)
