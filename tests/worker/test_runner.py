"""The run loop's logic on the lab's in-memory queue and topic: milliseconds, faults on demand.

The jobs are run by a stand-in for the stages (fetch, decode, model), so these tests are about the
poller, the settling and the stops; the real stages and the real SQS path run in tests/e2e (and
``SqsQueue`` in test_queue_port.py).  The worker runs with its default timings (20 s polls, 60 s
shutdown deadline, 5 s retry delays) on a virtual clock (tools.lab.virtual_time), except where a
replica thread is involved.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import numpy as np
import pytest
from structlog.testing import capture_logs

from model.api import Backend, Clip, DeviceSlot, ModelIdentity, ModelOutput
from tools.lab import virtual_time
from tools.lab.memory_queue import MemoryQueue, Redrive
from tools.lab.memory_topic import MemoryTopic
from worker import verdict as verdicts
from worker.exceptions import QueueCallFailed, ReplicaDied, RetryLater
from worker.records import Job
from worker.metrics import Metrics
from worker.publish import Publisher
from worker.queue_port import ATTR_ERROR_CODE, ATTR_REASON, ATTR_SOURCE_QUEUE
from worker.replicas import ReplicaPool
from worker.runner import PollPause, Worker
from worker.settings import Settings

TOPIC = "arn:aws:sns:us-east-1:000000000000:verdicts"
CONTEXT = verdicts.Context("us-east-1", "test/1",
                           ModelIdentity("stand-in", "1", "none", "none", True, "p"))


@pytest.fixture(autouse=True)
def quiet_logs():
    """Logs are not what these tests check, and rendering tracebacks costs seconds."""
    with capture_logs() as logs:
        yield logs


class Jobs:
    """Stands in for the stages: a job's verdict once ``gate`` is open; records concurrency."""

    def __init__(self, gated: bool = False) -> None:
        self.gate = asyncio.Event()
        if not gated:
            self.gate.set()
        self.started: list[str] = []
        self.running = self.max_running = 0
        self.failures: dict[str, BaseException] = {}

    async def __call__(self, job: Job, timings: dict[str, float]) -> dict:
        self.started.append(job.key)
        self.running += 1
        self.max_running = max(self.max_running, self.running)
        try:
            await self.gate.wait()
            await asyncio.sleep(0)  # let other messages overlap
            if job.key in self.failures:
                raise self.failures[job.key]
            return verdicts.ok_verdict(job, verdicts.VideoFacts(etag="e"),
                                       ModelOutput((), "allow"), CONTEXT, timings)
        finally:
            self.running -= 1


class Rig:
    """A queue whose redrive policy moves a message to its DLQ on the 4th receive, a topic, and
    the settings of one worker, in memory; ``dlq=False``: the worker is told of no DLQ."""

    def __init__(self, dlq: bool = True, poll_scale: float | None = None, **settings) -> None:
        self.clock = virtual_time.VirtualClock()
        clock = self.clock if poll_scale is None else time.monotonic  # a real loop: real time
        self.dlq = MemoryQueue("jobs-dlq", clock=clock)
        self.queue = MemoryQueue("jobs", clock=clock, redrive=Redrive(self.dlq, 3),
                                 dead_letter_queue=self.dlq if dlq else None,
                                 poll_scale=poll_scale or 1.0)
        self.sns, self.metrics = MemoryTopic(), []
        settings = {"exit_when_idle_s": 30.0} | settings
        self.settings = Settings(queue_url=self.queue.url, topic_arn=TOPIC,
                                 dlq_url=self.dlq.url if dlq else None, **settings)

    def send_jobs(self, count: int, prefix: str = "k") -> None:
        for i in range(count):
            self.queue.put(json.dumps({"bucket": "b", "key": f"{prefix}{i}"}))

    def worker(self, jobs, **kwargs) -> Worker:
        metrics = Metrics(True, "us-east-1", sink=lambda line: self.metrics.append(json.loads(line)))
        return Worker(self.settings, self.queue, Publisher(self.sns, TOPIC, 0.01), jobs, metrics,
                      **kwargs)

    def run(self, jobs, **kwargs) -> Worker:
        """Run a worker on the virtual clock until the queue has been idle for 30 s."""
        async def scenario() -> Worker:
            worker = self.worker(jobs, **kwargs)
            await worker.run()
            return worker
        return virtual_time.run(scenario(), self.clock)

    def run_until(self, scenario):
        return virtual_time.run(scenario(), self.clock)

    def published_keys(self) -> list[str]:
        return [json.loads(p.message)["video"]["key"] for p in self.sns.published]

    def metric_names(self) -> list[str]:
        return [m["Name"] for record in self.metrics
                for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]]

    def releases(self) -> list[int]:
        return [c["delay_s"] for c in self.queue.called("release")]


