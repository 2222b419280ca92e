"""AWS refusing the worker after start ends the run within --fatal-after-s, releasing what it holds.

On the lab's in-memory queue and topic and a virtual clock: the faults are botocore's own
exceptions as the real clients raise them (a deleted topic's NotFound, no credentials; the queue's
wrapped as SqsQueue wraps them), which moto cannot produce mid-run for credentials; the e2e test
(tests/e2e/test_worker_startup_checks.py) deletes a real topic and queue on the embedded stack.
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import NoCredentialsError
from structlog.testing import capture_logs

from botocore.exceptions import ClientError

from model.api import ModelOutput, ModelIdentity
from tools.lab import virtual_time
from tools.lab.memory_queue import MemoryQueue
from tools.lab.memory_topic import MemoryTopic
from worker import verdict as verdicts
from worker.exceptions import AwsUnavailable, QueueCallFailed
from worker.fault_bound import BoundedPublishes, FaultBound
from worker.metrics import Metrics
from worker.publish import Publisher
from worker.runner import Worker
from worker.settings import Settings

TOPIC = "arn:aws:sns:us-east-1:000000000000:verdicts"
CONTEXT = verdicts.Context("us-east-1", "test/1",
                           ModelIdentity("stand-in", "1", "none", "none", True, "p"))


@pytest.fixture(autouse=True)
def quiet_logs():
    with capture_logs() as logs:
        yield logs


async def verdict_for(job, timings):
    return verdicts.ok_verdict(job, verdicts.VideoFacts(etag="e"), ModelOutput((), "allow"),
                               CONTEXT, timings)


def client_error(operation: str, code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"fake {code}"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, operation)


def no_credentials() -> QueueCallFailed:
    """A receive without credentials, as SqsQueue raises it."""
    try:
        raise QueueCallFailed("sqs:ReceiveMessage", "", str(NoCredentialsError())) \
            from NoCredentialsError()
    except QueueCallFailed as exc:
        return exc


def run_worker(clock, queue, sns, settings):
    """Run one worker in memory; (the exception it raised, the virtual seconds it took)."""
    async def scenario():
        faults = FaultBound(settings.fatal_after_s)
        worker = Worker(settings, queue, Publisher(BoundedPublishes(sns, faults), TOPIC, 5.0),
                        verdict_for, Metrics(False, "us-east-1"), faults=faults)
        try:
            await worker.run()
        except AwsUnavailable as exc:
            return exc
        return None
    started = clock()
    failure = virtual_time.run(scenario(), clock)
    return failure, clock() - started


def rig(**settings):
    clock = virtual_time.VirtualClock()
    queue, sns = MemoryQueue("jobs", clock=clock), MemoryTopic()
    return clock, queue, sns, Settings(queue_url=queue.url, topic_arn=TOPIC, **settings)


def test_receives_failing_past_the_bound_end_the_run():
    clock, queue, sns, settings = rig(fatal_after_s=120)
    queue.fail("receive", *[no_credentials() for _ in range(1000)])
    failure, took_s = run_worker(clock, queue, sns, settings)
    assert failure is not None and "sqs:ReceiveMessage has failed" in str(failure)
    assert "Unable to locate credentials" in str(failure)
    assert 120 <= took_s <= 120 + 30 + 1  # the bound, plus at most one pause (30 s)


def test_exit_when_idle_still_fires_while_receives_fail():
    clock, queue, sns, settings = rig(exit_when_idle_s=10, fatal_after_s=3600)
    queue.fail("receive", *[no_credentials() for _ in range(1000)])
    failure, took_s = run_worker(clock, queue, sns, settings)
    assert failure is not None and "idle limit" in str(failure)
    assert took_s < 60


def test_a_deleted_topic_ends_the_run_and_releases_the_message_unpublished():
    clock, queue, sns, settings = rig(fatal_after_s=60, exit_when_idle_s=0)
    queue.put(json.dumps({"bucket": "b", "key": "clip.mp4"}))
    sns.refuse = lambda message: client_error("Publish", "NotFound", 404)
    failure, took_s = run_worker(clock, queue, sns, settings)
    assert failure is not None and "sns:Publish has failed" in str(failure)
    assert "NotFound" in str(failure)
    assert took_s < settings.processing_deadline_s  # not the publisher's own deadline
    assert sns.published == []
    assert queue.bodies() == [json.dumps({"bucket": "b", "key": "clip.mp4"})]
    releases = [c["delay_s"] for c in queue.called("release")]
    # Released at once, not left for its visibility timeout (a receive already in progress when
    # the stop came may take it once more, and hands it back untouched).
    assert releases and set(releases) == {0}
    assert queue.called("delete") == []


def test_an_sns_outage_is_not_counted_against_the_bound():
    clock, queue, sns, settings = rig(fatal_after_s=30, exit_when_idle_s=5,
                                      processing_deadline_s=120)
    queue.put(json.dumps({"bucket": "b", "key": "clip.mp4"}))
    outage_until = 90.0
    sns.refuse = lambda message: (client_error("Publish", "InternalError", 500)
                                  if clock() < outage_until else None)
    failure, _ = run_worker(clock, queue, sns, settings)
    assert failure is None
    assert [json.loads(p.message)["video"]["key"] for p in sns.published] == ["clip.mp4"]
