"""SQS helpers shared by the tools: queue attributes, redrive lookups, batch calls with retries.

Every function takes a boto3 SQS client; the commands build one from the settings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_exponential

from tools.ops.exceptions import AwsCallFailed, InvalidRequest

BATCH_LIMIT = 10  # SQS's limit on entries per *Batch call
T = TypeVar("T")


@dataclass(frozen=True)
class EntryFailure:
    """One entry of a batch call that failed, as SQS reported it."""

    id: str
    code: str
    message: str
    sender_fault: bool


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch call did: SQS's Successful entries and the entries that finally failed."""

    succeeded: tuple[dict[str, Any], ...]
    failed: tuple[EntryFailure, ...]


def call_batch(call: Callable[..., dict[str, Any]], entries: Sequence[dict[str, Any]], *,
               attempts: int = 4, sleep: Callable[[float], None] = time.sleep) -> BatchOutcome:
    """Run one SQS *Batch call, retrying only the entries that failed through no fault of ours.

    A whole-call failure (after botocore's own retries) raises ``AwsCallFailed``; per-entry
    failures with ``SenderFault`` are final at once, the others are retried with backoff.
    """
    pending = {entry["Id"]: entry for entry in entries}
    succeeded: list[dict[str, Any]] = []
    failed: dict[str, EntryFailure] = {}

    def attempt() -> bool:
        response = aws_call(call, Entries=list(pending.values()))
        for ok in response.get("Successful", []):
            succeeded.append(ok)
            pending.pop(ok["Id"], None)
            failed.pop(ok["Id"], None)
        for bad in response.get("Failed", []):
            failure = EntryFailure(bad["Id"], bad.get("Code", ""), bad.get("Message", ""),
                                   bool(bad.get("SenderFault")))
            failed[bad["Id"]] = failure
            if failure.sender_fault:
                pending.pop(bad["Id"], None)
        return bool(pending)

    Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=0.2, max=5),
             retry=retry_if_result(bool), retry_error_callback=lambda state: True,
             sleep=sleep)(attempt)
    return BatchOutcome(tuple(succeeded), tuple(failed.values()))


def aws_call(call: Callable[..., T], **kwargs: Any) -> T:
    """Call a boto3 operation; wrap its failure (botocore has already retried) for the caller."""
    try:
        return call(**kwargs)
    except (ClientError, BotoCoreError) as exc:
        name = getattr(getattr(call, "func", call), "__name__", "AWS call")  # through partial()
        raise AwsCallFailed(f"{name} failed: {exc}") from exc


def queue_attributes(sqs: Any, queue_url: str) -> dict[str, str]:
    """All attributes of a queue."""
    response = aws_call(sqs.get_queue_attributes, QueueUrl=queue_url, AttributeNames=["All"])
    return response.get("Attributes", {})


@dataclass(frozen=True)
class QueueDepth:
    """A queue's approximate message counts, as SQS reports them."""

    visible: int
    in_flight: int  # received, not yet deleted or visible again
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


DEPTH_ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed")


def depth_of(attributes: dict[str, str]) -> QueueDepth:
    """The counts in a GetQueueAttributes answer (missing ones count 0)."""
    visible, in_flight, delayed = (int(attributes.get(name, 0)) for name in DEPTH_ATTRIBUTES)
    return QueueDepth(visible, in_flight, delayed)


def queue_depth(sqs: Any, queue_url: str) -> QueueDepth:
    """A queue's counts: the one place the tools and the lab read them."""
    response = aws_call(sqs.get_queue_attributes, QueueUrl=queue_url,
                        AttributeNames=list(DEPTH_ATTRIBUTES))
    return depth_of(response["Attributes"])


def queue_arn(sqs: Any, queue_url: str) -> str:
    """The ARN of a queue."""
    response = aws_call(sqs.get_queue_attributes, QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return response["Attributes"]["QueueArn"]


def queue_url_from_arn(sqs: Any, arn: str) -> str:
    """The URL of the queue an ARN names (``arn:aws:sqs:region:account:name``)."""
    *_, account, name = arn.split(":")
    return aws_call(sqs.get_queue_url, QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def redrive_target_arn(attributes: dict[str, str]) -> str | None:
    """The dead-letter queue ARN a queue's RedrivePolicy names, if any."""
    policy = attributes.get("RedrivePolicy")
    return json.loads(policy).get("deadLetterTargetArn") if policy else None


def is_fifo(queue_url: str) -> bool:
    return queue_url.rstrip("/").endswith(".fifo")


def dead_letter_source(sqs: Any, dlq_url: str) -> str:
    """The one queue whose redrive policy names this dead-letter queue; refuse when ambiguous."""
    paginator = sqs.get_paginator("list_dead_letter_source_queues")
    try:
        sources = [url for page in paginator.paginate(QueueUrl=dlq_url)
                   for url in page.get("queueUrls", [])]
    except (ClientError, BotoCoreError) as exc:
        raise AwsCallFailed(f"ListDeadLetterSourceQueues failed for {dlq_url}: {exc}") from exc
    if len(sources) == 1:
        return sources[0]
    if not sources:
        raise InvalidRequest(f"no queue names {dlq_url} in its redrive policy; pass --to URL")
    raise InvalidRequest(f"{len(sources)} queues use {dlq_url} as their dead-letter queue "
                         f"({', '.join(sorted(sources))}); pick one with --to URL")
