"""The small frozen records that pass between the worker's stages (a received message is the
queue port's: ``worker.queue_port.ReceivedMessage``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Job:
    """One object to moderate, as named by a queue message (etag/size when the event carries them)."""

    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class ParsedMessage:
    """What a body asked for: jobs to run, or an S3 test event to acknowledge and drop."""

    jobs: tuple[Job, ...]
    kind: str  # "s3", "sns+s3", "eventbridge", "direct", "test_event"
