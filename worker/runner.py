"""The run loop: long-poll, hand each message to its own task, settle it, drain on SIGTERM.

One asyncio loop does the network (SQS, S3, SNS through aiobotocore); decoding runs in a thread pool
and inference in the replica threads.  The poller receives only while fewer than the in-flight
limit of messages are held (backpressure), and every held message has a visibility heartbeat.
A message is deleted only after every verdict it asked for has been published.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

from worker import settle
from worker.exceptions import PoisonMessage, RetryLater
from worker.heartbeat import Heartbeat
from worker.records import ReceivedMessage
from worker.logs import get_logger
from worker.messages import parse_body
from worker.metrics import Metrics
from worker.pipeline import Stages, process_job
from worker.publish import Publisher, deadline_left
from worker.settings import Settings

log = get_logger(__name__)
MAX_POLL_PAUSE_S = 30.0


@dataclass
class WorkerStats:
    """What a run settled, by outcome; the demo and the benchmark read it."""

    messages: collections.Counter = field(default_factory=collections.Counter)
    verdicts: list[dict[str, Any]] = field(default_factory=list)


class Worker:
    """Polls ``settings.queue_url`` until ``request_stop()`` or the idle limit; see module doc."""

    def __init__(self, settings: Settings, sqs: Any, publisher: Publisher, stages: Stages,
                 metrics: Metrics, keep_verdicts: bool = False) -> None:
        settings.require("queue_url", "topic_arn")
        self.settings, self.sqs, self.publisher, self.stages = settings, sqs, publisher, stages
        self.metrics, self.keep_verdicts = metrics, keep_verdicts
        self.queue_url: str = settings.queue_url  # type: ignore[assignment]
        self.heartbeat = Heartbeat(sqs, self.queue_url, settings.visibility_timeout_s,
                                   settings.heartbeat_interval_s, settings.processing_deadline_s)
        self.deleter = settle.BatchDeleter(sqs, self.queue_url)
        self.stats = WorkerStats()
        self._tasks: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()

    def request_stop(self) -> None:
        """Stop receiving; in-flight work finishes or is released by the shutdown deadline."""
        if not self._stopping.is_set():
            log.info("stop requested; draining", in_flight=len(self._tasks))
            self._stopping.set()

    async def run(self) -> WorkerStats:
        beat = asyncio.create_task(self.heartbeat.run())
        try:
            await self._poll_until_stopped()
            await self._drain()
        finally:
            beat.cancel()
        return self.stats

    # ---- polling -------------------------------------------------------------------------------

    async def _poll_until_stopped(self) -> None:
        idle_since = time.monotonic()
        pause = 0.0
        while not self._stopping.is_set():
            free = self.settings.in_flight_limit - len(self._tasks)
            if free <= 0:
                await self._wait_for_capacity()
                continue
            try:
                messages = await self._receive(min(self.settings.max_messages, free))
                pause = 0.0
            except Exception as exc:  # credentials, DNS, a dropped connection: pause, not spin
                pause = min(MAX_POLL_PAUSE_S, max(1.0, pause * 2))
                log.error("receive failed; pausing", error=str(exc), pause_s=pause)
                await self._sleep_unless_stopped(pause)
                continue
            if self._stopping.is_set():
                await self._release_all(messages)
                break
            for message in messages:
                self._start(message)
            if messages or self._tasks:
                idle_since = time.monotonic()
            elif self._idle_for(idle_since):
                log.info("queue idle; exiting", idle_s=self.settings.exit_when_idle_s)
                break

    def _idle_for(self, since: float) -> bool:
        limit = self.settings.exit_when_idle_s
        return bool(limit) and time.monotonic() - since >= limit

    async def _receive(self, count: int) -> list[ReceivedMessage]:
        wait = self.settings.wait_time_s
        if self.settings.exit_when_idle_s:
            wait = min(wait, max(1, int(self.settings.exit_when_idle_s)))
        if self._tasks:
            wait = min(wait, 1)  # keep topping up while work is in flight
        response = await self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
            VisibilityTimeout=self.settings.visibility_timeout_s,
            MessageSystemAttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
            MessageAttributeNames=["All"])
        return [_received(m) for m in response.get("Messages", [])]

    async def _wait_for_capacity(self) -> None:
        stop = asyncio.create_task(self._stopping.wait())
        await asyncio.wait([*self._tasks, stop], return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    def _start(self, message: ReceivedMessage) -> None:
        task = asyncio.create_task(self._handle(message), name=message.message_id)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self.heartbeat.hold(message.message_id, message.receipt_handle, task.cancel)

    # ---- one message ---------------------------------------------------------------------------

    async def _handle(self, message: ReceivedMessage) -> None:
        received_at = time.monotonic()
        log_ = log.bind(message_id=message.message_id)
        try:
            await self._settle(message, received_at, log_)
        except asyncio.CancelledError:
            await settle.release(self.sqs, self.queue_url, message, 0)
            self.stats.messages["released"] += 1
            log_.warning("released unfinished message")
            raise
        except RetryLater as exc:
            await self._retry(message, log_, str(exc))
        except Exception as exc:
            log_.exception("unexpected failure; message will be retried")
            await self._retry(message, log_, repr(exc))
        finally:
            self.heartbeat.drop(message.message_id)

    async def _settle(self, message: ReceivedMessage, received_at: float, log_: Any) -> None:
        try:
            parsed = parse_body(message.body)
        except PoisonMessage as exc:
            await self._dead_letter(message, exc.reason, log_)
            return
        if parsed.kind == "test_event":
            await self.deleter.delete(message.receipt_handle)
            self.stats.messages["test_event"] += 1
            log_.info("acknowledged s3:TestEvent")
            return
        queue_wait = max(0.0, time.time() * 1000 - message.sent_at_ms)
        results = await asyncio.gather(*(process_job(job, self.stages, {"queue_wait": queue_wait})
                                         for job in parsed.jobs))
        for result in results:
            started = time.perf_counter()
            budget = deadline_left(received_at, self.settings.processing_deadline_s)
            await self.publisher.publish(result, budget)
            self._record(result, (time.perf_counter() - started) * 1000, message, log_)
        deleted = await self.deleter.delete(message.receipt_handle)
        self.stats.messages["settled" if deleted else "settled_not_deleted"] += 1

    def _record(self, verdict: dict[str, Any], publish_ms: float, message: ReceivedMessage,
                log_: Any) -> None:
        timings = dict(verdict["timings_ms"], publish=round(publish_ms, 1))
        error_code = verdict["error"]["code"] if verdict["error"] else None
        log_.info("verdict", bucket=verdict["video"]["bucket"], key=verdict["video"]["key"],
                  status=verdict["status"], decision=verdict["decision"], error_code=error_code,
                  timings_ms=timings, receive_count=message.receive_count,
                  idempotency_key=verdict["idempotency_key"])
        self.metrics.verdict(verdict["status"], verdict["decision"], error_code, timings)
        if self.keep_verdicts:
            self.stats.verdicts.append(verdict)

    async def _dead_letter(self, message: ReceivedMessage, reason: str, log_: Any) -> None:
        if not self.settings.dlq_url:
            # No DLQ known: leave it for the queue's redrive policy (maxReceiveCount), soon.
            log_.error("poison message and no --dlq-url; leaving it for the redrive policy",
                       reason=reason)
            await settle.release(self.sqs, self.queue_url, message, 0)
            self.stats.messages["poison_left"] += 1
            return
        await settle.dead_letter(self.sqs, self.settings.dlq_url, self.queue_url, message, reason)
        await self.deleter.delete(message.receipt_handle)
        self.stats.messages["dead_lettered"] += 1
        self.metrics.count("DeadLettered", Reason="poison_body")
        log_.warning("poison message dead-lettered", reason=reason)

    async def _retry(self, message: ReceivedMessage, log_: Any, reason: str) -> None:
        delay = settle.retry_delay_s(message.receive_count, self.settings.visibility_timeout_s)
        await settle.release(self.sqs, self.queue_url, message, delay)
        self.stats.messages["retried"] += 1
        self.metrics.count("Retries")
        log_.warning("transient failure; message will come back", reason=reason, delay_s=delay,
                     receive_count=message.receive_count)

    # ---- shutdown ------------------------------------------------------------------------------

    async def _drain(self) -> None:
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks),
                                            timeout=self.settings.shutdown_deadline_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=10)
        await asyncio.sleep(0)

    async def _release_all(self, messages: list[ReceivedMessage]) -> None:
        for message in messages:
            await settle.release(self.sqs, self.queue_url, message, 0)
            self.stats.messages["released"] += 1


def _received(raw: dict[str, Any]) -> ReceivedMessage:
    attrs = raw.get("Attributes", {})
    return ReceivedMessage(message_id=raw["MessageId"], receipt_handle=raw["ReceiptHandle"],
                           body=raw.get("Body", ""),
                           sent_at_ms=int(attrs.get("SentTimestamp", time.time() * 1000)),
                           receive_count=int(attrs.get("ApproximateReceiveCount", 1)),
                           attributes=raw.get("MessageAttributes", {}))
