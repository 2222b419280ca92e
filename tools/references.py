"""Which S3 objects a queue message refers to, read leniently for filtering.

The worker's parser (worker/messages.py) rejects anything malformed as poison; a dead-letter
queue is exactly where the malformed ones live, so this reader never raises: a body it cannot read
refers to no object, and so never matches ``--match``.  Formats: S3 event notifications
(URL-encoded keys, ``+`` for a space, several Records), S3 events inside an SNS envelope,
EventBridge "Object Created" events, and direct jobs ``{"bucket", "key", "version_id"?}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class ObjectRef:
    """One S3 object a message refers to."""

    bucket: str
    key: str


def object_refs(body: str) -> tuple[ObjectRef, ...]:
    """Every object the body refers to, in order; () for a body of no known format."""
    return _refs(_load(body), depth=0)


def _refs(doc: Any, depth: int) -> tuple[ObjectRef, ...]:
    if not isinstance(doc, dict):
        return ()
    if isinstance(doc.get("Records"), list):
        return tuple(r for r in map(_s3_record, doc["Records"]) if r)
    if doc.get("Type") == "Notification" and depth == 0:
        return _refs(_load(doc.get("Message")), depth + 1)
    if doc.get("source") == "aws.s3" and doc.get("detail-type") == "Object Created":
        return _optional(_eventbridge(doc.get("detail")))
    if isinstance(doc.get("bucket"), str) and isinstance(doc.get("key"), str):
        return (ObjectRef(doc["bucket"], doc["key"]),)
    return ()


def _s3_record(record: Any) -> ObjectRef | None:
    try:
        # S3 notifications URL-encode keys with + for a space; EventBridge and direct jobs do not.
        s3 = record["s3"]
        return ObjectRef(s3["bucket"]["name"], unquote_plus(s3["object"]["key"]))
    except (KeyError, TypeError, AttributeError):
        return None


def _eventbridge(detail: Any) -> ObjectRef | None:
    try:
        return ObjectRef(detail["bucket"]["name"], detail["object"]["key"])
    except (KeyError, TypeError):
        return None


def _optional(ref: ObjectRef | None) -> tuple[ObjectRef, ...]:
    return (ref,) if ref else ()


def _load(text: Any) -> Any:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
