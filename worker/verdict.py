"""The verdict (DESIGN.md's contract) as a typed record, and its JSON at the SNS boundary.

The pipeline builds a frozen ``Verdict`` (``ok_verdict``, ``error_verdict``); the runner, the
metrics and the chaos report read its fields.  Only the publisher turns it into JSON
(``to_json``), validates that against the shipped schema and sends it; ``from_json`` reads one back
(a subscriber's view, for the chaos report and tests).

Adding a field to a later schema version: declare it with ``optional()`` on its record.  An optional
field left at ``None`` is not written, so verdicts that do not use it keep their v1 form; schemas are
looked up by the verdict's ``schema`` id in ``SCHEMA_FILES``.

Version 2 (issue 21, the current one) adds where a verdict came from: ``cache_hit`` (always
written) and, when they apply, ``cached_from``, ``fingerprints``, ``known_content``,
``near_duplicate``, ``evidence_bucket``, ``video.sha256`` and each label's ``evidence_keys``
(worker/verdict_reuse.py fills them).  A version-1 verdict read back keeps its v1 form: the fields
marked ``since(2)`` are not written for it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import Any

from model.api import ModelIdentity, ModelOutput
from worker.fingerprints import FrameFingerprint
from worker.hashlists import KnownMatch
from worker.records import Job

SCHEMA_V1 = "modfleet.verdict/v1"
SCHEMA_ID = "modfleet.verdict/v2"
# Schema id -> its file under worker/schemas/; the publisher validates against the verdict's own.
SCHEMA_FILES = {SCHEMA_V1: "verdict-v1.json", SCHEMA_ID: "verdict-v2.json"}
_OMIT_WHEN_NONE = "omit_when_none"
_SINCE = "since_version"


def optional(since: int = 1) -> Any:
    """A field that defaults to None and is left out of the JSON while it is None."""
    return field(default=None, metadata={_OMIT_WHEN_NONE: True, _SINCE: since})


# ---- The records -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Video:
    """The object version the verdict is about, as S3 reported it on the read."""

    bucket: str
    key: str
    version_id: str | None
    etag: str | None
    size_bytes: int | None
    duration_s: float | None
    # The content id the verdict cache is keyed by (worker/content_digest.py), when known.
    sha256: str | None = optional(since=2)


@dataclass(frozen=True)
class Label:
    """One moderation label (Rekognition's taxonomy); confidence 0-100, two decimals."""

    name: str
    parent_name: str
    taxonomy_level: int
    confidence: float
    timestamps_ms: tuple[int, ...]
    stage: str  # "llm", "screening" or "known_content"
    # S3 keys (in the verdict's evidence_bucket) of the frames at timestamps_ms; None per frame
    # not written.  Review and block verdicts only, and only with evidence on.
    evidence_keys: tuple[str | None, ...] | None = optional(since=2)


@dataclass(frozen=True)
class ErrorDetail:
    """Why a video could not be moderated: one of ``SettleWithError.codes`` and a message."""

    code: str
    message: str


@dataclass(frozen=True)
class Timings:
    """Milliseconds per stage before publishing, one decimal; a stage the job never reached is
    None (and absent from the JSON).  Publishing is timed by the runner, after the verdict."""

    queue_wait: float | None = optional()
    fetch: float | None = optional()
    decode: float | None = optional()
    batch_wait: float | None = optional()  # waiting for a replica and a full batch
    infer: float | None = optional()  # the batch's model run
    lookup: float | None = optional(since=2)  # HEAD for S3's SHA-256 and the verdict table
    fingerprint: float | None = optional(since=2)  # PDQ hashes of the sampled frames
    evidence: float | None = optional(since=2)  # writing the evidence frames

    @classmethod
    def from_ms(cls, timings_ms: Mapping[str, float]) -> Timings:
        """From the pipeline's stopwatch (stage name -> ms); an unknown stage is a TypeError."""
        return cls(**{stage: round(ms, 1) for stage, ms in timings_ms.items()})

    def stages(self) -> dict[str, float]:
        """Stage name -> ms, for the stages the job reached, in pipeline order."""
        return {f.name: value for f in dataclasses.fields(self)
                if (value := getattr(self, f.name)) is not None}


@dataclass(frozen=True)
class CachedFrom:
    """The earlier verdict this one reuses: ``exact`` (same bytes) or ``near_duplicate``."""

    kind: str
    idempotency_key: str
    processed_at: str


@dataclass(frozen=True)
class Fingerprints:
    """The sampled frames' perceptual hashes (worker/fingerprints.py)."""

    algorithm: str
    frames: tuple[FrameFingerprint, ...]


@dataclass(frozen=True)
class NearDuplicate:
    """A recent verdict whose frames match this video's (worker/near_duplicates.py)."""

    of: str  # its idempotency key
    decision: str
    matched_frames: int
    frames: int
    max_distance: int
    reused: bool


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """One moderation verdict per video: what the publisher sends and subscribers receive."""

    schema: str = SCHEMA_ID
    status: str  # "ok" | "error"
    decision: str  # "allow" | "review" | "block"; an error is always "review"
    video: Video
    labels: tuple[Label, ...] = ()
    error: ErrorDetail | None = None
    reason: str | None = None  # why the policy routed to review, when it could not decide
    model: ModelIdentity
    timings_ms: Timings
    region: str
    worker_id: str
    processed_at: str  # UTC, ISO 8601 with milliseconds and "Z"
    idempotency_key: str
    # ---- version 2: where the verdict came from (worker/verdict_reuse.py) ----
    cache_hit: bool = field(default=False, metadata={_SINCE: 2})
    cached_from: CachedFrom | None = optional(since=2)
    fingerprints: Fingerprints | None = optional(since=2)
    known_content: KnownMatch | None = optional(since=2)
    near_duplicate: NearDuplicate | None = optional(since=2)
    evidence_bucket: str | None = optional(since=2)

    @property
    def error_code(self) -> str | None:
        return self.error.code if self.error else None


# ---- Building verdicts -----------------------------------------------------------------------------

@dataclass(frozen=True)
class VideoFacts:
    """What the worker learned about the object and the video while processing it."""

    etag: str | None = None
    size_bytes: int | None = None
    duration_s: float | None = None
    version_id: str | None = None
    sha256: str | None = None  # the content id (worker/content_digest.py), when known


@dataclass(frozen=True)
class Context:
    """Per-worker constants written into every verdict."""

    region: str
    worker_id: str
    model: ModelIdentity


def ok_verdict(job: Job, facts: VideoFacts, output: ModelOutput, ctx: Context,
               timings_ms: Mapping[str, float]) -> Verdict:
    """The verdict for a video the model judged."""
    return _verdict(job, facts, ctx, timings_ms, status="ok", decision=output.decision,
                    reason=output.reason, labels=tuple(_label(label) for label in output.labels))


def error_verdict(job: Job, facts: VideoFacts, code: str, message: str, ctx: Context,
                  timings_ms: Mapping[str, float]) -> Verdict:
    """The verdict for a video that can never be moderated: routed to review, with why."""
    return _verdict(job, facts, ctx, timings_ms, status="error", decision="review",
                    error=ErrorDetail(code, message))


def idempotency_key(job: Job, version_id: str | None, etag: str | None,
                    model: ModelIdentity) -> str:
    """Same object version + same model + same policy -> same key, whichever worker or retry,
    and whichever message format named the object (the version and etag are S3's, not the event's).
    """
    parts = [job.bucket, job.key, version_id or "", etag or "", model.name, model.version,
             model.backend, model.quantization, model.policy_version]
    return "sha256:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _verdict(job: Job, facts: VideoFacts, ctx: Context, timings_ms: Mapping[str, float],
             **outcome: Any) -> Verdict:
    etag = (facts.etag or job.etag or "").strip('"') or None
    version_id = facts.version_id or job.version_id
    size = facts.size_bytes if facts.size_bytes is not None else job.size
    return Verdict(
        video=Video(job.bucket, job.key, version_id, etag, size, facts.duration_s, facts.sha256),
        model=ctx.model, timings_ms=Timings.from_ms(timings_ms), region=ctx.region,
        worker_id=ctx.worker_id,
        processed_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        idempotency_key=idempotency_key(job, version_id, etag, ctx.model), **outcome)


