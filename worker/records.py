"""The small frozen records that pass between the worker's stages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Job:
    """One object to moderate, as named by a queue message (etag/size when the event carries them)."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class ReceivedMessage:
    """An SQS message as received: identity, body and timing for the queue-wait metric."""

    message_id: str
    receipt_handle: str
    body: str
    sent_at_ms: int
    receive_count: int
    attributes: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class ParsedMessage:
    """What a body asked for: jobs to run, or an S3 test event to acknowledge and drop."""

    jobs: tuple[Job, ...]
    kind: str  # "s3", "sns+s3", "eventbridge", "direct", "test_event"
