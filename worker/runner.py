"""The run loop: long-poll, hand each message to its own task, settle it, drain on a stop.

One asyncio loop does the network (the job queue through its port, ``worker.queue_port``; S3 and
SNS through aiobotocore); decoding runs in a thread pool and inference in the replica threads.
The poller receives only while fewer than the in-flight limit of messages are held
(backpressure), and every held message has a visibility heartbeat.
Each message's handling ends in one outcome (``worker.settle``): deleted only after every verdict
it asked for has been published, released for a retry, or dead-lettered.  A stop (SIGTERM, the idle
limit, a dead replica) ends receiving; work in flight finishes or is released by the shutdown
deadline.  AWS refusing the worker past ``--fatal-after-s`` (``worker.fault_bound``) stops it too,
releasing what it holds at once; ``run()`` then raises ``AwsUnavailable``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from worker import settle
from worker.exceptions import AwsUnavailable, PoisonMessage, ReplicaDied, RetryLater
from worker.fault_bound import FaultBound
from worker.heartbeat import Heartbeat
from worker.records import Job
from worker.logs import get_logger
from worker.messages import parse_body
from worker.metrics import Metrics
from worker.publish import Publisher
from worker.queue_port import QueuePort, ReceivedMessage
from worker.settings import Settings
from worker.settle import DeadLetter, Delete, Outcome, Release, Settler
from worker.verdict import Verdict

log = get_logger(__name__)
# One job through the stages: (job, timings so far) -> its verdict (worker.pipeline.process_job).
RunJob = Callable[[Job, dict[str, float]], Awaitable[Verdict]]


@dataclass(frozen=True)
class PollPause:
    """The pause after a failed receive: ``first_s``, doubled per failure, at most ``max_s``."""

    first_s: float = 1.0
    max_s: float = 30.0

    def after(self, previous_s: float) -> float:
        return min(self.max_s, max(self.first_s, previous_s * 2))


@dataclass
class WorkerStats:
    """What a run settled, by outcome; the demo and the benchmark read it."""

    messages: collections.Counter = field(default_factory=collections.Counter)
    verdicts: list[Verdict] = field(default_factory=list)


class Worker:
    """Polls ``queue`` until ``request_stop()``, ``abort()`` or the idle limit.

    Built inside the running event loop that will ``run()`` it; its clock is that loop's.
    """

    def __init__(self, settings: Settings, queue: QueuePort, publisher: Publisher,
                 run_job: RunJob, metrics: Metrics, keep_verdicts: bool = False,
                 pause: PollPause = PollPause(), faults: FaultBound | None = None) -> None:
        settings.require("topic_arn")
        self.settings, self.queue, self.publisher = settings, queue, publisher
        self.run_job, self.metrics, self.keep_verdicts, self.pause = (run_job, metrics,
                                                                      keep_verdicts, pause)
        self._loop = asyncio.get_running_loop()
        self.heartbeat = Heartbeat(queue, settings.visibility_timeout_s,
                                   settings.heartbeat_interval_s, settings.processing_deadline_s,
                                   clock=self._loop.time)
        self.stats = WorkerStats()
        self.settler = Settler(queue, metrics, self.stats.messages, settings.visibility_timeout_s)
        self.failure: ReplicaDied | AwsUnavailable | None = None
        # The publisher's client may report into the same bound (worker.fault_bound).
        self.faults = faults or FaultBound(settings.fatal_after_s)
        self.faults.clock, self.faults.on_expired = self._loop.time, self._give_up
        self._tasks: set[asyncio.Task] = set()
        self._stopping = asyncio.Event()
        self._pause_s = 0.0
        self._idle_since = 0.0

    def request_stop(self) -> None:
        """Stop receiving; in-flight work finishes or is released by the shutdown deadline."""
        if not self._stopping.is_set():
            log.info("stop requested; draining", in_flight=len(self._tasks))
            self._stopping.set()

    def abort(self, failure: ReplicaDied) -> None:
        """From any thread: a replica died; stop as on SIGTERM, then ``run()`` raises it."""
        with contextlib.suppress(RuntimeError):  # the loop has closed: this run is over anyway
            self._loop.call_soon_threadsafe(self._abort, failure)

    def _abort(self, failure: ReplicaDied) -> None:
        if self.failure is None:
            log.error("replica died; the worker stops and exits", error=str(failure))
            self.failure = failure
        self.request_stop()

    def _give_up(self, failure: AwsUnavailable) -> None:
        """AWS has refused the worker past its bound: stop, and release held messages now."""
        if self.failure is None:
            log.error("AWS keeps refusing the worker; releasing what it holds and exiting",
                      error=str(failure))
            self.failure = failure
        self.request_stop()
        for task in list(self._tasks):  # each one's handler releases its message on cancel
            task.cancel()

    async def run(self) -> WorkerStats:
        """Poll, then drain; raises ``ReplicaDied`` (or ``AwsUnavailable``) after the drain if a
        replica died (AWS refused the worker past its bound)."""
        beat = asyncio.create_task(self.heartbeat.run())
        try:
            await self._poll_until_stopped()
            await self._drain()
        finally:
            beat.cancel()
        if self.failure is not None:
            raise self.failure
        return self.stats

    # ---- polling -------------------------------------------------------------------------------

    async def _poll_until_stopped(self) -> None:
        self._idle_since = self._loop.time()
        while not self._stopping.is_set():
            free = self.settings.in_flight_limit - len(self._tasks)
            if free <= 0:
                await self._wait_for_capacity()
            elif not await self._poll(min(self.settings.max_messages, free)):
                log.info("queue idle; exiting", idle_s=self.settings.exit_when_idle_s)
                return

    async def _poll(self, count: int) -> bool:
        """Receive and start up to ``count`` messages; False once idle for the idle limit."""
        messages = await self._receive_or_pause(count)
        if messages is None:
            if self._idle():  # idle by the clock, but only because receives fail: not "done"
                self._give_up(AwsUnavailable(
                    f"sqs:ReceiveMessage failed through the {self.settings.exit_when_idle_s:g} s "
                    f"idle limit (--exit-when-idle-s)"))
            return True
        if self._stopping.is_set():
            await self._release_unstarted(messages)
            return True
        for message in messages:
            self._start(message)
        if messages or self._tasks:
            self._idle_since = self._loop.time()
        return not self._idle()

    def _idle(self) -> bool:
        limit = self.settings.exit_when_idle_s
        return bool(limit) and self._loop.time() - self._idle_since >= limit

    async def _receive_or_pause(self, count: int) -> list[ReceivedMessage] | None:
        """The messages received, or None after a failed receive and the pause that follows."""
        try:
            messages = await self.queue.receive(count, self._wait_s(),
                                                self.settings.visibility_timeout_s)
        except Exception as exc:  # credentials, DNS, a dropped connection: pause, not spin
            self._pause_s = self.pause.after(self._pause_s)
            log.error("receive failed; pausing", error=str(exc), pause_s=self._pause_s)
            self.faults.failed("sqs:ReceiveMessage", exc)
            await self._sleep_unless_stopped(self._pause_s)
            return None
        self._pause_s = 0.0
        self.faults.succeeded("sqs:ReceiveMessage")
        return messages

    def _wait_s(self) -> int:
        wait = self.settings.wait_time_s
        if self.settings.exit_when_idle_s:
            wait = min(wait, max(1, int(self.settings.exit_when_idle_s)))
        if self._tasks:
            wait = min(wait, 1)  # keep topping up while work is in flight
        return wait

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
        self.heartbeat.hold(message, task.cancel)

    # ---- one message ---------------------------------------------------------------------------

    async def _handle(self, message: ReceivedMessage) -> None:
        try:
            await self.settler.settle(message, await self._outcome(message))
        except asyncio.CancelledError:  # the shutdown or the processing deadline passed
            await self.settler.settle(message, Release())
            raise
        finally:
            self.heartbeat.drop(message.message_id)

    async def _outcome(self, message: ReceivedMessage) -> Outcome:
        """What the message deserves: the one place where a failure becomes an outcome."""
        try:
            return await self._process(message)
        except PoisonMessage as exc:
            return DeadLetter(exc.reason)
        except ReplicaDied as exc:  # not the message's fault: straight back, for another worker
            self._abort(exc)  # and receive nothing more, whether or not the pool told us yet
            return Release()
        except RetryLater as exc:
            return settle.retry(message, str(exc), self.settings.visibility_timeout_s)
        except Exception as exc:
            log.exception("unexpected failure; message will be retried",
                          message_id=message.message_id)
            return settle.retry(message, repr(exc), self.settings.visibility_timeout_s)

    async def _process(self, message: ReceivedMessage) -> Outcome:
        received_at = self._loop.time()
        parsed = parse_body(message.body)
        if parsed.kind == "test_event":
            return Delete(test_event=True)
        queue_wait = max(0.0, time.time() * 1000 - message.sent_at_ms)
        verdicts = await asyncio.gather(*(self.run_job(job, {"queue_wait": queue_wait})
                                          for job in parsed.jobs))
        for verdict in verdicts:  # deleted only when every job's verdict is published
            await self._publish(verdict, received_at, message)
        return Delete()

    async def _publish(self, verdict: Verdict, received_at: float,
                       message: ReceivedMessage) -> None:
        started = time.perf_counter()
        budget_s = self.settings.processing_deadline_s - (self._loop.time() - received_at)
        await self.publisher.publish(verdict, budget_s)
        self._record(verdict, (time.perf_counter() - started) * 1000, message)

    def _record(self, verdict: Verdict, publish_ms: float, message: ReceivedMessage) -> None:
        timings = {**verdict.timings_ms.stages(), "publish": round(publish_ms, 1)}
        log.info("verdict", message_id=message.message_id, bucket=verdict.video.bucket,
                 key=verdict.video.key, status=verdict.status, decision=verdict.decision,
                 error_code=verdict.error_code, timings_ms=timings,
                 receive_count=message.receive_count, idempotency_key=verdict.idempotency_key)
        self.metrics.verdict(verdict, publish_ms)
        if self.keep_verdicts:
            self.stats.verdicts.append(verdict)

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

    async def _release_unstarted(self, messages: list[ReceivedMessage]) -> None:
        for message in messages:  # received as the stop came: handed back untouched
            await self.settler.settle(message, Release())
