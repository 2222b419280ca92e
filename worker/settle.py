"""Settling a message: its handling decides one outcome, and one settler applies it.

``Delete``, ``Release`` and ``DeadLetter`` say what a message deserves; ``Settler.settle`` does
the queue call (through the queue port, ``worker.queue_port``), the run's counter, the metric and
the log line for each, so every way a message can end is written down once (as dramatiq
acknowledges in one place and Powertools builds one batch response).  Deletes are batched;
releases are best effort, since a message whose release fails comes back when its visibility
lapses anyway.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Any

from worker.errors_aws import is_incurable
from worker.fault_bound import FaultBound
from worker.logs import get_logger
from worker.metrics import Metrics
from worker.queue_port import MAX_BATCH, BatchResult, QueuePort, ReceivedMessage

log = get_logger(__name__)

# Every code the worker writes in ATTR_ERROR_CODE (DeadLetter.code); `replay-dlq --error-code`
# refuses any other, so a code added to a DeadLetter outcome must be added here.
DEAD_LETTER_CODES = frozenset({"poison_body"})


@dataclass(frozen=True)
class Delete:
    """Done: every verdict it asked for is published, or it asked for none (an s3:TestEvent)."""

    test_event: bool = False


@dataclass(frozen=True)
class Release:
    """Hand it back, visible again after ``delay_s``.

    With a ``reason``, a try failed and the release is a retry (counted, with a metric); without
    one, unfinished work is handed back (a stop, the processing deadline).
    """

    delay_s: int = 0
    reason: str = ""


@dataclass(frozen=True)
class DeadLetter:
    """It can never succeed: to the dead-letter queue with ``code`` and ``reason``, then delete.

    Without a dead-letter queue the message is released at once, for the queue's redrive policy
    to move.
    """

    reason: str
    code: str = "poison_body"


Outcome = Delete | Release | DeadLetter


def retry_delay_s(receive_count: int, cap_s: int) -> int:
    """Back off by receive count: 5, 10, 20, ... seconds, at most ``cap_s``."""
    return min(cap_s, 5 * 2 ** max(0, receive_count - 1))


def retry(message: ReceivedMessage, reason: str, cap_s: int) -> Release:
    """The outcome of a failed try: back with a delay that grows with its receive count."""
    return Release(retry_delay_s(message.receive_count, cap_s), reason or "unknown")


class Settler:
    """Applies each message's outcome: the queue call, then the counter, the metric, the log."""

    def __init__(self, queue: QueuePort, metrics: Metrics, counts: collections.Counter,
                 retry_cap_s: int, faults: FaultBound | None = None) -> None:
        self.queue, self.metrics = queue, metrics
        self.counts, self.retry_cap_s = counts, retry_cap_s
        self.deleter = BatchDeleter(queue, faults=faults)

    async def settle(self, message: ReceivedMessage, outcome: Outcome) -> None:
        """Apply ``outcome``; a queue failure is logged, never raised (the message comes back)."""
        log_ = log.bind(message_id=message.message_id)
        match outcome:
            case Delete():
                await self._delete(message, outcome, log_)
            case Release(reason=""):
                await self._release(message, outcome.delay_s)
                self.counts["released"] += 1
                log_.warning("released unfinished message")
            case Release():
                await self._retry(message, outcome, log_)
            case DeadLetter():
                await self._dead_letter(message, outcome, log_)

    async def _delete(self, message: ReceivedMessage, outcome: Delete, log_: Any) -> None:
        deleted = await self.deleter.delete(message)
        if outcome.test_event:
            self.counts["test_event"] += 1
            log_.info("acknowledged s3:TestEvent")
        else:
            self.counts["settled" if deleted else "settled_not_deleted"] += 1

    async def _retry(self, message: ReceivedMessage, outcome: Release, log_: Any) -> None:
        await self._release(message, outcome.delay_s)
        self.counts["retried"] += 1
        self.metrics.count("Retries")
        log_.warning("transient failure; message will come back", reason=outcome.reason,
                     delay_s=outcome.delay_s, receive_count=message.receive_count)

    async def _dead_letter(self, message: ReceivedMessage, outcome: DeadLetter, log_: Any) -> None:
        if not self.queue.has_dead_letter_queue:
            # No DLQ known: leave it for the queue's redrive policy (maxReceiveCount), soon.
            await self._release(message, 0)
            self.counts["poison_left"] += 1
            log_.error("poison message and no --dlq-url; leaving it for the redrive policy",
                       reason=outcome.reason)
            return
        try:
            await self.queue.dead_letter(message, outcome.reason, outcome.code)
        except Exception as exc:  # the DLQ is unreachable: the message comes back to try again
            log_.exception("unexpected failure; message will be retried")
            await self.settle(message, retry(message, repr(exc), self.retry_cap_s))
            return
        await self.deleter.delete(message)
        self.counts["dead_lettered"] += 1
        self.metrics.count("DeadLettered", Reason=outcome.code)
        log_.warning("poison message dead-lettered", reason=outcome.reason)

    async def _release(self, message: ReceivedMessage, delay_s: int) -> None:
        try:
            await self.queue.release(message, delay_s)
        except Exception as exc:  # it comes back when its visibility lapses anyway
            log.warning("release failed", message_id=message.message_id, error=str(exc))


class BatchDeleter:
    """Collects deletes for up to ``linger_s`` or MAX_BATCH messages, then makes one batch call.

    A delete refused for a cause no retry cures (the role lost sqs:DeleteMessage, the queue was
    deleted) counts against ``faults``: otherwise every verdict would be published again and
    again while the worker looks healthy.
    """

    OPERATION = "sqs:DeleteMessageBatch"

    def __init__(self, queue: QueuePort, linger_s: float = 0.05,
                 faults: FaultBound | None = None) -> None:
        self.queue, self.linger_s, self.faults = queue, linger_s, faults
        self._pending: list[tuple[ReceivedMessage, asyncio.Future]] = []
        self._flush_task: asyncio.Task | None = None

    async def delete(self, message: ReceivedMessage) -> bool:
        """Delete one message; True when the queue confirmed it."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((message, future))
        if len(self._pending) >= MAX_BATCH:
            await self._flush()
        elif self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush_later())
        return await future

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.linger_s)
        self._flush_task = None
        await self._flush()

    async def _flush(self) -> None:
        chunk, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
        if not chunk:
            return
        messages = [message for message, _ in chunk]
        try:
            result = await self.queue.delete(messages)
        except Exception as exc:  # the messages come back; their verdicts repeat with one key
            log.warning("delete batch failed", error=str(exc), messages=len(chunk))
            result = BatchResult({m.receipt_handle: "RequestFailed" for m in messages})
            if self.faults is not None and is_incurable(exc):
                self.faults.failed(self.OPERATION, exc)
        else:
            if self.faults is not None:
                self.faults.succeeded(self.OPERATION)
        for message, future in chunk:
            if not future.done():
                future.set_result(result.ok(message))
        if self._pending:
            await self._flush()
