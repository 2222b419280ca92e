"""A dead letter as received from the DLQ, the filters that select it, and its replayed, rotated
and exported forms."""

from __future__ import annotations

import base64
import datetime as dt
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
from worker.queue_port import ATTR_SOURCE_QUEUE as SOURCE_QUEUE
from worker.settle import DEAD_LETTER_CODES

# Set by replay-dlq on what it hands back (the worker's own attributes come from worker.queue_port).
REPLAY_COUNT = "modfleet.replay_count"
# Set when a scan rotates a letter to the back of the DLQ, or replay-dlq hands it back: its
# original SentTimestamp (ms), so that its age survives the new message (``sent_at_s``).
FIRST_SENT_AT = "modfleet.first_sent_at"
MAX_ATTRIBUTES = 10  # SQS's limit on message attributes
# What --error-code calls a message SQS's own redrive moved (maxReceiveCount): it has no ERROR_CODE.
REDRIVE_CODE = "redrive"
# Every value --error-code accepts: the codes the worker writes, and SQS's redrive.
KNOWN_CODES = tuple(sorted(DEAD_LETTER_CODES | {REDRIVE_CODE}))
PREVIEW_CHARS = 120  # of the body, in a dry run's listing
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
        """When the message first entered SQS (a redriven message keeps its original time; a
        rotated or replayed one carries it in ``modfleet.first_sent_at``)."""
        stamp = self._string(FIRST_SENT_AT) or self.system.get("SentTimestamp")
        return int(stamp) / 1000 if stamp else None

    @property
    def permanent(self) -> bool:
        """Its body names no video (this version's parser reads no job in it, as the worker found
        when it wrote ``poison_body``): replaying it only dead-letters it again."""
        return not self.refs

    @property
    def can_rotate(self) -> bool:
        """Whether a rotated copy can carry its original send time (SQS allows ten attributes)."""
        return FIRST_SENT_AT in self.attributes or len(self.attributes) < MAX_ATTRIBUTES

    @property
    def body_preview(self) -> str:
        flat = " ".join(self.body.split())
        return flat if len(flat) <= PREVIEW_CHARS else flat[:PREVIEW_CHARS - 1] + "…"

    @property
    def replay_count(self) -> int:
        try:
            return int(float(self._string(REPLAY_COUNT) or 0))
        except ValueError:
            return 0

    def replay_entry(self, entry_id: str, fifo: bool) -> dict[str, Any]:
        """A SendMessageBatch entry: same body and attributes, the original send time kept and
        the replay counter incremented, as far as SQS's ten attributes allow (the time first).

        The send time rides along so that a letter that fails again and is dead-lettered anew
        (the worker copies its attributes) keeps its age for ``--older-than``."""
        attributes = self._with_first_sent_at()
        if REPLAY_COUNT in attributes or len(attributes) < MAX_ATTRIBUTES:  # else no room: SQS
            attributes[REPLAY_COUNT] = {"DataType": "Number",  # refuses an eleventh attribute
                                        "StringValue": str(self.replay_count + 1)}
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
        same body and attributes, plus its original send time (see ``can_rotate``)."""
        return {"Id": entry_id, "MessageBody": self.body,
                "MessageAttributes": self._with_first_sent_at(), "DelaySeconds": delay_s}

    def _with_first_sent_at(self) -> dict[str, dict[str, Any]]:
        attributes = {name: _sendable(value) for name, value in self.attributes.items()}
        stamp = self.system.get("SentTimestamp")
        if FIRST_SENT_AT not in attributes and stamp and len(attributes) < MAX_ATTRIBUTES:
            attributes[FIRST_SENT_AT] = {"DataType": "Number", "StringValue": stamp}
        return attributes

    def describe(self, now_s: float) -> dict[str, Any]:
        """The JSON form listed by --dry-run."""
        return {"message_id": self.message_id, "keys": [ref.key for ref in self.refs],
                "buckets": sorted({ref.bucket for ref in self.refs}),
                "error_code": self.error_code, "reason": self.reason, "age_s": self._age(now_s),
                "replay_count": self.replay_count, "permanent": self.permanent,
                "body_preview": self.body_preview}

    def export_record(self, now_s: float) -> dict[str, Any]:
        """One line of ``dlq export``: everything needed to archive the letter or send it again
        (message attributes in SendMessage's form, binary values base64-encoded)."""
        sent = self.sent_at_s
        return {"message_id": self.message_id,
                "sent_at": None if sent is None else _iso(sent), "age_s": self._age(now_s),
                "error_code": self.error_code, "reason": self.reason,
                "source_queue": self._string(SOURCE_QUEUE), "replay_count": self.replay_count,
                "receive_count": int(self.system.get("ApproximateReceiveCount", 0) or 0),
                "keys": [ref.key for ref in self.refs], "body": self.body,
                "message_attributes": {name: _json_safe(_sendable(value))
                                       for name, value in self.attributes.items()}}

    def _age(self, now_s: float) -> float | None:
        return None if self.sent_at_s is None else round(now_s - self.sent_at_s, 3)

    def _string(self, name: str) -> str | None:
        value = self.attributes.get(name)
        return value.get("StringValue") if value else None


@dataclass(frozen=True)
class Selector:
    """Which dead letters to act on; every given filter must hold (an empty selector takes all)."""

    match: re.Pattern[str] | None = None
    error_code: str | None = None
    older_than_s: float | None = None

    @classmethod
    def build(cls, match: str | None = None, error_code: str | None = None,
              older_than: str | None = None) -> Selector:
        """Validate the filter flags; a bad regex or duration, or an error code that no dead
        letter can carry (a typo such as ``poisn_body``), raises InvalidRequest."""
        try:
            pattern = re.compile(match) if match is not None else None
        except re.error as exc:
            raise InvalidRequest(f"--match: not a regular expression: {exc}") from None
        if error_code and error_code not in KNOWN_CODES:
            raise InvalidRequest(f"--error-code: no dead letter carries {error_code!r}; the codes "
                                 f"are {', '.join(KNOWN_CODES)}")
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


def _json_safe(value: dict[str, Any]) -> dict[str, Any]:
    binary = value.get("BinaryValue")
    if isinstance(binary, (bytes, bytearray)):
        return {**value, "BinaryValue": base64.b64encode(binary).decode("ascii")}
    return value


def _iso(epoch_s: float) -> str:
    stamp = dt.datetime.fromtimestamp(epoch_s, dt.timezone.utc)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")
