"""Heartbeats and batched deletes against the embedded SQS (real HTTP, aiobotocore)."""

from __future__ import annotations

import asyncio

from tools.lab.harness import queue_depth, send
from worker.aws import AsyncClients
from worker.heartbeat import Heartbeat
from worker.settle import BatchDeleter


async def _receive(sqs, url, count, visibility):
    response = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=count,
                                         VisibilityTimeout=visibility, WaitTimeSeconds=1)
    return response.get("Messages", [])


def test_heartbeat_keeps_a_message_invisible_past_its_visibility_timeout(stack):
    send(stack, {"bucket": "b", "key": "k"})

    async def scenario():
        async with AsyncClients(stack.region, stack.endpoint_url) as aws:
            messages = []
            while len(messages) < 2:  # the job + the bucket's s3:TestEvent
                messages += await _receive(aws.sqs, stack.queue_url, 10, visibility=2)
            beat = Heartbeat(aws.sqs, stack.queue_url, visibility_s=2, interval_s=1,
                             deadline_s=60)
            for message in messages:
                beat.hold(message["MessageId"], message["ReceiptHandle"], lambda: None)
            task = asyncio.create_task(beat.run())
            await asyncio.sleep(4.5)  # more than twice the visibility timeout
            held_again = await _receive(aws.sqs, stack.queue_url, 1, visibility=2)
            task.cancel()
            return held_again

    assert asyncio.run(scenario()) == []  # still invisible: the heartbeat renewed it


def test_heartbeat_gives_up_at_the_processing_deadline(stack):
    send(stack, {"bucket": "b", "key": "k"})
    expired = []

    async def scenario():
        async with AsyncClients(stack.region, stack.endpoint_url) as aws:
            message = (await _receive(aws.sqs, stack.queue_url, 1, visibility=30))[0]
            clock = iter([0.0, 100.0]).__next__
            beat = Heartbeat(aws.sqs, stack.queue_url, 30, 10, deadline_s=60, clock=clock)
            beat.hold(message["MessageId"], message["ReceiptHandle"], lambda: expired.append(1))
            await beat.beat()

    asyncio.run(scenario())
    assert expired == [1]


def test_batch_deleter_groups_deletes_and_reports_each(stack):
    for i in range(13):
        send(stack, {"bucket": "b", "key": f"k{i}"})

    async def scenario():
        async with AsyncClients(stack.region, stack.endpoint_url) as aws:
            handles = []
            while len(handles) < 14:  # 13 jobs + the bucket's s3:TestEvent
                handles += [m["ReceiptHandle"]
                            for m in await _receive(aws.sqs, stack.queue_url, 10, 30)]
            deleter = BatchDeleter(aws.sqs, stack.queue_url)
            return await asyncio.gather(*(deleter.delete(h) for h in handles))

    assert asyncio.run(scenario()) == [True] * 14
    assert queue_depth(stack) == 0
