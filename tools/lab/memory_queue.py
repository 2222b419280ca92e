"""A job queue in memory behind the worker's queue port (``worker.queue_port.QueuePort``).

For the worker's unit tests (the run loop, the heartbeat, the settler): milliseconds per test and
faults on demand, as dramatiq's ``StubBroker`` stands in for its brokers.  The port's contract
test (tests/worker/test_queue_port.py) runs on this queue and on ``SqsQueue`` against the embedded
SQS alike; what is kept here from SQS:

- a received message is invisible for ``visibility_s`` seconds and gets a new receipt handle on
  every receive; only the latest handle extends, releases or deletes it;
- a long poll returns as soon as a message is visible, or after ``wait_s``;
- ``receive_count`` counts receives, and a queue with a ``Redrive`` moves a message to its
  dead-letter queue on the receive that would exceed ``max_receive_count``;
- batch calls answer per message; a call that fails as a whole raises ``QueueCallFailed``.

Time is ``clock()``: a ``tools.lab.virtual_time.VirtualClock``, on which every wait takes no real
time, or ``time.monotonic`` on a real loop, where ``poll_scale`` shortens the long polls (the run
loop's logic does not depend on how long an empty poll lasts).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from worker.exceptions import QueueCallFailed
from worker.queue_port import (ATTR_ERROR_CODE, ATTR_REASON, ATTR_SOURCE_QUEUE, MAX_BATCH,
                               BatchResult, ReceivedMessage)

STALE = "ReceiptHandleIsInvalid"  # SQS's code for a handle that no longer names a receive
_ids = itertools.count(1)


@dataclass
class StoredMessage:
    """A message as the queue keeps it; ``receipt_handle`` is its latest receive's."""

    body: str
    attributes: dict[str, Any]
    sent_at_ms: int
    message_id: str = field(default_factory=lambda: f"m-{next(_ids)}")
    receive_count: int = 0
    visible_at: float = 0.0
    receipt_handle: str | None = None


@dataclass(frozen=True)
class Redrive:
    """The queue's redrive policy: to ``queue`` on the receive past ``max_receive_count``."""

    queue: MemoryQueue
    max_receive_count: int = 3


@dataclass(frozen=True)
class Call:
    """One call the worker made: the port method's name, its arguments, the clock's time."""

    operation: str
    args: dict[str, Any]
    at: float


