"""status against the embedded stack: depths, in flight, delayed, dead letters, oldest age, the
Auto Scaling group and the age of the last verdict."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time

import pytest

from tools.lab.emf_forwarder import forward
from tools.lab.fleet_group import fleet_group
from tools.lab.harness import ROOT, worker_command
from tools.ops.status import fleet_status
from worker.aws import boto3_client


def test_status_reports_each_queue_and_its_dead_letter_queue(stack, sqs, queues, run_cli):
    queues.drain(stack.queue_url)  # the stack's s3:TestEvent
    for i in range(5):
        sqs.send_message(QueueUrl=stack.queue_url, MessageBody=f"job {i}")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="later", DelaySeconds=600)
    sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=2, VisibilityTimeout=600)
    for i in range(3):
        sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=f"dead {i}")
    time.sleep(1.1)  # so that the oldest dead letter is measurably old

    done = run_cli("status", "--queue-url", stack.queue_url, "--queue-url", stack.tap_queue_url,
                   "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    jobs, tap = report["queues"]
    assert (jobs["visible"], jobs["in_flight"], jobs["delayed"]) == (3, 2, 1)
    assert jobs["max_receive_count"] == 3
    # No CloudWatch data on moto, and peeking would count receives towards maxReceiveCount.
    assert (jobs["oldest_age_s"], jobs["oldest_age_source"]) == (None, "unavailable")
    dlq = jobs["dlq"]
    assert dlq["queue_url"] == stack.dlq_url and dlq["visible"] == 3
    assert dlq["oldest_age_source"] == "peek" and dlq["oldest_age_s"] >= 1.0
    assert (tap["visible"], tap["dlq"], tap["oldest_age_source"]) == (0, None, "empty")
    # The peek left the dead letters visible.
    assert queues.depth(stack.dlq_url) == {"visible": 3, "in_flight": 0}


def test_peek_flag_and_cloudwatch_first(stack, sqs, queues):
    queues.drain(stack.queue_url)
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="job")
    peeked = fleet_status(sqs, [stack.queue_url], peek_all=True).queues[0]
    assert peeked.oldest_age_source == "peek" and peeked.oldest_age_s >= 0

    class CloudWatch:  # moto has no SQS metrics; a stand-in answers what CloudWatch would
        def get_metric_statistics(self, **kwargs):
            assert kwargs["MetricName"] == "ApproximateAgeOfOldestMessage"
            name = stack.queue_url.rsplit("/", 1)[-1]
            assert kwargs["Dimensions"] == [{"Name": "QueueName", "Value": name}]
            return {"Datapoints": [{"Timestamp": 1, "Maximum": 5.0},
                                   {"Timestamp": 2, "Maximum": 42.0}]}

        def get_metric_data(self, **kwargs):  # the worker's metrics: none yet
            return {"MetricDataResults": [{"Id": "videos", "Timestamps": [], "Values": []}]}

    measured = fleet_status(sqs, [stack.queue_url], cloudwatch=CloudWatch()).queues[0]
    assert (measured.oldest_age_s, measured.oldest_age_source) == (42.0, "cloudwatch")
    assert fleet_status(sqs, [stack.queue_url], cloudwatch=CloudWatch()).last_verdict.source == \
        "none"


def test_status_text_table_and_missing_queue(stack, run_cli):
    done = run_cli("status", "--queue-url", stack.queue_url)
    header, jobs = done.stdout.splitlines()[1:3]
    assert done.returncode == 0 and header.split()[:3] == ["queue", "visible", "in"]
    assert jobs.split()[:4] == [stack.queue_url.rsplit("/", 1)[-1], "1", "0", "0"]  # TestEvent
    env_less = run_cli("status")
    assert env_less.returncode == 2 and "--queue-url" in env_less.stderr


@pytest.mark.slow
def test_status_after_a_worker_run_shows_the_group_and_the_last_verdict(stack, sqs, queues,
                                                                        run_cli):
    # The worker's EMF lines reach moto's CloudWatch through the lab's stand-in for the agent.
    queues.drain(stack.queue_url)
    group = fleet_group(stack.endpoint_url, stack.region, f"{stack.bucket}-fleet", desired=2)
    sqs.send_message(QueueUrl=stack.queue_url,
                     MessageBody=json.dumps({"bucket": stack.bucket, "key": "missing.mp4"}))
    started = dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)

    worker = subprocess.run(worker_command(stack, "--exit-when-idle", "3", "--metrics"),
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert worker.returncode == 0, worker.stderr[-3000:]
    cloudwatch = boto3_client("cloudwatch", stack.region, stack.endpoint_url)
    assert forward(worker.stdout.splitlines(), cloudwatch) > 0

    done = run_cli("status", "--queue-url", stack.queue_url, "--asg", group, "--json")

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    fleet = report["autoscaling_group"]
    assert (fleet["name"], fleet["desired"], fleet["in_service"]) == (group, 2, 2)
    verdict = report["last_verdict"]
    assert verdict["source"] == "cloudwatch" and verdict["age_s"] is not None
    assert verdict["last_5_min"] >= 1  # the one verdict of this run, at least
    # This run's verdict: the newest period began no earlier than the minute the worker started.
    assert dt.datetime.fromisoformat(verdict["at"].replace("Z", "+00:00")) >= started
    table = run_cli("status", "--queue-url", stack.queue_url, "--asg", group).stdout
    assert f"auto scaling group {group}: desired 2, in service 2" in table
    assert "last verdict: " in table and "ago" in table


def test_status_without_cloudwatch_is_done_in_part(stack, sqs):
    # Stubbed: moto cannot refuse GetMetricData; a real account without the permission does.
    from botocore.stub import Stubber

    cloudwatch = boto3_client("cloudwatch", stack.region, stack.endpoint_url)
    with Stubber(cloudwatch) as stubber:
        stubber.add_client_error("get_metric_data", "AccessDenied", "not authorized")
        report = fleet_status(sqs, [stack.tap_queue_url], cloudwatch=cloudwatch)  # empty: no age
    assert report.last_verdict.source == "unavailable" and "AccessDenied" in \
        report.last_verdict.error
    assert not report.complete  # the command exits 1


def test_status_of_a_stack_finds_its_queue_and_group(stack, run_cli):
    group = fleet_group(stack.endpoint_url, stack.region, f"{stack.bucket}-fleet", desired=1,
                        stack=stack.name)
    done = run_cli("status", "--stack", stack.name, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["queues"][0]["queue_url"] == stack.queue_url
    assert (report["autoscaling_group"]["name"], report["autoscaling_group"]["desired"]) == (
        group, 1)


def test_status_of_a_group_that_is_not_there_is_the_operators_to_fix(stack, run_cli):
    done = run_cli("status", "--queue-url", stack.queue_url, "--asg", "no-such-group")
    assert done.returncode == 2 and "no-such-group" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_emf_forwarder_puts_one_datum_per_metric_and_dimension_set(stack):
    namespace = f"modfleet-{stack.bucket}"  # this test's own: moto's CloudWatch is shared
    line = json.dumps({"_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [
        {"Namespace": namespace, "Dimensions": [[], ["Status"]],
         "Metrics": [{"Name": "Videos", "Unit": "Count"}]}]}, "Status": "ok", "Videos": 1})
    cloudwatch = boto3_client("cloudwatch", stack.region, stack.endpoint_url)
    echoed: list[str] = []

    assert forward(["plain text\n", line], cloudwatch, echo=echoed.append) == 2

    assert echoed == ["plain text\n"]
    metrics = cloudwatch.list_metrics(Namespace=namespace)["Metrics"]
    dimension_sets = [m["Dimensions"] for m in metrics if m["MetricName"] == "Videos"]
    assert sorted(dimension_sets, key=len) == [[], [{"Name": "Status", "Value": "ok"}]]