def test_backpressure_never_holds_more_than_the_in_flight_limit():
    rig = Rig(batch_size=2, max_in_flight=4)
    rig.send_jobs(30)
    jobs = Jobs()
    worker = rig.run(jobs)
    assert rig.queue.max_held == 4  # filled up to the limit, never past it
    assert jobs.max_running <= 4
    assert max(c["max_messages"] for c in rig.queue.called("receive")) <= 4
    assert sorted(rig.published_keys()) == sorted(f"k{i}" for i in range(30))
    assert rig.queue.bodies() == [] and worker.stats.messages["settled"] == 30
    assert rig.metric_names().count("Videos") == 30


def test_deletes_are_batched():
    rig = Rig(batch_size=4, max_in_flight=10, max_messages=10)
    rig.send_jobs(10)
    rig.run(Jobs())
    deletes = rig.queue.called("delete")
    assert sum(len(c["messages"]) for c in deletes) == 10
    assert len(deletes) < 10 and all(len(c["messages"]) <= 10 for c in deletes)


def test_stop_lets_in_flight_work_finish_and_leaves_the_rest_queued():
    rig = Rig(batch_size=2, max_in_flight=4)
    rig.send_jobs(6)
    jobs = Jobs(gated=True)

    async def scenario():
        worker = rig.worker(jobs)
        run = asyncio.create_task(worker.run())
        while len(jobs.started) < 4:
            await asyncio.sleep(0)
        worker.request_stop()
        jobs.gate.set()
        return await run

    stats = rig.run_until(scenario)
    assert stats.messages["settled"] == 4 and sorted(rig.published_keys()) == sorted(jobs.started)
    assert len(rig.queue.visible()) == 2 and rig.queue.held == set()


def test_stop_during_a_receive_releases_what_it_brought_at_once():
    rig = Rig()
    rig.send_jobs(3)
    jobs = Jobs()

    async def scenario():
        worker = rig.worker(jobs)
        rig.queue.on_receive = lambda messages: messages and worker.request_stop()  # SIGTERM
        return await worker.run()

    stats = rig.run_until(scenario)
    assert jobs.started == [] and stats.messages["released"] == 3
    assert rig.releases() == [0, 0, 0]
    assert len(rig.queue.visible()) == 3 and rig.queue.held == set()


def test_work_unfinished_at_the_shutdown_deadline_is_released():
    rig = Rig()
    rig.send_jobs(2)
    jobs = Jobs(gated=True)  # never opens: a stuck decode, say

    async def scenario():
        worker = rig.worker(jobs)
        run = asyncio.create_task(worker.run())
        while len(jobs.started) < 2:
            await asyncio.sleep(0)
        stopped_at = rig.clock()
        worker.request_stop()
        stats = await run
        assert rig.clock() - stopped_at >= rig.settings.shutdown_deadline_s
        return stats

    stats = rig.run_until(scenario)
    assert stats.messages["released"] == 2 and rig.releases() == [0, 0]
    assert rig.sns.published == [] and len(rig.queue.visible()) == 2


def test_the_heartbeat_holds_slow_work_past_the_visibility_timeout():
    rig = Rig(visibility_timeout_s=30, heartbeat_interval_s=10)
    rig.send_jobs(1)
    jobs = Jobs(gated=True)

    async def scenario():
        worker = rig.worker(jobs)
        run = asyncio.create_task(worker.run())
        await asyncio.sleep(100)  # more than three visibility timeouts, renewed every 10 s
        jobs.gate.set()
        return await run

    stats = rig.run_until(scenario)
    renewals = rig.queue.called("extend_visibility")
    assert len(renewals) >= 9 and {r["visibility_s"] for r in renewals} == {30}
    assert {m.body for r in renewals for m in r["messages"]} == {'{"bucket": "b", "key": "k0"}'}
    assert jobs.started == ["k0"] and stats.messages["settled"] == 1  # never received twice


