"""The typed verdict, and its JSON at the SNS boundary: the form subscribers depend on."""

import dataclasses
import json

import jsonschema
import pytest

from model.api import Label, ModelIdentity, ModelOutput
from worker import verdict as v
from worker.publish import message_body
from worker.records import Job

MODEL = ModelIdentity("qwen2-vl-synthetic-tiny", "s1", "torch", "none", True, "2026-11")
CTX = v.Context(region="us-east-1", worker_id="i-1/replica-0", model=MODEL)
JOB = Job("uploads", "users/42/clip 1.mp4", None, '"9b2c"', 1024)
OUTPUT = ModelOutput(labels=(Label("Violence", "", 1, 87.123, (4000, 4800), "llm"),),
                     decision="review", reason="unsure")


def ok() -> v.Verdict:
    return v.ok_verdict(JOB, v.VideoFacts("9b2c", 1024, 12.4), OUTPUT, CTX,
                        {"queue_wait": 850.04, "fetch": 120.0})


def test_the_published_json_is_the_v1_layout_key_for_key_then_version_2s_fields():
    verdict = ok()
    expected = {
        "schema": "modfleet.verdict/v2", "status": "ok", "decision": "review",
        "video": {"bucket": "uploads", "key": "users/42/clip 1.mp4", "version_id": None,
                  "etag": "9b2c", "size_bytes": 1024, "duration_s": 12.4},
        "labels": [{"name": "Violence", "parent_name": "", "taxonomy_level": 1,
                    "confidence": 87.12, "timestamps_ms": [4000, 4800], "stage": "llm"}],
        "error": None, "reason": "unsure",
        "model": {"name": "qwen2-vl-synthetic-tiny", "version": "s1", "backend": "torch",
                  "quantization": "none", "synthetic": True, "policy_version": "2026-11"},
        "timings_ms": {"queue_wait": 850.0, "fetch": 120.0},
        "region": "us-east-1", "worker_id": "i-1/replica-0",
        "processed_at": verdict.processed_at,
        "idempotency_key": v.idempotency_key(JOB, None, "9b2c", MODEL),
        "cache_hit": False,
    }
    # v1's keys in the same order, same values, then cache_hit; the other v2 fields only when
    # they apply.
    assert message_body(verdict) == json.dumps(expected, separators=(",", ":"))


def test_ok_verdict_is_typed_and_carries_filter_attributes():
    verdict = ok()
    v.validate(v.to_json(verdict))
    assert verdict.labels[0].confidence == 87.12 and verdict.video.etag == "9b2c"
    assert verdict.timings_ms.stages() == {"queue_wait": 850.0, "fetch": 120.0}
    assert v.message_attributes(verdict) == {
        "decision": {"DataType": "String", "StringValue": "review"},
        "status": {"DataType": "String", "StringValue": "ok"},
        "schema": {"DataType": "String", "StringValue": "modfleet.verdict/v2"},
        "cache": {"DataType": "String", "StringValue": "none"},
        "known_content": {"DataType": "String", "StringValue": "false"}}


def test_error_verdict_routes_to_review_without_labels():
    verdict = v.error_verdict(JOB, v.VideoFacts(), "undecodable", "no frame", CTX, {})
    body = v.to_json(verdict)
    v.validate(body)
    assert (verdict.status, verdict.decision, verdict.labels) == ("error", "review", ())
    assert verdict.error_code == "undecodable"
    assert body["error"] == {"code": "undecodable", "message": "no frame"}
    assert body["timings_ms"] == {}


def test_the_publisher_refuses_a_verdict_that_breaks_the_schema():
    verdict = v.error_verdict(JOB, v.VideoFacts(), "too_long", "x", CTX, {})
    with pytest.raises(jsonschema.ValidationError):
        message_body(dataclasses.replace(verdict, decision="allow"))


def test_a_published_verdict_reads_back_as_the_same_record():
    for verdict in (ok(), v.error_verdict(JOB, v.VideoFacts(), "too_large", "big", CTX,
                                          {"fetch": 3.0})):
        assert v.from_json(json.loads(message_body(verdict))) == verdict


def test_reading_back_validates():
    body = v.to_json(ok())
    body["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        v.from_json(body)


def test_an_optional_field_is_left_out_of_the_json_while_it_is_none():
    # How a later schema version adds a field: older verdicts keep their exact form.
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class WithCache(v.Verdict):
        cache: str | None = v.optional()

    base = ok()
    plain = WithCache(**{f.name: getattr(base, f.name) for f in dataclasses.fields(base)})
    assert v.to_json(plain) == v.to_json(base)
    assert list(v.to_json(dataclasses.replace(plain, cache="exact")))[-1] == "cache"


def test_an_unknown_stage_is_an_error_not_a_silent_key():
    with pytest.raises(TypeError):
        v.Timings.from_ms({"fetch": 1.0, "fecth": 2.0})


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


def test_a_version_1_verdict_still_validates_and_reads_back_in_its_own_form():
    v.validate(V1_VERDICT)
    assert v.to_json(v.from_json(V1_VERDICT)) == V1_VERDICT
    with pytest.raises(jsonschema.ValidationError):
        v.validate({**V1_VERDICT, "schema": "modfleet.verdict/v2"})  # lacks v2's fields
    with pytest.raises(jsonschema.ValidationError):
        v.validate({**V1_VERDICT, "cache_hit": False})  # v1 has no such field


def test_both_schema_versions_ship_and_an_unknown_one_is_refused():
    assert v.schema("modfleet.verdict/v1")["properties"]["schema"]["const"] == \
        "modfleet.verdict/v1"
    with pytest.raises(ValueError):
        v.schema("modfleet.verdict/v9")
