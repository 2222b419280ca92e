"""Turn a queue message body into jobs.

Accepted: S3 event notifications (URL-encoded keys, ``+`` for a space, several Records), the
``s3:TestEvent``, S3 events wrapped in an SNS envelope, EventBridge "Object Created" events, and
direct jobs ``{"bucket", "key", "version_id"?}``.  Anything else raises ``PoisonMessage``: the
caller dead-letters it at once rather than letting it come back until the redrive gives up.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_plus

from worker.exceptions import PoisonMessage
from worker.records import Job, ParsedMessage

MAX_BODY_DEPTH = 2  # an SNS envelope around an S3 event; deeper nesting is not a format we accept


def parse_body(body: str) -> ParsedMessage:
    """Parse one SQS body; raise PoisonMessage naming why when it is no accepted format."""
    return _parse(_load_json(body), depth=0)


def _parse(doc: Any, depth: int) -> ParsedMessage:
    if not isinstance(doc, dict):
        raise PoisonMessage(f"body is JSON but not an object ({type(doc).__name__})")
    if doc.get("Event") == "s3:TestEvent":
        return ParsedMessage(jobs=(), kind="test_event")
    if "Records" in doc:
        return ParsedMessage(jobs=_s3_records(doc["Records"]), kind="s3")
    if doc.get("Type") == "Notification" and "Message" in doc and depth < MAX_BODY_DEPTH:
        inner = _parse(_load_json(doc["Message"], "SNS Message"), depth + 1)
        kind = "test_event" if inner.kind == "test_event" else "sns+s3"
        return ParsedMessage(jobs=inner.jobs, kind=kind)
    if doc.get("source") == "aws.s3" and doc.get("detail-type") == "Object Created":
        return ParsedMessage(jobs=(_eventbridge_job(doc.get("detail")),), kind="eventbridge")
    if "bucket" in doc and "key" in doc:
        return ParsedMessage(jobs=(_direct_job(doc),), kind="direct")
    raise PoisonMessage("body is no S3 event, SNS envelope, EventBridge event or direct job")


def _load_json(text: Any, what: str = "body") -> Any:
    if not isinstance(text, str):
        raise PoisonMessage(f"{what} is not a string")
    try:
        return json.loads(text)
    except ValueError as exc:
        raise PoisonMessage(f"{what} is not JSON: {exc}") from None


def _s3_records(records: Any) -> tuple[Job, ...]:
    if not isinstance(records, list) or not records:
        raise PoisonMessage("Records is not a non-empty list")
    jobs = []
    for index, record in enumerate(records):
        try:
            if not str(record.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
                raise PoisonMessage(f"Records[{index}] is {record['eventName']}, not ObjectCreated")
            s3 = record["s3"]
            obj = s3["object"]
            jobs.append(Job(bucket=_text(s3["bucket"]["name"]), key=_text(unquote_plus(obj["key"])),
                            version_id=obj.get("versionId") or None, etag=obj.get("eTag"),
                            size=_size(obj.get("size"))))
        except (KeyError, TypeError, AttributeError) as exc:
            raise PoisonMessage(f"Records[{index}] is not an S3 record: missing {exc}") from None
    return tuple(jobs)


def _eventbridge_job(detail: Any) -> Job:
    try:
        obj = detail["object"]
        return Job(bucket=_text(detail["bucket"]["name"]), key=_text(obj["key"]),
                   version_id=obj.get("version-id") or None, etag=obj.get("etag"),
                   size=_size(obj.get("size")))
    except (KeyError, TypeError) as exc:
        raise PoisonMessage(f"EventBridge detail lacks {exc}") from None


def _direct_job(doc: dict[str, Any]) -> Job:
    version = doc.get("version_id")
    if version is not None and not isinstance(version, str):
        raise PoisonMessage("direct job: version_id must be a string")
    return Job(bucket=_text(doc["bucket"]), key=_text(doc["key"]), version_id=version or None)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise PoisonMessage(f"expected a non-empty string, got {value!r}")
    return value


def _size(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or value < 0:
        raise PoisonMessage(f"object size is not a non-negative integer: {value!r}")
    return value