def test_work_past_the_processing_deadline_is_released_until_the_redrive():
    rig = Rig(processing_deadline_s=120)
    rig.send_jobs(1)
    jobs = Jobs(gated=True)  # never opens: a hung decode, say
    worker = rig.run(jobs)
    # Released at once each time its deadline passed; after maxReceiveCount SQS moved it.
    assert rig.releases() == [0, 0, 0] and worker.stats.messages["released"] == 3
    assert rig.sns.published == [] and len(rig.dlq.bodies()) == 1


def test_poison_without_a_dlq_url_is_left_to_the_redrive_policy():
    rig = Rig(dlq=False)
    rig.queue.put("this is not a job")
    worker = rig.run(Jobs())
    # Released at once on each of maxReceiveCount (3) receives; then the redrive policy moved it.
    assert rig.releases() == [0, 0, 0] and worker.stats.messages["poison_left"] == 3
    assert rig.dlq.bodies() == ["this is not a job"]
    assert rig.queue.called("dead_letter") == [] and "DeadLettered" not in rig.metric_names()


def test_poison_with_a_dlq_url_is_dead_lettered_with_why_and_deleted():
    rig = Rig()
    rig.queue.put("[1, 2]", {"trace": "t"})
    worker = rig.run(Jobs())
    (sent,) = rig.queue.called("dead_letter")
    assert sent["code"] == "poison_body" and "not an object" in sent["reason"]
    (entry,) = rig.dlq.messages.values()
    assert entry.body == "[1, 2]" and entry.attributes[ATTR_ERROR_CODE] == "poison_body"
    assert "not an object" in entry.attributes[ATTR_REASON]
    assert entry.attributes[ATTR_SOURCE_QUEUE] == rig.queue.url
    assert entry.attributes["trace"] == "t"  # the original attributes travel along
    assert rig.queue.bodies() == [] and worker.stats.messages["dead_lettered"] == 1
    assert rig.metric_names() == ["DeadLettered"]


def test_an_unreachable_dlq_leaves_the_poison_message_to_come_back():
    rig = Rig()
    rig.queue.put("not json")
    rig.queue.fail("dead_letter", QueueCallFailed("dead_letter", "", "connection refused"))
    worker = rig.run(Jobs())
    # Back after 5 s, and dead-lettered on the second try.
    assert worker.stats.messages["retried"] == 1 and rig.releases() == [5]
    assert worker.stats.messages["dead_lettered"] == 1
    assert rig.queue.bodies() == [] and len(rig.dlq.bodies()) == 1


def test_a_failed_receive_pauses_doubling_to_the_cap_and_a_success_resets_it():
    rig = Rig()
    rig.send_jobs(1)
    down = [QueueCallFailed("receive", "", "connection refused") for _ in range(6)]
    rig.queue.fail("receive", *down[:4], None, *down[4:])
    worker = rig.run(Jobs(), pause=PollPause(first_s=1.0, max_s=5.0))
    at = [c.at for c in rig.queue.calls if c.operation == "receive"]
    gaps = [round(later - earlier, 3) for earlier, later in zip(at, at[1:])]
    assert gaps[:7] == [1.0, 2.0, 4.0, 5.0, 0.0, 1.0, 2.0]  # the 5th call got the message
    assert worker.stats.messages["settled"] == 1 and rig.published_keys() == ["k0"]


def test_a_failed_try_comes_back_with_a_growing_delay_until_the_redrive():
    rig = Rig()
    rig.send_jobs(1)
    jobs = Jobs()
    jobs.failures["k0"] = RetryLater("s3:GetObject throttled")
    worker = rig.run(jobs)
    assert rig.releases() == [5, 10, 20] and worker.stats.messages["retried"] == 3
    assert rig.metric_names() == ["Retries"] * 3
    assert len(rig.dlq.bodies()) == 1  # maxReceiveCount (3) reached: the redrive moved it