class MemoryQueue:
    """One queue in memory; ``dead_letter_queue`` is where ``dead_letter`` sends (the worker's
    DLQ URL), ``redrive`` the queue's own redrive policy (the two are usually one queue)."""

    def __init__(self, name: str = "jobs", *, clock: Callable[[], float] = time.monotonic,
                 redrive: Redrive | None = None, dead_letter_queue: MemoryQueue | None = None,
                 poll_scale: float = 1.0) -> None:
        self.url, self.clock, self.poll_scale = f"memory://{name}", clock, poll_scale
        self.redrive, self.dead_letter_queue = redrive, dead_letter_queue
        self.messages: dict[str, StoredMessage] = {}
        self.calls: list[Call] = []
        self.faults: dict[str, list[BaseException | None]] = {}
        self.on_receive: Callable[[list[ReceivedMessage]], None] = lambda messages: None
        self.held: set[str] = set()  # receipt handles received and not yet deleted or released
        self.max_held = 0
        self._waiters: list[asyncio.Future] = []

    # ---- test controls -------------------------------------------------------------------------

    def put(self, body: str, attributes: Mapping[str, Any] | None = None) -> str:
        """Send a message; its id."""
        message = StoredMessage(body, dict(attributes or {}), int(time.time() * 1000))
        self.messages[message.message_id] = message
        self._wake()
        return message.message_id

    def fail(self, operation: str, *errors: BaseException | None) -> None:
        """The next calls of port method ``operation`` raise ``errors``, one each, in order (None:
        that call succeeds)."""
        self.faults.setdefault(operation, []).extend(errors)

    def bodies(self) -> list[str]:
        return [m.body for m in self.messages.values()]

    def visible(self) -> list[StoredMessage]:
        return [m for m in self.messages.values() if m.visible_at <= self.clock()]

    def called(self, operation: str) -> list[dict[str, Any]]:
        """The arguments of each call of ``operation``, in order."""
        return [c.args for c in self.calls if c.operation == operation]

    # ---- the queue port ------------------------------------------------------------------------

    @property
    def has_dead_letter_queue(self) -> bool:
        return self.dead_letter_queue is not None

    async def receive(self, max_messages: int, wait_s: int,
                      visibility_s: int) -> list[ReceivedMessage]:
        self._enter("receive", max_messages=max_messages, wait_s=wait_s,
                    visibility_s=visibility_s)
        taken = self._take(max_messages, visibility_s)
        if not taken and wait_s:
            await self._visible_or(wait_s * self.poll_scale)
            taken = self._take(max_messages, visibility_s)
        else:
            await asyncio.sleep(0)  # a call over the network yields to the loop
        received = [_received(m) for m in taken]
        self.on_receive(received)
        return received

    async def extend_visibility(self, messages: Sequence[ReceivedMessage],
                                visibility_s: int) -> BatchResult:
        self._enter("extend_visibility", messages=list(messages), visibility_s=visibility_s)

        def extend(stored: StoredMessage) -> None:
            stored.visible_at = self.clock() + visibility_s
        return await self._per_message(messages, extend)

    async def release(self, message: ReceivedMessage, delay_s: int) -> None:
        self._enter("release", message=message, delay_s=delay_s)
        stored = self._by_handle(message.receipt_handle)
        if stored is None:
            raise QueueCallFailed("release", STALE, "the receipt handle is stale")
        stored.visible_at = self.clock() + delay_s
        self.held.discard(message.receipt_handle)  # handed back: the worker no longer holds it
        self._wake()
        await asyncio.sleep(0)

    async def delete(self, messages: Sequence[ReceivedMessage]) -> BatchResult:
        self._enter("delete", messages=list(messages))

        def delete(stored: StoredMessage) -> None:
            del self.messages[stored.message_id]
            self.held.discard(stored.receipt_handle)  # type: ignore[arg-type]
        return await self._per_message(messages, delete)

    async def dead_letter(self, message: ReceivedMessage, reason: str, code: str) -> None:
        self._enter("dead_letter", message=message, reason=reason, code=code)
        if self.dead_letter_queue is None:
            raise ValueError("no dead-letter queue: check has_dead_letter_queue first")
        self.dead_letter_queue.put(message.body, {
            **message.attributes, ATTR_ERROR_CODE: code, ATTR_REASON: reason,
            ATTR_SOURCE_QUEUE: self.url})
        await asyncio.sleep(0)

    # ---- internals -----------------------------------------------------------------------------

    def _enter(self, operation: str, **args: Any) -> None:
        self.calls.append(Call(operation, args, self.clock()))
        if self.faults.get(operation) and (error := self.faults[operation].pop(0)) is not None:
            raise error

    async def _per_message(self, messages: Sequence[ReceivedMessage],
                           apply: Callable[[StoredMessage], None]) -> BatchResult:
        if len(messages) > MAX_BATCH:
            raise ValueError(f"{len(messages)} messages in one batch; the limit is {MAX_BATCH}")
        failed = {}
        for message in messages:
            stored = self._by_handle(message.receipt_handle)
            if stored is None:
                failed[message.receipt_handle] = STALE
            else:
                apply(stored)
        await asyncio.sleep(0)
        return BatchResult(failed)

    async def _visible_or(self, timeout_s: float) -> None:
        """Until a message is put or released, the next hidden one's visibility lapses, or
        ``timeout_s``."""
        hidden = [m.visible_at for m in self.messages.values() if m.visible_at > self.clock()]
        if hidden:
            timeout_s = min(timeout_s, min(hidden) - self.clock())
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

    def _take(self, count: int, visibility_s: int) -> list[StoredMessage]:
        taken: list[StoredMessage] = []
        for message in self.visible():
            if len(taken) == count:
                break
            self.held.discard(message.receipt_handle)  # type: ignore[arg-type]
            if self.redrive and message.receive_count >= self.redrive.max_receive_count:
                del self.messages[message.message_id]  # the redrive policy moves it
                self.redrive.queue.messages[message.message_id] = message
                continue
            message.receive_count += 1
            message.visible_at = self.clock() + visibility_s
            message.receipt_handle = f"{message.message_id}/{message.receive_count}"
            self.held.add(message.receipt_handle)
            taken.append(message)
        self.max_held = max(self.max_held, len(self.held))
        return taken

    def _by_handle(self, handle: str) -> StoredMessage | None:
        return next((m for m in self.messages.values() if m.receipt_handle == handle), None)


def _received(message: StoredMessage) -> ReceivedMessage:
    return ReceivedMessage(message_id=message.message_id,
                           receipt_handle=message.receipt_handle,  # type: ignore[arg-type]
                           body=message.body, sent_at_ms=message.sent_at_ms,
                           receive_count=message.receive_count,
                           attributes=dict(message.attributes))
