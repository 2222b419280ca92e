"""The naive baseline: a sequential worker as a typical first version would be written.

One message at a time with boto3, download the object, decode every frame with PyAV and keep N,
run the model on a batch of one, publish, delete.  No overlap between network, decoding and the
model, no batching, no seeking.  It lives with the benchmarks, never in the product.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

from model.api import Backend, Batch, Clip
from tools.lab.bench.decoding import decode_every_frame


@dataclass(frozen=True)
class NaiveResult:
    """Videos the naive worker settled and the seconds from its first receive to its last delete."""

    videos: int
    seconds: float

    @property
    def videos_per_s(self) -> float:
        return self.videos / self.seconds


class NaiveWorker:
    """``run(expected)``: settle messages one by one until ``expected`` are done or none left."""

    def __init__(self, backend: Backend, sqs: Any, s3: Any, sns: Any, queue_url: str,
                 topic_arn: str, frames: int, size: int) -> None:
        self.backend, self.sqs, self.s3, self.sns = backend, sqs, s3, sns
        self.queue_url, self.topic_arn, self.frames, self.size = queue_url, topic_arn, frames, size

    def run(self, expected: int,
            advance: Callable[[float], None] = lambda n: None) -> NaiveResult:
        done, started, empty_polls = 0, time.perf_counter(), 0
        while done < expected and empty_polls < 3:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=1,
                                                WaitTimeSeconds=1)
            messages = response.get("Messages", [])
            empty_polls = 0 if messages else empty_polls + 1
            for message in messages:
                done += self.handle(message)
                advance(1)
        return NaiveResult(done, time.perf_counter() - started)

    def handle(self, message: dict) -> int:
        """Moderate the videos of one S3 notification; return how many."""
        records = json.loads(message["Body"]).get("Records", [])
        for record in records:
            bucket = record["s3"]["bucket"]["name"]
            key = unquote_plus(record["s3"]["object"]["key"])
            with tempfile.TemporaryDirectory(prefix="modfleet-naive-") as tmp:
                path = Path(tmp) / "video"
                self.s3.download_file(bucket, key, str(path))
                frames = decode_every_frame(path, self.frames, self.size).frames
            output = self.backend.infer(Batch(rows=(Clip(frames, (0,) * self.frames, key),)))[0]
            verdict = {"bucket": bucket, "key": key, "decision": output.decision,
                       "labels": [label.name for label in output.labels]}
            self.sns.publish(TopicArn=self.topic_arn, Message=json.dumps(verdict))
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return len(records)