def test_a_multi_record_message_is_deleted_only_when_every_verdict_is_published():
    rig = Rig()
    records = [{"eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "b"}, "object": {"key": f"r{i}"}}} for i in range(3)]
    rig.queue.put(json.dumps({"Records": records}))
    outage = [RuntimeError("injected")]  # r1's first publish fails, nothing after it
    rig.sns.refuse = lambda body: outage.pop() if '"r1"' in body and outage else None
    worker = rig.run(Jobs())
    # First try: r0 went out, r1 did not, so the message was released, not deleted; the second
    # try published all three and deleted it.
    assert rig.published_keys() == ["r0", "r0", "r1", "r2"]
    assert rig.releases() == [5] and worker.stats.messages["retried"] == 1
    keys = [json.loads(p.message)["idempotency_key"] for p in rig.sns.published]
    assert keys[0] == keys[1]  # the repeat carries the same idempotency key
    assert worker.stats.messages["settled"] == 1 and rig.queue.bodies() == []
    assert len(rig.queue.called("delete")) == 1


def test_an_s3_test_event_is_acknowledged_without_a_verdict():
    rig = Rig()
    rig.queue.put(json.dumps({"Event": "s3:TestEvent", "Bucket": "b"}))
    worker = rig.run(Jobs())
    assert worker.stats.messages["test_event"] == 1 and rig.sns.published == []
    assert rig.queue.bodies() == []


# ---- a dead replica ----------------------------------------------------------------------------


class RuntimeLost(BaseException):
    """What a device runtime that tears down its thread raises: no ``Exception`` to catch."""


class DyingBackend(Backend):
    """Answers nothing: its first batch kills the replica thread (a lost NeuronCore, say)."""

    identity = CONTEXT.model

    def __init__(self, settings, slot) -> None: ...
    def load(self) -> None: ...
    def warm_up(self) -> None: ...
    def shutdown(self) -> None: ...

    def infer(self, batch):
        raise RuntimeLost("device runtime gone")


def test_a_dead_replica_stops_the_worker_and_releases_what_it_held():
    # A real loop (the replica is a thread) with 10 ms polls.
    rig = Rig(poll_scale=0.01, batch_size=2, max_in_flight=4, batch_wait_ms=0)
    rig.send_jobs(6)
    pool = ReplicaPool(rig.settings, factory=DyingBackend, slots=[DeviceSlot(0, "cpu", "cpu", 1)])
    pool.start()

    async def infer(job: Job, timings: dict[str, float]) -> dict:
        clip = Clip(np.zeros((1, 28, 28, 3), np.uint8), (0,), job.key)
        await asyncio.wrap_future(pool.submit(clip))
        raise AssertionError("a dead replica answered")

    async def scenario():
        worker = rig.worker(infer)
        with pool.watching(worker.abort):  # as WorkerService wires it
            await worker.run()

    try:
        with pytest.raises(ReplicaDied, match="device runtime gone"):
            asyncio.run(scenario())
    finally:
        pool.stop(timeout=5)
    assert rig.queue.held == set() and rig.sns.published == []
    assert rig.releases() == [0] * len(rig.releases()) and len(rig.releases()) >= 2
    assert len(rig.queue.visible()) == 6  # all back for another worker, at once


def test_clips_queued_for_a_dead_replica_fail_instead_of_hanging():
    settings = Settings(batch_size=2, batch_wait_ms=0)
    pool = ReplicaPool(settings, factory=DyingBackend, slots=[DeviceSlot(0, "cpu", "cpu", 1)])
    told = threading.Event()
    pool.start()
    try:
        with pool.watching(lambda death: told.set()):
            futures = [pool.submit(Clip(np.zeros((1, 28, 28, 3), np.uint8), (0,), f"c{i}"))
                       for i in range(5)]
            for future in futures:
                assert isinstance(future.exception(timeout=5), ReplicaDied)
            assert told.wait(5)
        late = pool.submit(Clip(np.zeros((1, 28, 28, 3), np.uint8), (0,), "late"))
        assert isinstance(late.exception(timeout=0), ReplicaDied)  # failed at once
    finally:
        pool.stop(timeout=5)
    pool.replicas[0].join(timeout=30)
    assert not pool.replicas[0].is_alive()
