"""Build verdicts (DESIGN.md's contract), validate them against the shipped schema, and give the
SNS message attributes that let subscribers filter on decision, status, schema, cache and known
content.

The worker writes version 2 (worker/schemas/verdict-v2.json: v1 plus the cache, fingerprint,
known-content and evidence fields of worker/verdict_reuse.py); ``validate`` still accepts version 1
for readers of verdicts published before it."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from datetime import datetime, timezone
from functools import cache
from importlib import resources
from typing import Any

from model.api import ModelIdentity, ModelOutput
from worker.records import Job

SCHEMA_ID = "modfleet.verdict/v2"
SCHEMA_IDS = ("modfleet.verdict/v1", SCHEMA_ID)


@cache
def schema(schema_id: str = SCHEMA_ID) -> dict[str, Any]:
    """The verdict JSON Schema of ``schema_id`` that ships inside the package."""
    if schema_id not in SCHEMA_IDS:
        raise ValueError(f"unknown verdict schema {schema_id!r}; known: {', '.join(SCHEMA_IDS)}")
    name = f"schemas/verdict-{schema_id.rsplit('/', 1)[1]}.json"
    return json.loads(resources.files("worker").joinpath(name).read_text())


@cache
def _validator(schema_id: str):
    import jsonschema

    return jsonschema.Draft202012Validator(schema(schema_id))


def validate(verdict: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when a verdict breaks the contract its ``schema`` names
    (version 1 or 2; an unknown or missing one is checked against the current version)."""
    schema_id = verdict.get("schema") if isinstance(verdict, dict) else None
    _validator(schema_id if schema_id in SCHEMA_IDS else SCHEMA_ID).validate(verdict)


def idempotency_key(job: Job, version_id: str | None, etag: str | None,
                    model: ModelIdentity) -> str:
    """Same object version + same model + same policy -> same key, whichever worker or retry,
    and whichever message format named the object (the version and etag are S3's, not the event's).
    """
    parts = [job.bucket, job.key, version_id or "", etag or "", model.name, model.version,
             model.backend, model.quantization, model.policy_version]
    return "sha256:" + hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class VideoFacts:
    """What the worker learned about the object and the video while processing it."""

    etag: str | None = None
    size_bytes: int | None = None
    duration_s: float | None = None
    version_id: str | None = None
    sha256: str | None = None  # the content id (worker/content_digest.py), when known


@dataclasses.dataclass(frozen=True)
class Context:
    """Per-worker constants written into every verdict."""

    region: str
    worker_id: str
    model: ModelIdentity


def ok_verdict(job: Job, facts: VideoFacts, output: ModelOutput, ctx: Context,
               timings_ms: dict[str, float]) -> dict[str, Any]:
    body = _base(job, facts, ctx, timings_ms)
    body.update(status="ok", decision=output.decision, reason=output.reason,
                labels=[_label(label) for label in output.labels])
    return body


def error_verdict(job: Job, facts: VideoFacts, code: str, message: str, ctx: Context,
                  timings_ms: dict[str, float]) -> dict[str, Any]:
    body = _base(job, facts, ctx, timings_ms)
    body.update(status="error", decision="review", error={"code": code, "message": message})
    return body


def message_attributes(verdict: dict[str, Any]) -> dict[str, dict[str, str]]:
    """SNS message attributes for subscription filter policies: decision, status, schema, and
    ``cache`` (exact | near_duplicate | none) and ``known_content`` (true | false)."""
    values = {name: verdict[name] for name in ("decision", "status", "schema")}
    values["cache"] = (verdict.get("cached_from") or {}).get("kind", "none")
    values["known_content"] = "true" if verdict.get("known_content") else "false"
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}


def _base(job: Job, facts: VideoFacts, ctx: Context, timings_ms: dict[str, float]) -> dict[str, Any]:
    etag = (facts.etag or job.etag or "").strip('"') or None
    version_id = facts.version_id or job.version_id
    return {
        "schema": SCHEMA_ID,
        "status": "ok",
        "decision": "review",
        "video": {"bucket": job.bucket, "key": job.key, "version_id": version_id,
                  "etag": etag,
                  "size_bytes": facts.size_bytes if facts.size_bytes is not None else job.size,
                  "duration_s": facts.duration_s, "sha256": facts.sha256},
        "labels": [],
        "error": None,
        "reason": None,
        "model": dataclasses.asdict(ctx.model),
        "timings_ms": {stage: round(ms, 1) for stage, ms in timings_ms.items()},
        "region": ctx.region,
        "worker_id": ctx.worker_id,
        "processed_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "idempotency_key": idempotency_key(job, version_id, etag, ctx.model),
        **NO_REUSE,
    }


# Version 2's fields for a verdict the model (or an error) made with nothing reused; the pipeline
# fills them through worker/verdict_reuse.py.
NO_REUSE: dict[str, Any] = {"cache_hit": False, "cached_from": None, "fingerprints": None,
                            "known_content": None, "near_duplicate": None,
                            "evidence_bucket": None}


def _label(label) -> dict[str, Any]:
    return {"name": label.name, "parent_name": label.parent_name,
            "taxonomy_level": label.taxonomy_level, "confidence": round(float(label.confidence), 2),
            "timestamps_ms": [int(t) for t in label.timestamps_ms], "stage": label.stage}
