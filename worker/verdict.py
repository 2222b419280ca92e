"""Build verdicts (DESIGN.md's contract), validate them against the shipped schema, and give the
SNS message attributes that let subscribers filter on decision, status and schema."""

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

SCHEMA_ID = "modfleet.verdict/v1"


@cache
def schema() -> dict[str, Any]:
    """The verdict JSON Schema that ships inside the package."""
    return json.loads(resources.files("worker").joinpath("schemas/verdict-v1.json").read_text())


@cache
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(schema())


def validate(verdict: dict[str, Any]) -> None:
    """Raise jsonschema.ValidationError when a verdict breaks the published contract."""
    _validator().validate(verdict)


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
    """SNS message attributes for subscription filter policies."""
    return {name: {"DataType": "String", "StringValue": verdict[name]}
            for name in ("decision", "status", "schema")}


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
                  "duration_s": facts.duration_s},
        "labels": [],
        "error": None,
        "reason": None,
        "model": dataclasses.asdict(ctx.model),
        "timings_ms": {stage: round(ms, 1) for stage, ms in timings_ms.items()},
        "region": ctx.region,
        "worker_id": ctx.worker_id,
        "processed_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        "idempotency_key": idempotency_key(job, version_id, etag, ctx.model),
    }


def _label(label) -> dict[str, Any]:
    return {"name": label.name, "parent_name": label.parent_name,
            "taxonomy_level": label.taxonomy_level, "confidence": round(float(label.confidence), 2),
            "timestamps_ms": [int(t) for t in label.timestamps_ms], "stage": label.stage}
