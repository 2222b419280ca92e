"""Visibility heartbeats: keep every in-flight message invisible while the worker holds it.

One task for all messages: each second it renews, in batches of ten, the messages whose last
renewal is ``interval`` old, and gives up on those held past the processing deadline (they come back
for another worker, or for the dead-letter queue after maxReceiveCount).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from worker.logs import get_logger

log = get_logger(__name__)


@dataclass
class _Held:
    receipt_handle: str
    received_at: float
    renewed_at: float
    on_expired: Callable[[], None]


class Heartbeat:
    def __init__(self, sqs: Any, queue_url: str, visibility_s: int, interval_s: int,
                 deadline_s: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.sqs, self.queue_url, self.clock = sqs, queue_url, clock
        self.visibility_s, self.interval_s, self.deadline_s = visibility_s, interval_s, deadline_s
        self._held: dict[str, _Held] = {}

    def hold(self, message_id: str, receipt_handle: str, on_expired: Callable[[], None]) -> None:
        now = self.clock()
        self._held[message_id] = _Held(receipt_handle, now, now, on_expired)

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
        due = [(mid, h) for mid, h in self._held.items() if now - h.renewed_at >= self.interval_s]
        for start in range(0, len(due), 10):
            await self._renew(due[start:start + 10], now)

    async def _renew(self, chunk: list[tuple[str, _Held]], now: float) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": held.receipt_handle,
                    "VisibilityTimeout": self.visibility_s} for i, (_, held) in enumerate(chunk)]
        try:
            result = await self.sqs.change_message_visibility_batch(QueueUrl=self.queue_url,
                                                                    Entries=entries)
        except Exception as exc:  # a missed beat is retried next second; the timeout has slack
            log.warning("heartbeat failed", error=str(exc), messages=len(entries))
            return
        for _, held in chunk:
            held.renewed_at = now
        for failure in result.get("Failed", []):
            log.warning("heartbeat refused", message_id=chunk[int(failure["Id"])][0],
                        code=failure.get("Code"))
