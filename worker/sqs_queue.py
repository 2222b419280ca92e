"""The job queue on Amazon SQS: the queue port's one production implementation.

Every SQS request and response shape the worker uses is here, and so is the mapping of a failed
call (botocore's ``ClientError``, a connection fault) to ``QueueCallFailed``.  The client is an
injected aiobotocore SQS client (``worker.aws.AsyncClients``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from worker.errors_aws import is_aws_failure
from worker.exceptions import QueueCallFailed
from worker.queue_port import (ATTR_ERROR_CODE, ATTR_REASON, ATTR_SOURCE_QUEUE, MAX_BATCH,
                               BatchResult, ReceivedMessage)

MAX_REASON = 1024  # characters of the reason kept on a dead-letter entry
MAX_VISIBILITY_S = 43200  # SQS's limit on a visibility timeout
MAX_ATTRIBUTES = 10  # SQS's limit on message attributes; three of them say why it was dead-lettered
FORWARDED_FIELDS = ("DataType", "StringValue", "BinaryValue")  # what SendMessage accepts back


class SqsQueue:
    """The queue at ``url`` (and its dead-letter queue at ``dead_letter_url``, if any) on SQS."""

    def __init__(self, sqs: Any, url: str, dead_letter_url: str | None = None) -> None:
        self.sqs, self.url, self.dead_letter_url = sqs, url, dead_letter_url

    @property
    def has_dead_letter_queue(self) -> bool:
        return bool(self.dead_letter_url)

    async def receive(self, max_messages: int, wait_s: int,
                      visibility_s: int) -> list[ReceivedMessage]:
        response = await self._call(
            "ReceiveMessage", self.sqs.receive_message, QueueUrl=self.url,
            MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_s,
            VisibilityTimeout=visibility_s,
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            MessageAttributeNames=["All"])
        return [_received(raw) for raw in response.get("Messages", [])]

    async def extend_visibility(self, messages: Sequence[ReceivedMessage],
                                visibility_s: int) -> BatchResult:
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle,
                    "VisibilityTimeout": _visibility(visibility_s)}
                   for i, m in enumerate(_batch(messages))]
        return await self._batch_call("ChangeMessageVisibilityBatch",
                                      self.sqs.change_message_visibility_batch, messages, entries)

    async def release(self, message: ReceivedMessage, delay_s: int) -> None:
        await self._call("ChangeMessageVisibility", self.sqs.change_message_visibility,
                         QueueUrl=self.url, ReceiptHandle=message.receipt_handle,
                         VisibilityTimeout=_visibility(delay_s))

    async def delete(self, messages: Sequence[ReceivedMessage]) -> BatchResult:
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle}
                   for i, m in enumerate(_batch(messages))]
        return await self._batch_call("DeleteMessageBatch", self.sqs.delete_message_batch,
                                      messages, entries)

    async def dead_letter(self, message: ReceivedMessage, reason: str, code: str) -> None:
        if not self.dead_letter_url:
            raise ValueError("no dead-letter queue: check has_dead_letter_queue first")
        kept = list(message.attributes.items())[:MAX_ATTRIBUTES - 3]
        attributes = {name: {k: v for k, v in value.items() if k in FORWARDED_FIELDS}
                      for name, value in kept}
        attributes |= {
            ATTR_ERROR_CODE: _string(code),
            ATTR_REASON: _string(reason[:MAX_REASON] or "unknown"),
            ATTR_SOURCE_QUEUE: _string(self.url),
        }
        # SQS refuses an empty body; a poison message may have one.
        await self._call("SendMessage", self.sqs.send_message, QueueUrl=self.dead_letter_url,
                         MessageBody=message.body or " ", MessageAttributes=attributes)

    async def _batch_call(self, operation: str, method: Callable[..., Awaitable[Any]],
                          messages: Sequence[ReceivedMessage], entries: list[dict]) -> BatchResult:
        if not entries:
            return BatchResult()  # SQS refuses an empty batch
        response = await self._call(operation, method, QueueUrl=self.url, Entries=entries)
        return BatchResult({messages[int(failure["Id"])].receipt_handle: failure.get("Code", "")
                            for failure in response.get("Failed", [])})

    @staticmethod
    async def _call(operation: str, method: Callable[..., Awaitable[Any]], **params: Any) -> Any:
        try:
            return await method(**params)
        except Exception as exc:
            if not is_aws_failure(exc):
                raise
            code = exc.response.get("Error", {}).get("Code", "") if isinstance(
                exc, ClientError) else ""
            raise QueueCallFailed(f"sqs:{operation}", code, str(exc)) from exc


def _received(raw: dict[str, Any]) -> ReceivedMessage:
    attrs = raw.get("Attributes", {})
    return ReceivedMessage(message_id=raw["MessageId"], receipt_handle=raw["ReceiptHandle"],
                           body=raw.get("Body", ""),
                           sent_at_ms=int(attrs.get("SentTimestamp", time.time() * 1000)),
                           receive_count=int(attrs.get("ApproximateReceiveCount", 1)),
                           attributes=raw.get("MessageAttributes", {}))


def _batch(messages: Sequence[ReceivedMessage]) -> Sequence[ReceivedMessage]:
    if len(messages) > MAX_BATCH:
        raise ValueError(f"{len(messages)} messages in one batch; the limit is {MAX_BATCH}")
    return messages


def _visibility(seconds: int) -> int:
    return max(0, min(int(seconds), MAX_VISIBILITY_S))


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}
