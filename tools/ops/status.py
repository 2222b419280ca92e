"""What the queues hold now: depth, in flight, delayed, the dead-letter queue, the oldest message.

Age of the oldest message: SQS only publishes it as the CloudWatch metric
ApproximateAgeOfOldestMessage (per minute), so that is read first.  Where CloudWatch has no data
point (the embedded stack, a queue idle for a while, no permission) the tool peeks: it receives up
to ten messages with VisibilityTimeout 0, which leaves them visible but does count a receive.  On a
queue with a redrive policy a peek brings each message one receive closer to the dead-letter queue,
so by default it peeks only at queues without one (dead-letter queues); ``peek_all`` allows more.
A peek sees a sample, so its age is a lower bound.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tools.ops.queues import aws_call, is_fifo, queue_attributes, queue_url_from_arn, redrive_target_arn

PEEK_MESSAGES = 10
CLOUDWATCH_WINDOW = dt.timedelta(minutes=15)


@dataclass(frozen=True)
class QueueStatus:
    """One queue as status reports it (see tools/README.md for the JSON form)."""

    queue_url: str
    name: str
    fifo: bool
    visible: int
    in_flight: int
    delayed: int
    oldest_age_s: float | None
    oldest_age_source: str  # cloudwatch | peek | empty | unavailable
    max_receive_count: int | None
    dlq: QueueStatus | None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StatusReport:
    generated_at: str
    queues: tuple[QueueStatus, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"command": "status", "generated_at": self.generated_at,
                "queues": [q.as_dict() for q in self.queues]}


def fleet_status(sqs: Any, queue_urls: Sequence[str], *, cloudwatch: Any | None = None,
                 peek_all: bool = False, clock: Callable[[], float] = time.time) -> StatusReport:
    """Status of each queue and of the dead-letter queue its redrive policy names."""
    now = dt.datetime.fromtimestamp(clock(), dt.timezone.utc)
    queues = tuple(queue_status(sqs, url, cloudwatch=cloudwatch, peek_all=peek_all, clock=clock)
                   for url in queue_urls)
    return StatusReport(now.isoformat(timespec="seconds").replace("+00:00", "Z"), queues)


def queue_status(sqs: Any, queue_url: str, *, cloudwatch: Any | None = None,
                 peek_all: bool = False, clock: Callable[[], float] = time.time,
                 follow_redrive: bool = True) -> QueueStatus:
    """Status of one queue; with ``follow_redrive`` also of its dead-letter queue."""
    attrs = queue_attributes(sqs, queue_url)
    name = attrs.get("QueueArn", queue_url).rsplit(":", 1)[-1]
    visible = int(attrs.get("ApproximateNumberOfMessages", 0))
    in_flight = int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
    delayed = int(attrs.get("ApproximateNumberOfMessagesDelayed", 0))
    target = redrive_target_arn(attrs)
    may_peek = peek_all or target is None
    if visible + in_flight + delayed == 0:
        age, source = 0.0, "empty"
    else:
        age, source = oldest_age(sqs, queue_url, name, cloudwatch=cloudwatch, may_peek=may_peek,
                                 clock=clock)
    dlq = None
    if target and follow_redrive:
        dlq = queue_status(sqs, queue_url_from_arn(sqs, target), cloudwatch=cloudwatch,
                           peek_all=peek_all, clock=clock, follow_redrive=False)
    policy_count = _max_receive_count(attrs)
    return QueueStatus(queue_url, name, is_fifo(queue_url), visible, in_flight, delayed, age,
                       source, policy_count, dlq)


def oldest_age(sqs: Any, queue_url: str, name: str, *, cloudwatch: Any | None, may_peek: bool,
               clock: Callable[[], float]) -> tuple[float | None, str]:
    """(age in seconds, where it came from): CloudWatch, else a peek where allowed."""
    if cloudwatch is not None:
        age = _cloudwatch_age(cloudwatch, name, clock)
        if age is not None:
            return age, "cloudwatch"
    if may_peek:
        age = _peek_age(sqs, queue_url, clock)
        if age is not None:
            return age, "peek"
    return None, "unavailable"


def _cloudwatch_age(cloudwatch: Any, name: str, clock: Callable[[], float]) -> float | None:
    end = dt.datetime.fromtimestamp(clock(), dt.timezone.utc)
    try:
        points = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS", MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": name}], StartTime=end - CLOUDWATCH_WINDOW,
            EndTime=end, Period=60, Statistics=["Maximum"])["Datapoints"]
    except (ClientError, BotoCoreError):
        return None  # no permission or no CloudWatch at this endpoint: fall back to a peek
    if not points:
        return None
    return float(max(points, key=lambda p: p["Timestamp"])["Maximum"])


def _peek_age(sqs: Any, queue_url: str, clock: Callable[[], float]) -> float | None:
    response = aws_call(sqs.receive_message, QueueUrl=queue_url,
                        MaxNumberOfMessages=PEEK_MESSAGES, VisibilityTimeout=0, WaitTimeSeconds=0,
                        MessageSystemAttributeNames=["SentTimestamp"])
    stamps = [int(m["Attributes"]["SentTimestamp"]) for m in response.get("Messages", [])
              if "SentTimestamp" in m.get("Attributes", {})]
    return round(max(0.0, clock() - min(stamps) / 1000), 3) if stamps else None


def _max_receive_count(attrs: dict[str, str]) -> int | None:
    policy = attrs.get("RedrivePolicy")
    return int(json.loads(policy)["maxReceiveCount"]) if policy else None
