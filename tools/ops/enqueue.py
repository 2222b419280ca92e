"""Direct jobs for backfills: ``{"bucket", "key"}`` bodies, ten per SendMessageBatch."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from more_itertools import chunked

from tools.ops.exceptions import AwsCallFailed
from tools.ops.queues import BATCH_LIMIT, call_batch, is_fifo


@dataclass(frozen=True)
class DirectJob:
    """The worker's direct-job contract."""

    bucket: str
    key: str
    version_id: str | None = None

    def body(self) -> str:
        doc = {"bucket": self.bucket, "key": self.key}
        if self.version_id:
            doc["version_id"] = self.version_id
        return json.dumps(doc)


@dataclass(frozen=True)
class EnqueueFailure:
    key: str
    code: str
    message: str


@dataclass(frozen=True)
class EnqueueReport:
    """What enqueue did (see tools/README.md for the JSON form)."""

    queue_url: str
    bucket: str
    sent: int
    failed: tuple[EnqueueFailure, ...]
    aborted: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"command": "enqueue", "queue_url": self.queue_url, "bucket": self.bucket,
                "sent": self.sent, "failed": [asdict(f) for f in self.failed],
                "aborted": self.aborted}


def keys_from_lines(lines: TextIO | Iterable[str]) -> Iterator[str]:
    """Keys one per line; blank lines and lines starting with # are skipped, no other trimming
    beyond the line end (keys may start or end with spaces)."""
    for line in lines:
        key = line.rstrip("\r\n")
        if key.strip() and not key.lstrip().startswith("#"):
            yield key


def keys_from_file(path: Path) -> list[str]:
    with path.open(encoding="utf-8") as handle:
        return list(keys_from_lines(handle))


def keys_under_prefix(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """Every key of the bucket under ``prefix`` (ListObjectsV2, paginated)."""
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            yield from (obj["Key"] for obj in page.get("Contents", []))
    except (ClientError, BotoCoreError) as exc:
        raise AwsCallFailed(f"cannot list s3://{bucket}/{prefix}: {exc}") from exc


def enqueue_jobs(sqs: Any, queue_url: str, bucket: str, keys: Iterable[str],
                 on_sent: Callable[[float], None] = lambda n: None) -> EnqueueReport:
    """Send one direct job per key, ten per batch; report entries that failed after retries."""
    fifo, sent, failed = is_fifo(queue_url), 0, []
    send = functools.partial(sqs.send_message_batch, QueueUrl=queue_url)
    for chunk in chunked((DirectJob(bucket, key) for key in keys), BATCH_LIMIT):
        by_id = {f"j{i}": job for i, job in enumerate(chunk)}
        try:
            outcome = call_batch(send, [_entry(i, job, fifo) for i, job in by_id.items()])
        except AwsCallFailed as exc:
            return EnqueueReport(queue_url, bucket, sent, tuple(failed), aborted=str(exc))
        sent += len(outcome.succeeded)
        failed += [EnqueueFailure(by_id[f.id].key, f.code, f.message) for f in outcome.failed]
        on_sent(len(chunk))
    return EnqueueReport(queue_url, bucket, sent, tuple(failed))


def _entry(entry_id: str, job: DirectJob, fifo: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"Id": entry_id, "MessageBody": job.body()}
    if fifo:
        # One group per object keeps jobs parallel; the content-derived id makes a re-run of the
        # same backfill within SQS's 5-minute window a no-op instead of a duplicate.
        entry["MessageGroupId"] = hashlib.sha256(job.key.encode()).hexdigest()[:64]
        entry["MessageDeduplicationId"] = hashlib.sha256(job.body().encode()).hexdigest()
    return entry
