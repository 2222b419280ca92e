"""The moderation policy: a versioned taxonomy with thresholds, prompts and answer words.

The taxonomy follows Amazon Rekognition's top-level moderation categories so that a subscriber can
switch between the two.  A policy turns per-category confidences (0-100) into labels and a decision:
a confidence at or above a category's ``review`` threshold becomes a label; the decision is
``block`` if any label reaches its ``block`` threshold, ``review`` if any label exists, else
``allow``.  A threshold above 100 means "never".
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from model.api import Label
from model.exceptions import PolicyInvalid

DECISIONS = ("allow", "review", "block")


@dataclass(frozen=True)
class Category:
    """One top-level category and its thresholds."""

    name: str
    review: float
    block: float


@dataclass(frozen=True)
class ScreeningClass:
    """Where one detector class lands in the taxonomy (level 2 when it has a parent)."""

    name: str
    parent: str


@dataclass(frozen=True)
class Policy:
    """A parsed policy file; see ``model/policies/default.json``."""

    version: str
    categories: tuple[Category, ...]
    positive_word: str
    negative_word: str
    score_system: str
    score_preamble: str
    score_line: str
    generate_system: str
    generate_instruction: str
    screening_classes: Mapping[str, ScreeningClass | None]
    min_detector_score: float

    def category(self, name: str) -> Category:
        """The category named ``name`` (exact, case-insensitive)."""
        for category in self.categories:
            if category.name.lower() == name.lower():
                return category
        raise KeyError(name)

    def labels_from_scores(self, confidences: Mapping[str, float], timestamps_ms: tuple[int, ...],
                           stage: str = "llm") -> tuple[Label, ...]:
        """Top-level labels for every category whose confidence reaches its review threshold."""
        return tuple(
            Label(name=c.name, parent_name="", taxonomy_level=1,
                  confidence=round(float(confidences[c.name]), 2), timestamps_ms=timestamps_ms,
                  stage=stage)
            for c in self.categories if confidences.get(c.name, 0.0) >= c.review)

    def decide(self, labels: Iterable[Label]) -> str:
        """allow, review or block, from the thresholds of each label's top-level category."""
        decision = "allow"
        for label in labels:
            category = self.category(label.parent_name or label.name)
            if label.confidence >= category.block:
                return "block"
            if label.confidence >= category.review:
                decision = "review"
        return decision


def load_policy(path: Path | None = None) -> Policy:
    """Parse ``path``, or the packaged default policy when ``path`` is None."""
    if path is None:
        text = resources.files("model").joinpath("policies/default.json").read_text("utf-8")
        source = "packaged default policy"
    else:
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise PolicyInvalid(f"cannot read policy file {path}: {exc}") from exc
        source = str(path)
    try:
        return _parse(json.loads(text))
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyInvalid(f"{source}: malformed policy ({type(exc).__name__}: {exc})") from exc


def _parse(raw: dict) -> Policy:
    categories = tuple(Category(str(c["name"]), float(c["review"]), float(c["block"]))
                       for c in raw["categories"])
    if not categories:
        raise ValueError("categories is empty")
    for c in categories:
        if not 0 <= c.review <= c.block:
            raise ValueError(f"category {c.name!r}: need 0 <= review <= block")
    screening = raw.get("screening", {})
    classes = {k: (ScreeningClass(v["name"], v.get("parent", "")) if v else None)
               for k, v in screening.get("classes", {}).items()}
    names = {c.name for c in categories}
    for cls in classes.values():
        if cls and (cls.parent or cls.name) not in names:
            raise ValueError(f"screening class {cls.name!r} maps to unknown category")
    return Policy(
        version=str(raw["version"]), categories=categories,
        positive_word=str(raw["answer_words"]["positive"]),
        negative_word=str(raw["answer_words"]["negative"]),
        score_system=raw["score_prompt"]["system"], score_preamble=raw["score_prompt"]["preamble"],
        score_line=raw["score_prompt"]["line"],
        generate_system=raw["generate_prompt"]["system"],
        generate_instruction=raw["generate_prompt"]["instruction"],
        screening_classes=classes,
        min_detector_score=float(screening.get("min_detector_score", 0.5)))
