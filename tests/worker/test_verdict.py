import jsonschema
import pytest

from model.api import Label, ModelIdentity, ModelOutput
from worker import verdict as v
from worker.records import Job

MODEL = ModelIdentity("qwen2-vl-synthetic-tiny", "s1", "torch", "none", True, "2026-11")
CTX = v.Context(region="us-east-1", worker_id="i-1/replica-0", model=MODEL)
JOB = Job("uploads", "users/42/clip 1.mp4", None, '"9b2c"', 1024)


def test_ok_verdict_validates_and_carries_filter_attributes():
    output = ModelOutput(labels=(Label("Violence", "", 1, 87.123, (4000, 4800), "llm"),),
                         decision="review")
    verdict = v.ok_verdict(JOB, v.VideoFacts("9b2c", 1024, 12.4), output, CTX,
                           {"queue_wait": 850.04, "fetch": 120.0})
    v.validate(verdict)
    assert verdict["labels"][0]["confidence"] == 87.12
    assert verdict["video"]["etag"] == "9b2c"
    assert v.message_attributes(verdict) == {
        "decision": {"DataType": "String", "StringValue": "review"},
        "status": {"DataType": "String", "StringValue": "ok"},
        "schema": {"DataType": "String", "StringValue": "modfleet.verdict/v2"},
        "cache": {"DataType": "String", "StringValue": "none"},
        "known_content": {"DataType": "String", "StringValue": "false"}}


def test_error_verdict_routes_to_review_without_labels():
    verdict = v.error_verdict(JOB, v.VideoFacts(), "undecodable", "no frame", CTX, {})
    v.validate(verdict)
    assert (verdict["status"], verdict["decision"], verdict["labels"]) == ("error", "review", [])


def test_schema_rejects_an_error_verdict_that_allows():
    verdict = v.error_verdict(JOB, v.VideoFacts(), "too_long", "x", CTX, {})
    verdict["decision"] = "allow"
    with pytest.raises(jsonschema.ValidationError):
        v.validate(verdict)


def test_idempotency_key_depends_on_object_version_and_model_not_on_worker():
    a = v.idempotency_key(JOB, "v1", "etag1", MODEL)
    assert a == v.idempotency_key(JOB, "v1", "etag1", MODEL)
    assert a != v.idempotency_key(JOB, "v2", "etag1", MODEL)
    assert a != v.idempotency_key(JOB, "v1", "etag2", MODEL)
    other_policy = ModelIdentity(**{**MODEL.__dict__, "policy_version": "2026-12"})
    assert a != v.idempotency_key(JOB, "v1", "etag1", other_policy)


def test_schema_ships_inside_the_package():
    assert v.schema()["properties"]["schema"]["const"] == v.SCHEMA_ID


# A verdict as version 1 published it (before issue 21): readers still validate it.
V1_VERDICT = {
    "schema": "modfleet.verdict/v1", "status": "ok", "decision": "allow",
    "video": {"bucket": "uploads", "key": "a.mp4", "version_id": None, "etag": "9b2c",
              "size_bytes": 1024, "duration_s": 3.0},
    "labels": [], "error": None, "reason": None,
    "model": {"name": "m", "version": "s1", "backend": "torch", "quantization": "none",
              "synthetic": True, "policy_version": "2026-11"},
    "timings_ms": {"queue_wait": 1.0}, "region": "us-east-1", "worker_id": "w",
    "processed_at": "2026-11-01T00:00:00.000Z", "idempotency_key": "sha256:" + "a" * 64}


def test_a_version_1_verdict_still_validates_and_not_as_version_2():
    v.validate(V1_VERDICT)
    with pytest.raises(jsonschema.ValidationError):
        v.validate({**V1_VERDICT, "schema": "modfleet.verdict/v2"})  # lacks v2's fields
    with pytest.raises(jsonschema.ValidationError):
        v.validate({**V1_VERDICT, "cache_hit": False})  # v1 has no such field


def test_both_schema_versions_ship_and_an_unknown_one_is_refused():
    assert v.schema("modfleet.verdict/v1")["properties"]["schema"]["const"] == \
        "modfleet.verdict/v1"
    with pytest.raises(ValueError):
        v.schema("modfleet.verdict/v9")