def _label(label: Any) -> Label:
    return Label(label.name, label.parent_name, label.taxonomy_level,
                 round(float(label.confidence), 2), tuple(int(t) for t in label.timestamps_ms),
                 label.stage)


# ---- JSON, at the SNS boundary ---------------------------------------------------------------------

def to_json(verdict: Verdict) -> dict[str, Any]:
    """The verdict as subscribers receive it (keys in declaration order); not yet validated."""
    return _json_object(verdict)


def from_json(body: Mapping[str, Any]) -> Verdict:
    """A published verdict read back (version 1 or 2); raises jsonschema.ValidationError if it
    breaks its schema."""
    validate(body)
    error = body["error"]
    return Verdict(
        schema=body["schema"], status=body["status"], decision=body["decision"],
        video=Video(**body["video"]),
        labels=tuple(_label_from_json(label) for label in body["labels"]),
        error=ErrorDetail(**error) if error else None, reason=body.get("reason"),
        model=ModelIdentity(**body["model"]), timings_ms=Timings(**body["timings_ms"]),
        region=body["region"], worker_id=body["worker_id"], processed_at=body["processed_at"],
        idempotency_key=body["idempotency_key"], **_v2_from_json(body))


def _label_from_json(label: Mapping[str, Any]) -> Label:
    keys = label.get("evidence_keys")
    return Label(**{**label, "timestamps_ms": tuple(label["timestamps_ms"]),
                    "evidence_keys": tuple(keys) if keys is not None else None})


