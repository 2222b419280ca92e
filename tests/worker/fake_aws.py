"""An in-memory SQS and SNS with exactly the calls the worker makes, async like aiobotocore's.

For the run loop's unit tests (tests/worker/test_runner.py): milliseconds per test, and faults on
demand.  The real HTTP path (aiobotocore against the moto server) is tested in
tests/worker/test_heartbeat_settle.py and tests/e2e.  What is kept from SQS:

- a received message is invisible for ``VisibilityTimeout`` seconds and gets a new receipt handle
  on every receive; only the latest handle deletes it or changes its visibility;
- ``ApproximateReceiveCount`` counts receives, and a queue with a redrive policy moves a message to
  its dead-letter queue on the receive that would exceed ``max_receive_count``;
- batch calls answer per entry (``Successful``/``Failed``).

Time is ``clock()``: the virtual clock of tests/worker/virtual_time.py, on which every wait takes
no real time, or ``time.monotonic`` on a real loop, where ``poll_scale`` shortens the long polls
(the run loop's logic does not depend on how long an empty poll lasts).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

_ids = itertools.count(1)


def client_error(operation: str, code: str, status: int = 400) -> ClientError:
    """The botocore error an AWS error response becomes."""
    return ClientError({"Error": {"Code": code, "Message": f"fake {code}"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


@dataclass
class FakeMessage:
    body: str
    attributes: dict[str, Any]
    sent_ms: int
    message_id: str = field(default_factory=lambda: f"m-{next(_ids)}")
    receive_count: int = 0
    visible_at: float = 0.0
    receipt_handle: str | None = None


@dataclass
class FakeQueue:
    url: str
    dead_letter_url: str | None = None
    max_receive_count: int = 0
    messages: dict[str, FakeMessage] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    operation: str
    params: dict[str, Any]
    at: float


class FakeSqs:
    """SQS queues in memory; ``held`` counts messages received and not yet deleted or released."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 poll_scale: float = 1.0) -> None:
        self.clock, self.poll_scale = clock, poll_scale
        self.queues: dict[str, FakeQueue] = {}
        self.calls: list[Call] = []
        self.faults: dict[str, list[BaseException | None]] = {}
        self.on_receive: Callable[[list[dict]], None] = lambda messages: None
        self.held: set[str] = set()
        self.max_held = 0
        self._waiters: list[asyncio.Future] = []

    # ---- test controls -------------------------------------------------------------------------

    def create_queue(self, name: str, dead_letter_url: str | None = None,
                     max_receive_count: int = 3) -> str:
        url = f"https://sqs.fake/{name}"
        self.queues[url] = FakeQueue(url, dead_letter_url, max_receive_count)
        return url

    def put(self, url: str, body: str, attributes: dict[str, Any] | None = None) -> str:
        message = FakeMessage(body, attributes or {}, int(time.time() * 1000))
        self.queues[url].messages[message.message_id] = message
        self._wake()
        return message.message_id

    def fail(self, operation: str, *errors: BaseException | None) -> None:
        """The next calls of ``operation`` raise ``errors``, one each, in order (None: succeed)."""
        self.faults.setdefault(operation, []).extend(errors)

    def bodies(self, url: str) -> list[str]:
        return [m.body for m in self.queues[url].messages.values()]

    def visible(self, url: str) -> list[FakeMessage]:
        return [m for m in self.queues[url].messages.values() if m.visible_at <= self.clock()]

    def called(self, operation: str) -> list[dict[str, Any]]:
        return [c.params for c in self.calls if c.operation == operation]

    # ---- the API the worker calls --------------------------------------------------------------

    async def receive_message(self, *, QueueUrl: str, MaxNumberOfMessages: int = 1,
                              WaitTimeSeconds: int = 0, VisibilityTimeout: int = 30,
                              **_: Any) -> dict[str, Any]:
        self._enter("receive_message", locals())
        taken = self._take(QueueUrl, MaxNumberOfMessages, VisibilityTimeout)
        if not taken and WaitTimeSeconds:
            await self._visible_or(WaitTimeSeconds * self.poll_scale)
            taken = self._take(QueueUrl, MaxNumberOfMessages, VisibilityTimeout)
        else:
            await asyncio.sleep(0)  # a call over the network yields to the loop
        raw = [self._raw(m) for m in taken]
        self.on_receive(raw)
        return {"Messages": raw} if raw else {}

    async def change_message_visibility(self, *, QueueUrl: str, ReceiptHandle: str,
                                        VisibilityTimeout: int) -> dict[str, Any]:
        self._enter("change_message_visibility", locals())
        message = self._by_handle(QueueUrl, ReceiptHandle)
        if message is None:
            raise client_error("ChangeMessageVisibility", "ReceiptHandleIsInvalid")
        message.visible_at = self.clock() + VisibilityTimeout
        self.held.discard(ReceiptHandle)  # handed back: the worker no longer holds it
        self._wake()
        return {}

    async def change_message_visibility_batch(self, *, QueueUrl: str,
                                              Entries: list[dict]) -> dict[str, Any]:
        self._enter("change_message_visibility_batch", locals())

        def renew(message: FakeMessage, entry: dict) -> None:
            message.visible_at = self.clock() + entry["VisibilityTimeout"]
        return self._per_entry(QueueUrl, Entries, renew)

    async def delete_message_batch(self, *, QueueUrl: str, Entries: list[dict]) -> dict[str, Any]:
        self._enter("delete_message_batch", locals())

        def delete(message: FakeMessage, entry: dict) -> None:
            del self.queues[QueueUrl].messages[message.message_id]
            self.held.discard(entry["ReceiptHandle"])
        return self._per_entry(QueueUrl, Entries, delete)

    def _per_entry(self, queue_url: str, entries: list[dict],
                   apply: Callable[[FakeMessage, dict], None]) -> dict[str, Any]:
        """A batch call's result: each entry applied on its own, or failed as SQS fails it."""
        result: dict[str, list] = {"Successful": [], "Failed": []}
        for entry in entries:
            message = self._by_handle(queue_url, entry["ReceiptHandle"])
            if message is None:
                result["Failed"].append({"Id": entry["Id"], "Code": "ReceiptHandleIsInvalid"})
                continue
            apply(message, entry)
            result["Successful"].append({"Id": entry["Id"]})
        return result

    async def send_message(self, *, QueueUrl: str, MessageBody: str,
                           MessageAttributes: dict | None = None) -> dict[str, Any]:
        self._enter("send_message", locals())
        return {"MessageId": self.put(QueueUrl, MessageBody, MessageAttributes)}

    # ---- internals -----------------------------------------------------------------------------

    def _enter(self, operation: str, params: dict[str, Any]) -> None:
        params = {k: v for k, v in params.items() if k not in ("self", "_")}
        self.calls.append(Call(operation, params, self.clock()))
        if self.faults.get(operation) and (error := self.faults[operation].pop(0)) is not None:
            raise error

    async def _visible_or(self, timeout_s: float) -> None:
        """Until something may have become visible, or ``timeout_s``."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout_s)
        except asyncio.TimeoutError:
            pass
        finally:
            self._waiters.remove(waiter)

    def _wake(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _take(self, url: str, count: int, visibility_s: int) -> list[FakeMessage]:
        queue, taken = self.queues[url], []
        for message in self.visible(url):
            if len(taken) == count:
                break
            if queue.dead_letter_url and message.receive_count >= queue.max_receive_count:
                del queue.messages[message.message_id]  # the redrive policy moves it
                self.queues[queue.dead_letter_url].messages[message.message_id] = message
                continue
            self.held.discard(message.receipt_handle)
            message.receive_count += 1
            message.visible_at = self.clock() + visibility_s
            message.receipt_handle = f"{message.message_id}/{message.receive_count}"
            self.held.add(message.receipt_handle)
            taken.append(message)
        self.max_held = max(self.max_held, len(self.held))
        return taken

    def _by_handle(self, url: str, handle: str) -> FakeMessage | None:
        return next((m for m in self.queues[url].messages.values()
                     if m.receipt_handle == handle), None)

    @staticmethod
    def _raw(message: FakeMessage) -> dict[str, Any]:
        return {"MessageId": message.message_id, "ReceiptHandle": message.receipt_handle,
                "Body": message.body, "MessageAttributes": message.attributes,
                "Attributes": {"SentTimestamp": str(message.sent_ms),
                               "ApproximateReceiveCount": str(message.receive_count)}}


class FakeSns:
    """An SNS topic in memory: ``published`` holds each Publish's parameters, in order."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.refuse: Callable[[str], BaseException | None] = lambda message: None

    async def publish(self, *, TopicArn: str, Message: str,
                      MessageAttributes: dict | None = None) -> dict[str, Any]:
        error = self.refuse(Message)
        if error is not None:
            raise error
        self.published.append({"TopicArn": TopicArn, "Message": Message,
                               "MessageAttributes": MessageAttributes or {}})
        return {"MessageId": f"sns-{next(_ids)}"}
