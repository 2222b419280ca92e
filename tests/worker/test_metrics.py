"""CloudWatch EMF records on stdout: the metrics and dimension sets of CONTRACTS.md."""

import asyncio
import json
import threading

import pytest
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from model.api import ModelIdentity, ModelOutput
from tools.lab.chaos.fault_proxy import FaultProxy
from tools.lab.embedded_aws import drain_tap
from worker import verdict as v
from worker.aws import client_kwargs
from worker.exceptions import RetryLater
from worker.metrics import Metrics
from worker.publish import Publisher
from worker.records import Job

MODEL = ModelIdentity("m", "1", "torch", "none", True, "p")
CTX = v.Context(region="us-east-1", worker_id="w/1", model=MODEL)
JOB = Job("b", "k.mp4")


class Records(list):
    """A metrics sink: the records, parsed."""

    def __call__(self, line: str) -> None:
        self.append(json.loads(line))

    def directives(self, metric: str) -> list[dict]:
        """Every directive (across records) that names ``metric``."""
        return [d for r in self for d in r["_aws"]["CloudWatchMetrics"]
                if metric in {m["Name"] for m in d["Metrics"]}]


def test_records_from_concurrent_threads_stay_one_per_line(capfd):
    # Two threads writing to a real file descriptor (capfd), as replica threads and the event
    # loop do on the worker's stdout: every line must be one whole record.
    metrics = Metrics(True, "us-east-1")

    def report(replica: int) -> None:
        for _ in range(2000):
            metrics.batch(replica, real_rows=1, batch_size=2, seconds=0.01)

    threads = [threading.Thread(target=report, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    records = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert len(records) == 4000
    assert sorted({r["Replica"] for r in records}) == ["0", "1"]
    assert all(r["BatchFill"] == 50.0 for r in records)
    assert all(r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Replica"]] for r in records)


def test_a_verdict_counts_a_video_by_status_and_decision_and_times_each_stage():
    records = Records()
    verdict = v.ok_verdict(JOB, v.VideoFacts(), ModelOutput((), "block"), CTX,
                           {"queue_wait": 5.0, "fetch": 2.0, "batch_wait": 1.0, "infer": 7.25})
    Metrics(True, "us-east-1", sink=records).verdict(verdict, publish_ms=3.04)
    [record] = records
    [videos] = records.directives("Videos")
    assert videos["Dimensions"] == [[], ["Status"], ["Decision"], ["Status", "Decision"]]
    assert (record["Videos"], record["Status"], record["Decision"]) == (1, "ok", "block")
    [latencies] = records.directives("PublishLatency")
    assert latencies["Dimensions"] == [[]]
    assert {m["Name"]: m["Unit"] for m in latencies["Metrics"]} == {
        name: "Milliseconds" for name in ("QueueWaitLatency", "FetchLatency", "BatchWaitLatency",
                                          "InferLatency", "PublishLatency")}
    assert (record["InferLatency"], record["PublishLatency"]) == (7.2, 3.0)
    assert "ErrorCode" not in record


def test_an_error_verdict_is_also_counted_by_its_code():
    records = Records()
    verdict = v.error_verdict(JOB, v.VideoFacts(), "too_long", "3 h", CTX, {"fetch": 1.0})
    Metrics(True, "us-east-1", sink=records).verdict(verdict, publish_ms=1.0)
    [videos] = records.directives("Videos")
    assert videos["Dimensions"][-1] == ["Status", "ErrorCode"]
    assert (records[0]["Status"], records[0]["Decision"], records[0]["ErrorCode"]) == (
        "error", "review", "too_long")


def test_a_count_with_a_dimension_is_recorded_in_total_too():
    records = Records()
    metrics = Metrics(True, "us-east-1", sink=records)
    metrics.count("DeadLettered", Reason="not_a_job")
    metrics.count("Retries")
    assert records.directives("DeadLettered")[0]["Dimensions"] == [[], ["Reason"]]
    assert records.directives("Retries")[0]["Dimensions"] == [[]]
    assert records[0]["Reason"] == "not_a_job" and records[0]["DeadLettered"] == 1


def test_disabled_metrics_write_nothing():
    records = Records()
    Metrics(False, "us-east-1", sink=records).count("Retries")
    assert records == []


def test_every_failed_publish_attempt_counts_once(stack):
    # A real SNS (the embedded stack) behind the fault proxy; botocore's own retries are off so
    # that each of the publisher's attempts is one call the proxy counts.
    records = Records()
    verdict = v.ok_verdict(JOB, v.VideoFacts(), ModelOutput((), "allow"), CTX, {})

    async def scenario(proxy: FaultProxy) -> None:
        kwargs = {**client_kwargs(stack.region, proxy.url),
                  "config": AioConfig(retries={"mode": "standard", "total_max_attempts": 1})}
        async with get_session().create_client("sns", **kwargs) as sns:
            publisher = Publisher(sns, stack.topic_arn, max_backoff_s=0.02,
                                  metrics=Metrics(True, stack.region, sink=records))
            proxy.outage("sns:Publish")
            for _ in range(2):  # each makes one attempt or more, as many as fit its budget
                with pytest.raises(RetryLater):
                    await publisher.publish(verdict, budget_s=0.3)
            failures = len(records)
            assert failures == proxy.injected_by_kind()["sns:Publish"] >= 2
            proxy.restore("sns:Publish")
            await publisher.publish(verdict, budget_s=5)
            assert len(records) == failures  # a publish that succeeds counts no failure

    with FaultProxy(stack.endpoint_url) as proxy:
        asyncio.run(scenario(proxy))
    assert {r["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Name"] for r in records} == {
        "PublishFailures"}
    assert all(r["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]] for r in records)
    assert [m.verdict["video"]["key"] for m in drain_tap(stack, 1)] == [JOB.key]