def _v2_from_json(body: Mapping[str, Any]) -> dict[str, Any]:
    prints, near = body.get("fingerprints"), body.get("near_duplicate")
    cached, known = body.get("cached_from"), body.get("known_content")
    return {
        "cache_hit": bool(body.get("cache_hit", False)),
        "cached_from": CachedFrom(**cached) if cached else None,
        "fingerprints": Fingerprints(prints["algorithm"], tuple(
            FrameFingerprint(**frame) for frame in prints["frames"])) if prints else None,
        "known_content": KnownMatch(**known) if known else None,
        "near_duplicate": NearDuplicate(**near) if near else None,
        "evidence_bucket": body.get("evidence_bucket")}


def validate(body: Mapping[str, Any]) -> None:
    """Raise jsonschema.ValidationError when a verdict's JSON breaks the schema it names."""
    named = body.get("schema")
    _validator(named if named in SCHEMA_FILES else SCHEMA_ID).validate(body)


def message_attributes(verdict: Verdict) -> dict[str, dict[str, str]]:
    """SNS message attributes for subscription filter policies: decision, status, schema, and
    ``cache`` (exact | near_duplicate | none) and ``known_content`` (true | false)."""
    values = {name: getattr(verdict, name) for name in ("decision", "status", "schema")}
    values["cache"] = verdict.cached_from.kind if verdict.cached_from else "none"
    values["known_content"] = "true" if verdict.known_content else "false"
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}


@cache
def schema(schema_id: str = SCHEMA_ID) -> dict[str, Any]:
    """A verdict JSON Schema that ships inside the package (default: the current, v2)."""
    if schema_id not in SCHEMA_FILES:
        raise ValueError(f"unknown verdict schema {schema_id!r}; known: {', '.join(SCHEMA_FILES)}")
    path = f"schemas/{SCHEMA_FILES[schema_id]}"
    return json.loads(resources.files("worker").joinpath(path).read_text())


@cache
def _validator(schema_id: str):
    import jsonschema

    return jsonschema.Draft202012Validator(schema(schema_id))


def _json_object(record: Any, version: int = 2) -> dict[str, Any]:
    if isinstance(record, Verdict):
        version = 1 if record.schema == SCHEMA_V1 else 2
    return {f.name: _json_value(value, version) for f in dataclasses.fields(record)
            if f.metadata.get(_SINCE, 1) <= version
            and ((value := getattr(record, f.name)) is not None
                 or not f.metadata.get(_OMIT_WHEN_NONE))}


def _json_value(value: Any, version: int) -> Any:
    if dataclasses.is_dataclass(value):
        return _json_object(value, version)
    if isinstance(value, tuple):
        return [_json_value(item, version) for item in value]
    return value
