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
only place that knows how the fields are filled.  Known content's stage is ``known_content``: the
label comes from a list, not from the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from model.api import Label, ModelOutput
from worker import verdict as verdicts
from worker.fingerprints import ALGORITHM, FrameFingerprint
from worker.hashlists import KnownMatch
from worker.near_duplicates import NearMatch
from worker.records import Job

KNOWN_CONTENT_LABEL = "Known Content"
Timings = Mapping[str, float]


def fingerprint_field(prints: Sequence[FrameFingerprint]) -> verdicts.Fingerprints | None:
    """The verdict's ``fingerprints`` (None when no frame was hashed)."""
    return verdicts.Fingerprints(ALGORITHM, tuple(prints)) if prints else None


def exact_hit(job: Job, facts: verdicts.VideoFacts, original: verdicts.Verdict,
              ctx: verdicts.Context, timings_ms: Timings) -> verdicts.Verdict:
    """The cached ``original`` published for ``job``'s object (same content, another key)."""
    return _reused(job, facts, original, ctx, timings_ms, "exact",
                   fingerprints=original.fingerprints)


def near_duplicate_hit(job: Job, facts: verdicts.VideoFacts, match: NearMatch,
                       prints: Sequence[FrameFingerprint], ctx: verdicts.Context,
                       timings_ms: Timings) -> verdicts.Verdict:
    """A recent verdict reused for a re-encode of its video (the reuse policy allowed it)."""
    return _reused(job, facts, match.verdict, ctx, timings_ms, "near_duplicate",
                   fingerprints=fingerprint_field(prints), near_duplicate=match.record(True))


def known_content_block(job: Job, facts: verdicts.VideoFacts, match: KnownMatch,
                        prints: Sequence[FrameFingerprint], ctx: verdicts.Context,
                        timings_ms: Timings) -> verdicts.Verdict:
    """A ``block`` for a frame within a known-content list's threshold; the model did not run."""
    label = Label(name=KNOWN_CONTENT_LABEL, parent_name="", taxonomy_level=1, confidence=100.0,
                  timestamps_ms=(match.timestamp_ms,), stage="known_content")
    reason = (f"frame at {match.timestamp_ms} ms matches entry {match.entry} of known-content "
              f"list {match.list} (distance {match.distance}, threshold {match.threshold})")
    output = ModelOutput(labels=(label,), decision="block", reason=reason)
    return dataclasses.replace(verdicts.ok_verdict(job, facts, output, ctx, timings_ms),
                               fingerprints=fingerprint_field(prints), known_content=match)


def model_verdict(job: Job, facts: verdicts.VideoFacts, output: ModelOutput,
                  prints: Sequence[FrameFingerprint], near: NearMatch | None,
                  ctx: verdicts.Context, timings_ms: Timings) -> verdicts.Verdict:
    """The model's verdict with its fingerprints and, when one was found but not reused, the
    near-duplicate it resembles."""
    return dataclasses.replace(verdicts.ok_verdict(job, facts, output, ctx, timings_ms),
                               fingerprints=fingerprint_field(prints),
                               near_duplicate=near.record(False) if near else None)


def _reused(job: Job, facts: verdicts.VideoFacts, original: verdicts.Verdict,
            ctx: verdicts.Context, timings_ms: Timings, kind: str,
            **fields: object) -> verdicts.Verdict:
    output = ModelOutput(labels=(), decision=original.decision, reason=original.reason)
    return dataclasses.replace(
        verdicts.ok_verdict(job, facts, output, ctx, timings_ms), labels=original.labels,
        model=original.model, cache_hit=True, evidence_bucket=original.evidence_bucket,
        cached_from=verdicts.CachedFrom(kind, original.idempotency_key, original.processed_at),
        **fields)
