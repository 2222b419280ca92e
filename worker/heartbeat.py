"""Visibility heartbeats: keep every in-flight message invisible while the worker holds it.

One task for all messages: each second it renews, in batches of ten through the queue port
(``worker.queue_port``), the messages whose last renewal is ``interval`` old, and gives up on those
held past the processing deadline (they come back for another worker, or for the dead-letter queue
after maxReceiveCount).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from more_itertools import chunked

from worker.logs import get_logger
from worker.queue_port import MAX_BATCH, QueuePort, ReceivedMessage

log = get_logger(__name__)


@dataclass
class _Held:
    message: ReceivedMessage
    received_at: float
    renewed_at: float
    on_expired: Callable[[], None]


class Heartbeat:
    """Renews the visibility of every message held, through ``queue``, on ``clock``'s time."""

    def __init__(self, queue: QueuePort, visibility_s: int, interval_s: int, deadline_s: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.queue, self.clock = queue, clock
        self.visibility_s, self.interval_s, self.deadline_s = visibility_s, interval_s, deadline_s
        self._held: dict[str, _Held] = {}

    def hold(self, message: ReceivedMessage, on_expired: Callable[[], None]) -> None:
        """Keep ``message`` invisible until ``drop``; past the deadline, call ``on_expired``."""
        now = self.clock()
        self._held[message.message_id] = _Held(message, now, now, on_expired)

    def drop(self, message_id: str) -> None:
        self._held.pop(message_id, None)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(min(1.0, self.interval_s / 2))
            await self.beat()

    async def beat(self) -> None:
        now = self.clock()
        for message_id, held in list(self._held.items()):
            if now - held.received_at > self.deadline_s:
                log.warning("processing deadline passed; releasing", message_id=message_id)
                self.drop(message_id)
                held.on_expired()
        due = [h for h in self._held.values() if now - h.renewed_at >= self.interval_s]
        for chunk in chunked(due, MAX_BATCH):
            await self._renew(chunk, now)

    async def _renew(self, chunk: list[_Held], now: float) -> None:
        try:
            result = await self.queue.extend_visibility([h.message for h in chunk],
                                                        self.visibility_s)
        except Exception as exc:  # a missed beat is retried next second; the timeout has slack
            log.warning("heartbeat failed", error=str(exc), messages=len(chunk))
            return
        for held in chunk:
            held.renewed_at = now
            if not result.ok(held.message):
                log.warning("heartbeat refused", message_id=held.message.message_id,
                            code=result.failed[held.message.receipt_handle])
