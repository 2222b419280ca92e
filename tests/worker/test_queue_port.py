"""The queue port's contract, kept by both implementations: ``SqsQueue`` against the embedded SQS
(moto server on loopback, through a real aiobotocore client) and the lab's ``MemoryQueue`` that
the worker's unit tests use in its place; then what only ``SqsQueue`` does (SQS's limits, its
error codes)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from tools.lab import virtual_time
from tools.lab.memory_queue import MemoryQueue
from worker.aws import AsyncClients, boto3_client
from worker.exceptions import QueueCallFailed
from worker.queue_port import (ATTR_ERROR_CODE, ATTR_REASON, ATTR_SOURCE_QUEUE, MAX_BATCH,
                               QueuePort, ReceivedMessage)
from worker.sqs_queue import MAX_REASON, SqsQueue

JOB = json.dumps({"bucket": "b", "key": "k"})


class SqsRig:
    """An ``SqsQueue`` on a fresh embedded stack; each scenario on a real loop."""

    def __init__(self, stack) -> None:
        self.stack = stack
        self.sqs = boto3_client("sqs", stack.region, stack.endpoint_url)

    def send(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.stack.queue_url, MessageBody=body, MessageAttributes={
            "trace": {"DataType": "String", "StringValue": "t-1"}})

    def run(self, scenario):
        async def with_queue():
            async with AsyncClients(self.stack.region, self.stack.endpoint_url) as aws:
                return await scenario(SqsQueue(aws.sqs, self.stack.queue_url, self.stack.dlq_url))
        return asyncio.run(with_queue())

    def dead_letters(self) -> list[tuple[str, dict[str, str]]]:
        messages = self.sqs.receive_message(QueueUrl=self.stack.dlq_url, WaitTimeSeconds=1,
                                            MaxNumberOfMessages=10,
                                            MessageAttributeNames=["All"]).get("Messages", [])
        return [(m["Body"], {k: v["StringValue"] for k, v in m["MessageAttributes"].items()})
                for m in messages]


class MemoryRig:
    """A ``MemoryQueue`` and its DLQ; each scenario on a virtual clock."""

    def __init__(self) -> None:
        self.clock = virtual_time.VirtualClock()
        self.dlq = MemoryQueue("jobs-dlq", clock=self.clock)
        self.queue = MemoryQueue("jobs", clock=self.clock, dead_letter_queue=self.dlq)

    def send(self, body: str) -> None:
        self.queue.put(body, {"trace": "t-1"})

    def run(self, scenario):
        return virtual_time.run(scenario(self.queue), self.clock)

    def dead_letters(self) -> list[tuple[str, dict[str, str]]]:
        return [(m.body, dict(m.attributes)) for m in self.dlq.messages.values()]


@pytest.fixture(params=["sqs", "memory"])
def rig(request):
    if request.param == "sqs":
        return SqsRig(request.getfixturevalue("stack"))
    return MemoryRig()


async def _receive_body(queue: QueuePort, body: str, visibility_s: int = 30) -> ReceivedMessage:
    """The message with ``body``; whatever else comes (the bucket's s3:TestEvent) is deleted."""
    for _ in range(20):
        for message in await queue.receive(10, wait_s=1, visibility_s=visibility_s):
            if message.body == body:
                return message
            await queue.delete([message])
    raise AssertionError(f"{body!r} never came")


async def _bodies(queue: QueuePort) -> list[str]:
    """The bodies of what is visible now."""
    return [m.body for m in await queue.receive(10, wait_s=0, visibility_s=30)]


def _stale(message: ReceivedMessage) -> ReceivedMessage:
    return ReceivedMessage(message.message_id, "not-a-receipt-handle", message.body, 0, 1)


def test_receive_extend_release_and_delete_answer_per_message(rig):
    rig.send(JOB)

    async def scenario(queue: QueuePort):
        first = await _receive_body(queue, JOB, visibility_s=1)
        extended = await queue.extend_visibility([first, _stale(first)], 60)
        await asyncio.sleep(1.5)  # past the visibility it was received with
        hidden = await _bodies(queue)
        await queue.release(first, 0)
        second = await _receive_body(queue, JOB)
        deleted = await queue.delete([second, _stale(second)])
        with pytest.raises(QueueCallFailed) as stale_release:
            await queue.release(_stale(second), 0)
        return first, extended, hidden, second, deleted, stale_release.value, await _bodies(queue)

    first, extended, hidden, second, deleted, stale_release, left = rig.run(scenario)
    assert first.receive_count == 1 and abs(first.sent_at_ms / 1000 - time.time()) < 60
    assert extended.ok(first) and extended.failed == {"not-a-receipt-handle":
                                                      "ReceiptHandleIsInvalid"}
    assert JOB not in hidden  # extended, so not received again
    assert second.message_id == first.message_id and second.receive_count == 2
    assert second.receipt_handle != first.receipt_handle  # a new receive, a new handle
    assert deleted.ok(second) and not deleted.ok(_stale(second))
    assert stale_release.code == "ReceiptHandleIsInvalid"
    assert JOB not in left  # deleted for good


def test_dead_letter_sends_the_body_with_why_and_its_own_attributes(rig):
    rig.send("[1, 2]")

    async def scenario(queue: QueuePort):
        message = await _receive_body(queue, "[1, 2]")
        await queue.dead_letter(message, "body is JSON but not an object", "poison_body")
        return queue.url, queue.has_dead_letter_queue

    source, has_dlq = rig.run(scenario)
    assert has_dlq is True
    assert rig.dead_letters() == [("[1, 2]", {
        ATTR_ERROR_CODE: "poison_body", ATTR_REASON: "body is JSON but not an object",
        ATTR_SOURCE_QUEUE: source, "trace": "t-1"})]


# ---- SqsQueue only -------------------------------------------------------------------------------


def test_sqs_queue_cuts_a_long_reason_to_what_a_dead_letter_entry_keeps(stack):
    rig = SqsRig(stack)
    rig.send("[1, 2]")

    async def scenario(queue: SqsQueue):
        message = await _receive_body(queue, "[1, 2]")
        await queue.dead_letter(message, "x" * (MAX_REASON + 500), "poison_body")

    rig.run(scenario)
    ((body, attributes),) = rig.dead_letters()
    assert body == "[1, 2]" and attributes[ATTR_REASON] == "x" * MAX_REASON


def test_a_failed_sqs_call_raises_queue_call_failed_with_the_sqs_code(stack):
    async def scenario(queue: SqsQueue):
        missing = SqsQueue(queue.sqs, stack.queue_url + "-gone")
        with pytest.raises(QueueCallFailed) as failed:
            await missing.receive(1, wait_s=0, visibility_s=30)
        with pytest.raises(ValueError, match="limit"):
            await queue.delete([ReceivedMessage("m", "h", "", 0, 1)] * (MAX_BATCH + 1))
        with pytest.raises(ValueError, match="no dead-letter queue"):
            await missing.dead_letter(ReceivedMessage("m", "h", "", 0, 1), "why", "poison_body")
        return failed.value, missing.has_dead_letter_queue

    failed, has_dlq = SqsRig(stack).run(scenario)
    assert failed.operation == "sqs:ReceiveMessage" and "NonExistentQueue" in failed.code
    assert has_dlq is False
