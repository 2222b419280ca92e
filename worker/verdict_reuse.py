"""Version 2's verdicts that reuse an earlier decision, and the fields every v2 verdict carries.

Three ways a verdict is decided without running the model for this video, each named in the
verdict and in the SNS attributes (worker/verdict.py ``message_attributes``):

- ``exact_hit``: the same bytes (S3's SHA-256) were judged by the same model and policy version;
  the cached verdict is published for the new key with its own idempotency key, ``cache_hit`` and
  ``cached_from`` (the original's key).  Its ``model`` stays the original's: it made the decision.
- ``known_content_block``: a frame matched a known-content list; a ``block`` with a
  "Known Content" label at the matching frame, and ``known_content`` naming the list and entry.
- ``near_duplicate_hit``: a re-encode of a recent verdict that the reuse policy lets stand in.

Each builds on ``verdict.ok_verdict`` and then sets the version-2 fields, so these functions are the
only place that knows how the fields are filled.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

from model.api import Label, ModelOutput
from worker import verdict as verdicts
from worker.fingerprints import ALGORITHM, FrameFingerprint
from worker.hashlists import KnownMatch
from worker.near_duplicates import NearMatch
from worker.records import Job

KNOWN_CONTENT_LABEL = "Known Content"


def fingerprint_field(prints: Sequence[FrameFingerprint]) -> dict[str, Any] | None:
    """The verdict's ``fingerprints`` object (None when no frame was hashed)."""
    if not prints:
        return None
    return {"algorithm": ALGORITHM, "frames": [p.as_dict() for p in prints]}


def with_fields(verdict: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``verdict`` with version-2 fields set (names checked against verdict.NO_REUSE)."""
    unknown = set(fields) - set(verdicts.NO_REUSE)
    if unknown:
        raise ValueError(f"not a version-2 field: {sorted(unknown)}")
    return {**verdict, **fields}


def exact_hit(job: Job, facts: verdicts.VideoFacts, original: dict[str, Any],
              ctx: verdicts.Context, timings_ms: dict[str, float]) -> dict[str, Any]:
    """The cached ``original`` published for ``job``'s object (same content, another key)."""
    return _reused(job, facts, original, ctx, timings_ms, "exact",
                   fingerprints=original.get("fingerprints"))


def near_duplicate_hit(job: Job, facts: verdicts.VideoFacts, match: NearMatch,
                       prints: Sequence[FrameFingerprint], ctx: verdicts.Context,
                       timings_ms: dict[str, float]) -> dict[str, Any]:
    """A recent verdict reused for a re-encode of its video (the reuse policy allowed it)."""
    return _reused(job, facts, match.verdict, ctx, timings_ms, "near_duplicate",
                   fingerprints=fingerprint_field(prints), near_duplicate=match.as_dict(True))


def known_content_block(job: Job, facts: verdicts.VideoFacts, match: KnownMatch,
                        prints: Sequence[FrameFingerprint], ctx: verdicts.Context,
                        timings_ms: dict[str, float]) -> dict[str, Any]:
    """A ``block`` for a frame within a known-content list's threshold; the model did not run."""
    label = Label(name=KNOWN_CONTENT_LABEL, parent_name="", taxonomy_level=1, confidence=100.0,
                  timestamps_ms=(match.timestamp_ms,), stage="known_content")
    reason = (f"frame at {match.timestamp_ms} ms matches entry {match.entry} of known-content "
              f"list {match.list} (distance {match.distance}, threshold {match.threshold})")
    output = ModelOutput(labels=(label,), decision="block", reason=reason)
    return with_fields(verdicts.ok_verdict(job, facts, output, ctx, timings_ms),
                       fingerprints=fingerprint_field(prints), known_content=match.as_dict())


def model_verdict(job: Job, facts: verdicts.VideoFacts, output: ModelOutput,
                  prints: Sequence[FrameFingerprint], near: NearMatch | None,
                  ctx: verdicts.Context, timings_ms: dict[str, float]) -> dict[str, Any]:
    """The model's verdict with its fingerprints and, when one was found but not reused, the
    near-duplicate it resembles."""
    return with_fields(verdicts.ok_verdict(job, facts, output, ctx, timings_ms),
                       fingerprints=fingerprint_field(prints),
                       near_duplicate=near.as_dict(False) if near else None)


def _reused(job: Job, facts: verdicts.VideoFacts, original: dict[str, Any],
            ctx: verdicts.Context, timings_ms: dict[str, float], kind: str,
            **fields: Any) -> dict[str, Any]:
    output = ModelOutput(labels=(), decision=original["decision"], reason=original.get("reason"))
    body = verdicts.ok_verdict(job, facts, output, ctx, timings_ms)
    body["labels"] = copy.deepcopy(original["labels"])
    body["model"] = dict(original["model"])
    return with_fields(body, cache_hit=True, evidence_bucket=original.get("evidence_bucket"),
                       cached_from={"kind": kind, "idempotency_key": original["idempotency_key"],
                                    "processed_at": original["processed_at"]}, **fields)
