"""Settling messages: batched deletes after publishing, releases for retries, dead letters."""

from __future__ import annotations

import asyncio
from typing import Any

from worker.records import ReceivedMessage
from worker.logs import get_logger

log = get_logger(__name__)

ATTR_ERROR_CODE = "modfleet.error_code"
ATTR_REASON = "modfleet.reason"
ATTR_SOURCE_QUEUE = "modfleet.source_queue"
MAX_REASON = 1024


class BatchDeleter:
    """Collects deletes for up to ``linger_s`` or ten entries, then sends one DeleteMessageBatch."""

    def __init__(self, sqs: Any, queue_url: str, linger_s: float = 0.05) -> None:
        self.sqs, self.queue_url, self.linger_s = sqs, queue_url, linger_s
        self._pending: list[tuple[str, asyncio.Future]] = []
        self._flush_task: asyncio.Task | None = None

    async def delete(self, receipt_handle: str) -> bool:
        """Delete one message; True when SQS confirmed it."""
        future = asyncio.get_running_loop().create_future()
        self._pending.append((receipt_handle, future))
        if len(self._pending) >= 10:
            await self._flush()
        elif self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush_later())
        return await future

    async def _flush_later(self) -> None:
        await asyncio.sleep(self.linger_s)
        self._flush_task = None
        await self._flush()

    async def _flush(self) -> None:
        chunk, self._pending = self._pending[:10], self._pending[10:]
        if not chunk:
            return
        entries = [{"Id": str(i), "ReceiptHandle": handle} for i, (handle, _) in enumerate(chunk)]
        try:
            result = await self.sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception as exc:  # the messages come back; their verdicts repeat with one key
            log.warning("delete batch failed", error=str(exc), messages=len(chunk))
            result = {"Failed": [{"Id": e["Id"], "Code": "RequestFailed"} for e in entries]}
        failed = {f["Id"]: f.get("Code") for f in result.get("Failed", [])}
        for i, (_, future) in enumerate(chunk):
            if not future.done():
                future.set_result(str(i) not in failed)
        if self._pending:
            await self._flush()


async def release(sqs: Any, queue_url: str, message: ReceivedMessage, delay_s: int) -> None:
    """Make a message visible again after ``delay_s`` so it is retried (best effort)."""
    try:
        await sqs.change_message_visibility(QueueUrl=queue_url,
                                            ReceiptHandle=message.receipt_handle,
                                            VisibilityTimeout=max(0, min(delay_s, 43200)))
    except Exception as exc:  # it comes back when its visibility lapses anyway
        log.warning("release failed", message_id=message.message_id, error=str(exc))


def retry_delay_s(receive_count: int, cap_s: int) -> int:
    """Back off by receive count: 5, 10, 20, ... seconds, at most ``cap_s``."""
    return min(cap_s, 5 * 2 ** max(0, receive_count - 1))


async def dead_letter(sqs: Any, dlq_url: str, source_queue_url: str, message: ReceivedMessage,
                      reason: str, code: str = "poison_body") -> None:
    """Send the original body to the DLQ with why, then the caller deletes it from the source."""
    attributes = {name: {k: v for k, v in value.items() if k in ("DataType", "StringValue",
                                                                   "BinaryValue")}
                  for name, value in list(message.attributes.items())[:7]}
    attributes |= {
        ATTR_ERROR_CODE: {"DataType": "String", "StringValue": code},
        ATTR_REASON: {"DataType": "String", "StringValue": reason[:MAX_REASON] or "unknown"},
        ATTR_SOURCE_QUEUE: {"DataType": "String", "StringValue": source_queue_url},
    }
    await sqs.send_message(QueueUrl=dlq_url, MessageBody=message.body or " ",
                           MessageAttributes=attributes)
