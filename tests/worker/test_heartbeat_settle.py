"""Heartbeats and batched deletes on the lab's in-memory queue, on a virtual clock.

``SqsQueue``, which they drive in production, keeps the same port contract against the embedded
SQS (test_queue_port.py); the whole path runs end to end in tests/e2e.
"""

from __future__ import annotations

import asyncio
import json

from structlog.testing import capture_logs

from tools.lab import virtual_time
from tools.lab.memory_queue import MemoryQueue
from worker.heartbeat import Heartbeat
from worker.queue_port import ReceivedMessage
from worker.settle import BatchDeleter


def _queue_of(count: int, clock: virtual_time.VirtualClock) -> MemoryQueue:
    queue = MemoryQueue(clock=clock)
    for i in range(count):
        queue.put(json.dumps({"bucket": "b", "key": f"k{i}"}))
    return queue


async def _receive_all(queue: MemoryQueue, count: int, visibility_s: int) -> list[ReceivedMessage]:
    messages: list[ReceivedMessage] = []
    while len(messages) < count:
        messages += await queue.receive(10, wait_s=1, visibility_s=visibility_s)
    return messages


def test_heartbeat_keeps_a_message_invisible_past_its_visibility_timeout():
    clock = virtual_time.VirtualClock()
    queue = _queue_of(12, clock)  # more than one batch of renewals

    async def scenario():
        messages = await _receive_all(queue, 12, visibility_s=2)
        beat = Heartbeat(queue, visibility_s=2, interval_s=1, deadline_s=60, clock=clock)
        for message in messages:
            beat.hold(message, lambda: None)
        task = asyncio.create_task(beat.run())
        await asyncio.sleep(4.5)  # more than twice the visibility timeout
        held_again = await queue.receive(1, wait_s=1, visibility_s=2)
        task.cancel()
        return held_again

    assert virtual_time.run(scenario(), clock) == []  # still invisible: the heartbeat renewed it
    renewals = queue.called("extend_visibility")
    assert renewals and all(len(r["messages"]) <= 10 and r["visibility_s"] == 2 for r in renewals)
    assert len({m.message_id for r in renewals for m in r["messages"]}) == 12


def test_heartbeat_gives_up_at_the_processing_deadline():
    queue = _queue_of(1, virtual_time.VirtualClock())
    expired = []

    async def scenario():
        (message,) = await queue.receive(1, wait_s=1, visibility_s=30)
        clock = iter([0.0, 100.0]).__next__
        beat = Heartbeat(queue, 30, 10, deadline_s=60, clock=clock)
        beat.hold(message, lambda: expired.append(1))
        await beat.beat()

    asyncio.run(scenario())
    assert expired == [1]
    assert queue.called("extend_visibility") == []  # given up on, not renewed


def test_heartbeat_logs_a_renewal_the_queue_refused():
    clock = virtual_time.VirtualClock()
    queue = _queue_of(1, clock)

    async def scenario():
        (message,) = await queue.receive(1, wait_s=1, visibility_s=2)
        await asyncio.sleep(3)  # its visibility lapses; a second receive makes its handle stale
        (again,) = await queue.receive(1, wait_s=1, visibility_s=30)
        beat = Heartbeat(queue, visibility_s=30, interval_s=1, deadline_s=60, clock=clock)
        beat.hold(message, lambda: None)
        await asyncio.sleep(1)
        with capture_logs() as logs:
            await beat.beat()
        return again, logs

    again, logs = virtual_time.run(scenario(), clock)
    assert again.receive_count == 2
    (refused,) = [line for line in logs if line["event"] == "heartbeat refused"]
    assert refused["code"] == "ReceiptHandleIsInvalid" and refused["message_id"] == again.message_id


def test_batch_deleter_groups_deletes_and_reports_each():
    clock = virtual_time.VirtualClock()
    queue = _queue_of(13, clock)

    async def scenario():
        messages = await _receive_all(queue, 13, visibility_s=30)
        stale = ReceivedMessage(messages[0].message_id, "no-longer-valid", messages[0].body, 0, 1)
        deleter = BatchDeleter(queue)
        return await asyncio.gather(*(deleter.delete(m) for m in [*messages, stale]))

    assert virtual_time.run(scenario(), clock) == [True] * 13 + [False]
    assert queue.bodies() == []
    assert [len(c["messages"]) for c in queue.called("delete")] == [10, 4]
