"""The queue port: what the worker asks of its job queue, and the records it gets back.

The run loop (``worker.runner``), the heartbeat and the settler talk to a ``QueuePort`` and
nothing else of the queue: receive, extend visibility, release, delete, dead-letter, as dramatiq's
broker ``Consumer`` acknowledges, rejects and requeues.  Batch calls answer per message, as
Powertools' batch processor settles each record on its own outcome.  ``worker.sqs_queue.SqsQueue``
is the one implementation that ships, and the one place that knows SQS's request and response
shapes; the lab's ``tools.lab.memory_queue.MemoryQueue`` runs the worker's unit tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# Each batch call takes at most this many messages (SQS's limit; every implementation keeps it,
# so that batching is decided once, by the callers, and a whole-call failure has one meaning).
MAX_BATCH = 10

# What a dead-lettered message carries besides its original body and attributes; the operators'
# dead-letter tools read these names.
ATTR_ERROR_CODE = "modfleet.error_code"
ATTR_REASON = "modfleet.reason"
ATTR_SOURCE_QUEUE = "modfleet.source_queue"


@dataclass(frozen=True)
class ReceivedMessage:
    """A message as received: identity, body, and timing for the queue-wait metric.

    ``receipt_handle`` names this receive of it (a message received again gets a new one);
    ``attributes`` are the message's own, as the queue delivered them: the worker reads none of
    them, the queue that delivered them carries them to its dead-letter queue.
    """

    message_id: str
    receipt_handle: str
    body: str
    sent_at_ms: int
    receive_count: int
    attributes: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class BatchResult:
    """One batch call's answer per message: ``failed`` maps each refused receipt handle to why."""

    failed: Mapping[str, str] = field(default_factory=dict)

    def ok(self, message: ReceivedMessage) -> bool:
        """Whether the call applied to ``message``."""
        return message.receipt_handle not in self.failed


class QueuePort(Protocol):
    """The job queue as the worker uses it.

    Every call raises ``worker.exceptions.QueueCallFailed`` when it fails as a whole; a batch
    call that was answered reports each message's outcome in its ``BatchResult`` instead.
    """

    url: str  # where the queue is, for logs and for the dead-letter entry's source

    @property
    def has_dead_letter_queue(self) -> bool:
        """Whether ``dead_letter`` has a queue to send to."""

    async def receive(self, max_messages: int, wait_s: int,
                      visibility_s: int) -> list[ReceivedMessage]:
        """Up to ``max_messages``, waiting up to ``wait_s`` for the first; each invisible to
        other receivers for ``visibility_s``."""

    async def extend_visibility(self, messages: Sequence[ReceivedMessage],
                                visibility_s: int) -> BatchResult:
        """Keep up to MAX_BATCH held messages invisible for ``visibility_s`` more seconds."""

    async def release(self, message: ReceivedMessage, delay_s: int) -> None:
        """Hand ``message`` back, visible to every receiver again after ``delay_s``."""

    async def delete(self, messages: Sequence[ReceivedMessage]) -> BatchResult:
        """Remove up to MAX_BATCH settled messages for good."""

    async def dead_letter(self, message: ReceivedMessage, reason: str, code: str) -> None:
        """Send ``message``'s body and attributes to the dead-letter queue with ``code``,
        ``reason`` and this queue's URL (ATTR_*); the caller then deletes it from this queue."""
