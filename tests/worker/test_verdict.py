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
        "schema": {"DataType": "String", "StringValue": "modfleet.verdict/v1"}}


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
