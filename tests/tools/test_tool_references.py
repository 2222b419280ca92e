"""Reading S3 keys out of every accepted message format, and durations for --older-than."""

from __future__ import annotations

import json

import pytest

from tools.ops.durations import parse_duration
from tools.ops.exceptions import InvalidRequest
from tools.ops.references import ObjectRef, object_refs


def s3_event(*keys: str) -> dict:
    return {"Records": [{"eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": "b"}, "object": {"key": k}}} for k in keys]}


def test_s3_event_keys_are_url_decoded_with_plus_for_space():
    body = json.dumps(s3_event("users/42/clip+1%2B2.mp4", "a%2Fb.mkv"))
    assert object_refs(body) == (ObjectRef("b", "users/42/clip 1+2.mp4"), ObjectRef("b", "a/b.mkv"))


def test_sns_wrapped_eventbridge_and_direct_jobs():
    sns = json.dumps({"Type": "Notification", "Message": json.dumps(s3_event("x+y.mp4"))})
    bridge = json.dumps({"source": "aws.s3", "detail-type": "Object Created",
                         "detail": {"bucket": {"name": "b"}, "object": {"key": "x y.mp4"}}})
    direct = json.dumps({"bucket": "b", "key": "x+y.mp4", "version_id": "v1"})
    assert object_refs(sns) == (ObjectRef("b", "x y.mp4"),)
    assert object_refs(bridge) == (ObjectRef("b", "x y.mp4"),)
    assert object_refs(direct) == (ObjectRef("b", "x+y.mp4"),)  # direct keys are literal


@pytest.mark.parametrize("body", ["not json", "[]", "{}", '{"Records": [{"s3": {}}]}',
                                  '{"Type": "Notification", "Message": "nope"}',
                                  '{"Event": "s3:TestEvent"}', '{"bucket": 1, "key": 2}'])
def test_unreadable_bodies_refer_to_nothing_and_never_raise(body):
    assert object_refs(body) == ()


@pytest.mark.parametrize("text,seconds", [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200),
                                          ("1h30m", 5400), ("7d", 604800), ("1w", 604800),
                                          ("0.5m", 30)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "1h-", "-5", "h"])
def test_bad_durations_are_refused(text):
    with pytest.raises(InvalidRequest):
        parse_duration(text)
