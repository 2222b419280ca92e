"""A dead letter as received from the DLQ, the filters that select it, and its replayed form."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tools.ops.durations import parse_duration
from tools.ops.exceptions import InvalidRequest
from tools.ops.references import ObjectRef, object_refs
from worker.queue_port import ATTR_ERROR_CODE as ERROR_CODE
from worker.queue_port import ATTR_REASON as REASON

# Set by replay-dlq on what it hands back (the worker's own attributes come from worker.queue_port).
REPLAY_COUNT = "modfleet.replay_count"
# Set when replay-dlq rotates a message to the back of the DLQ: its original SentTimestamp (ms).
FIRST_SENT_AT = "modfleet.first_sent_at"
MAX_ATTRIBUTES = 10  # SQS's limit on message attributes
# What --error-code calls a message SQS's own redrive moved (maxReceiveCount): it has no ERROR_CODE.
REDRIVE_CODE = "redrive"
# A FIFO message always has a group; this only covers a standard DLQ feeding a FIFO destination.
FALLBACK_GROUP = "modfleet-replay"


@dataclass(frozen=True)
class DeadLetter:
    """One received DLQ message: what it says, what it refers to, and how to hand it back."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: Mapping[str, Mapping[str, Any]]
    system: Mapping[str, str]
    refs: tuple[ObjectRef, ...]

    @classmethod
    def from_sqs(cls, message: Mapping[str, Any]) -> DeadLetter:
        return cls(message_id=message["MessageId"], receipt_handle=message["ReceiptHandle"],
                   body=message["Body"], attributes=message.get("MessageAttributes", {}),
                   system=message.get("Attributes", {}), refs=object_refs(message["Body"]))

    @property
    def error_code(self) -> str:
        """The worker's error code, or ``redrive`` when SQS moved it after maxReceiveCount."""
        return self._string(ERROR_CODE) or REDRIVE_CODE

    @property
    def reason(self) -> str | None:
        return self._string(REASON)

    @property
    def sent_at_s(self) -> float | None:
        """When the message entered SQS (a redriven message keeps its original time; a rotated
        one carries it in ``modfleet.first_sent_at``)."""
        stamp = self._string(FIRST_SENT_AT) or self.system.get("SentTimestamp")
        return int(stamp) / 1000 if stamp else None

    @property
    def replay_count(self) -> int:
        try:
            return int(float(self._string(REPLAY_COUNT) or 0))
        except ValueError:
            return 0

    def replay_entry(self, entry_id: str, fifo: bool) -> dict[str, Any]:
        """A SendMessageBatch entry: same body and attributes, the replay counter incremented."""
        attributes = {name: _sendable(value) for name, value in self.attributes.items()}
        attributes[REPLAY_COUNT] = {"DataType": "Number", "StringValue": str(self.replay_count + 1)}
        entry: dict[str, Any] = {"Id": entry_id, "MessageBody": self.body,
                                 "MessageAttributes": attributes}
        if fifo:
            entry["MessageGroupId"] = self.system.get("MessageGroupId") or FALLBACK_GROUP
            # A fresh id: the original's is still inside SQS's 5-minute deduplication window
            # when a replay follows quickly, and the send would be silently dropped.
            entry["MessageDeduplicationId"] = uuid.uuid4().hex
        return entry

    def rotation_entry(self, entry_id: str, delay_s: int) -> dict[str, Any]:
        """A SendMessageBatch entry that puts this message back in its own DLQ, delayed: the
        same body and attributes, plus its original send time where there is room for it."""
        attributes = {name: _sendable(value) for name, value in self.attributes.items()}
        stamp = self.system.get("SentTimestamp")
        if FIRST_SENT_AT not in attributes and stamp and len(attributes) < MAX_ATTRIBUTES:
            attributes[FIRST_SENT_AT] = {"DataType": "Number", "StringValue": stamp}
        return {"Id": entry_id, "MessageBody": self.body, "MessageAttributes": attributes,
                "DelaySeconds": delay_s}

    def describe(self, now_s: float) -> dict[str, Any]:
        """The JSON form listed by --dry-run."""
        age = None if self.sent_at_s is None else round(now_s - self.sent_at_s, 3)
        return {"message_id": self.message_id, "keys": [ref.key for ref in self.refs],
                "buckets": sorted({ref.bucket for ref in self.refs}),
                "error_code": self.error_code, "reason": self.reason, "age_s": age,
                "replay_count": self.replay_count}

    def _string(self, name: str) -> str | None:
        value = self.attributes.get(name)
        return value.get("StringValue") if value else None


@dataclass(frozen=True)
class Selector:
    """Which dead letters to replay; every given filter must hold (an empty selector takes all)."""

    match: re.Pattern[str] | None = None
    error_code: str | None = None
    older_than_s: float | None = None

    @classmethod
    def build(cls, match: str | None = None, error_code: str | None = None,
              older_than: str | None = None) -> Selector:
        """Validate the filter flags; a bad regex or duration raises InvalidRequest."""
        try:
            pattern = re.compile(match) if match is not None else None
        except re.error as exc:
            raise InvalidRequest(f"--match: not a regular expression: {exc}") from None
        return cls(pattern, error_code or None,
                   parse_duration(older_than) if older_than is not None else None)

    @property
    def is_empty(self) -> bool:
        return self.match is None and self.error_code is None and self.older_than_s is None

    def selects(self, letter: DeadLetter, now_s: float) -> bool:
        if self.match is not None and not any(self.match.search(r.key) for r in letter.refs):
            return False
        if self.error_code is not None and letter.error_code != self.error_code:
            return False
        if self.older_than_s is not None:
            sent = letter.sent_at_s
            return sent is not None and now_s - sent >= self.older_than_s
        return True

    def describe(self) -> dict[str, Any]:
        return {"match": self.match.pattern if self.match else None, "error_code": self.error_code,
                "older_than_s": self.older_than_s}


def _sendable(value: Mapping[str, Any]) -> dict[str, Any]:
    # Received attributes carry empty list fields that SendMessage rejects; keep only set values.
    return {k: v for k, v in value.items()
            if k in {"DataType", "StringValue", "BinaryValue"} and v is not None}
