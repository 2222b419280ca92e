"""``SqsQueue``, the queue port's production implementation, against the embedded SQS (moto
server on loopback, through a real aiobotocore client)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from worker.aws import AsyncClients, boto3_client
from worker.exceptions import QueueCallFailed
from worker.queue_port import (ATTR_ERROR_CODE, ATTR_REASON, ATTR_SOURCE_QUEUE, MAX_BATCH,
                               ReceivedMessage)
from worker.sqs_queue import MAX_REASON, SqsQueue

JOB = json.dumps({"bucket": "b", "key": "k"})
TRACE = {"trace": {"DataType": "String", "StringValue": "t-1"}}


def _send(stack, body: str) -> None:
    boto3_client("sqs", stack.region, stack.endpoint_url).send_message(
        QueueUrl=stack.queue_url, MessageBody=body, MessageAttributes=TRACE)


async def _receive_body(queue: SqsQueue, body: str, visibility_s: int = 30) -> ReceivedMessage:
    """The message with ``body``; whatever else comes (the bucket's s3:TestEvent) is deleted."""
    for _ in range(20):
        for message in await queue.receive(10, wait_s=1, visibility_s=visibility_s):
            if message.body == body:
                return message
            await queue.delete([message])
    raise AssertionError(f"{body!r} never came")


async def _bodies(queue: SqsQueue) -> list[str]:
    """The bodies of what is visible now."""
    return [m.body for m in await queue.receive(10, wait_s=0, visibility_s=30)]


def _stale(message: ReceivedMessage) -> ReceivedMessage:
    return ReceivedMessage(message.message_id, "not-a-receipt-handle", message.body, 0, 1)


def _run(stack, scenario):
    async def with_queue():
        async with AsyncClients(stack.region, stack.endpoint_url) as aws:
            return await scenario(SqsQueue(aws.sqs, stack.queue_url, stack.dlq_url))
    return asyncio.run(with_queue())


def test_receive_extend_release_and_delete_answer_per_message(stack):
    _send(stack, JOB)

    async def scenario(queue: SqsQueue):
        first = await _receive_body(queue, JOB, visibility_s=1)
        extended = await queue.extend_visibility([first, _stale(first)], 60)
        await asyncio.sleep(1.5)  # past the visibility it was received with
        hidden = await _bodies(queue)
        await queue.release(first, 0)
        second = await _receive_body(queue, JOB)
        deleted = await queue.delete([second, _stale(second)])
        with pytest.raises(QueueCallFailed) as stale_release:
            await queue.release(_stale(second), 0)
        left = await _bodies(queue)
        return first, extended, hidden, second, deleted, stale_release.value, left

    first, extended, hidden, second, deleted, stale_release, left = _run(stack, scenario)
    assert first.receive_count == 1 and abs(first.sent_at_ms / 1000 - time.time()) < 60
    assert first.attributes["trace"]["StringValue"] == "t-1"
    assert extended.ok(first) and extended.failed == {"not-a-receipt-handle":
                                                      "ReceiptHandleIsInvalid"}
    assert JOB not in hidden  # extended, so not received again
    assert second.message_id == first.message_id and second.receive_count == 2
    assert second.receipt_handle != first.receipt_handle  # a new receive, a new handle
    assert deleted.ok(second) and not deleted.ok(_stale(second))
    assert stale_release.code == "ReceiptHandleIsInvalid"
    assert stale_release.operation == "sqs:ChangeMessageVisibility"
    assert JOB not in left  # deleted for good


def test_dead_letter_sends_the_body_with_why_and_its_own_attributes(stack):
    _send(stack, "[1, 2]")

    async def scenario(queue: SqsQueue):
        message = await _receive_body(queue, "[1, 2]")
        await queue.dead_letter(message, "x" * (MAX_REASON + 500), "poison_body")
        return queue.has_dead_letter_queue

    assert _run(stack, scenario) is True
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    (entry,) = sqs.receive_message(QueueUrl=stack.dlq_url, WaitTimeSeconds=1,
                                   MessageAttributeNames=["All"])["Messages"]
    attributes = {k: v["StringValue"] for k, v in entry["MessageAttributes"].items()}
    assert entry["Body"] == "[1, 2]"
    assert attributes == {ATTR_ERROR_CODE: "poison_body", ATTR_REASON: "x" * MAX_REASON,
                          ATTR_SOURCE_QUEUE: stack.queue_url, "trace": "t-1"}


def test_a_failed_call_raises_queue_call_failed_with_the_sqs_code(stack):
    async def scenario(queue: SqsQueue):
        missing = SqsQueue(queue.sqs, stack.queue_url + "-gone")
        with pytest.raises(QueueCallFailed) as failed:
            await missing.receive(1, wait_s=0, visibility_s=30)
        with pytest.raises(ValueError, match="limit"):
            await queue.delete([_stale(ReceivedMessage("m", "h", "", 0, 1))] * (MAX_BATCH + 1))
        with pytest.raises(ValueError, match="no dead-letter queue"):
            await missing.dead_letter(ReceivedMessage("m", "h", "", 0, 1), "why", "poison_body")
        return failed.value, missing.has_dead_letter_queue

    failed, has_dlq = _run(stack, scenario)
    assert failed.operation == "sqs:ReceiveMessage" and "NonExistentQueue" in failed.code
    assert has_dlq is False
