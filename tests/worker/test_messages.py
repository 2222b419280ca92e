import json

import pytest

from worker.exceptions import PoisonMessage
from worker.records import Job
from worker.messages import parse_body


def s3_event(*keys, bucket="uploads", version="v1"):
    return {"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
                         "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": bucket},
                                "object": {"key": k, "size": 10, "eTag": "abc",
                                           "versionId": version}}} for k in keys]}


def test_s3_event_keys_are_url_decoded_and_each_record_is_a_job():
    parsed = parse_body(json.dumps(s3_event("users/42/clip+1.mp4", "a%2Fb%C3%A9+%2B.mp4")))
    assert parsed.kind == "s3"
    assert parsed.jobs == (Job("uploads", "users/42/clip 1.mp4", "v1", "abc", 10),
                           Job("uploads", "a/bé +.mp4", "v1", "abc", 10))


def test_test_event_is_acknowledged_without_jobs():
    body = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "uploads"}
    assert parse_body(json.dumps(body)).kind == "test_event"
    envelope = {"Type": "Notification", "Message": json.dumps(body)}
    assert parse_body(json.dumps(envelope)).kind == "test_event"


def test_sns_envelope_around_s3_event():
    envelope = {"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                "Message": json.dumps(s3_event("clip+2.mp4"))}
    parsed = parse_body(json.dumps(envelope))
    assert parsed.kind == "sns+s3" and parsed.jobs[0].key == "clip 2.mp4"


def test_eventbridge_object_created():
    event = {"version": "0", "source": "aws.s3", "detail-type": "Object Created",
             "detail": {"bucket": {"name": "uploads"},
                        "object": {"key": "eb/clip.mp4", "size": 5, "etag": "e",
                                   "version-id": "v9"}}}
    assert parse_body(json.dumps(event)).jobs == (Job("uploads", "eb/clip.mp4", "v9", "e", 5),)


def test_direct_job():
    parsed = parse_body(json.dumps({"bucket": "b", "key": "k k.mp4", "version_id": "v"}))
    assert parsed.kind == "direct" and parsed.jobs == (Job("b", "k k.mp4", "v"),)


@pytest.mark.parametrize("body, reason", [
    ("not json", "not JSON"),
    ("[1, 2]", "not an object"),
    ('{"hello": "world"}', "no S3 event"),
    ('{"Records": []}', "non-empty list"),
    ('{"Records": [{"s3": {}}]}', "missing"),
    (json.dumps({"Records": [{"eventName": "ObjectRemoved:Delete", "s3": {}}]}), "ObjectRemoved"),
    ('{"bucket": "", "key": "k"}', "non-empty string"),
    ('{"bucket": "b", "key": "k", "version_id": 3}', "version_id must be a string"),
    ('{"Type": "Notification", "Message": "oops"}', "SNS Message is not JSON"),
])
def test_poison_bodies_say_why(body, reason):
    with pytest.raises(PoisonMessage, match=reason):
        parse_body(body)
