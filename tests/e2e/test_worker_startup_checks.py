"""The worker refuses wrong AWS settings before it loads the model, and gives up on AWS refusing it
after start within --fatal-after-s, releasing what it holds.

`modfleet worker` runs as a subprocess against a stack on the embedded AWS endpoint.  Each start-up
refusal exits 2 with one line naming the setting, within the subprocess's 30 s limit, before the
model loads (no "worker polling" line), and the job sent beforehand is still in the queue.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tools.lab.harness import (FAST_MODEL, ROOT, modfleet, queue_depth, send, start, wait_for_log,
                               worker_command)
from worker.aws import boto3_client

pytestmark = pytest.mark.slow
JOB = {"bucket": "b", "key": "clips/one.mp4"}


def run_worker(command: list[str], env: dict[str, str] | None = None
               ) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, **(env or {})))


def assert_refused_at_start(result: subprocess.CompletedProcess, *phrases: str) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert lines[0].startswith("modfleet worker: ")
    for phrase in phrases:
        assert phrase in lines[0]
    return lines[0]


def test_a_missing_topic_exits_2_naming_it(stack):
    send(stack, JOB)
    before = queue_depth(stack)  # the job, and the s3:TestEvent the bucket's wiring sent
    missing = stack.topic_arn + "-typo"
    command = worker_command(stack)
    command[command.index(stack.topic_arn)] = missing
    assert_refused_at_start(run_worker(command), f"--topic-arn {missing}",
                            "topic not found in us-east-1", "NotFound")
    assert queue_depth(stack) == before


@pytest.mark.parametrize("by", ["url", "name"])
def test_a_missing_queue_exits_2_naming_it_and_the_region(stack, by):
    send(stack, JOB)
    before = queue_depth(stack)  # the job, and the s3:TestEvent the bucket's wiring sent
    missing = stack.queue_url + "-typo" if by == "url" else "no-such-jobs"
    command = worker_command(stack)
    command[command.index(stack.queue_url)] = missing
    assert_refused_at_start(run_worker(command), f"--queue-url {missing}",
                            "queue not found in us-east-1",
                            "AWS.SimpleQueueService.NonExistentQueue")
    assert queue_depth(stack) == before


def test_an_unknown_profile_exits_2_naming_it(stack, tmp_path):
    send(stack, JOB)
    before = queue_depth(stack)  # the job, and the s3:TestEvent the bucket's wiring sent
    config = tmp_path / "config"
    config.write_text("[profile ops]\nregion = us-east-1\n")
    result = run_worker(worker_command(stack),
                        env={"AWS_PROFILE": "nope", "AWS_CONFIG_FILE": str(config)})
    assert_refused_at_start(result, "AWS_PROFILE nope: no such profile", "ops")
    assert queue_depth(stack) == before


def test_queue_and_topic_come_from_the_stack_by_name(stack):
    """--stack alone: the worker reads queue, DLQ and topic from SSM and serves the queue."""
    send(stack, {"Service": "Amazon S3", "Event": "s3:TestEvent"})
    result = subprocess.run(
        modfleet("worker", "--stack", stack.name, "--endpoint-url", stack.endpoint_url,
                 "--wait-time-s", "1", "--log-format", "json", "--no-metrics", *FAST_MODEL,
                 "--exit-when-idle", "2"),
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "acknowledged s3:TestEvent" in result.stderr
    assert queue_depth(stack) == 0


def test_a_topic_deleted_after_start_ends_the_worker_with_the_job_released(stack):
    worker = start(worker_command(stack, "--fatal-after-s", "3", "--publish-retry-s", "1",
                                  "--visibility-timeout-s", "300"))
    try:
        wait_for_log(worker, "worker polling")
        boto3_client("sns", stack.region, stack.endpoint_url).delete_topic(
            TopicArn=stack.topic_arn)
        send(stack, {"bucket": stack.bucket, "key": "gone/missing.mp4"})  # a verdict to publish
        seen = wait_for_log(worker, "AWS keeps refusing the worker; releasing what it holds and "
                                    "exiting")
        code = worker.wait(timeout=60)
        rest = worker.stderr.read()
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 3, rest[-3000:]
    assert "sns:Publish has failed" in seen[-1]["error"] and "NotFound" in seen[-1]["error"]
    assert "released unfinished message" in rest
    assert "Traceback" not in rest
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    visible = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"]
    assert visible == "1"  # back at once, not after its 300 s visibility timeout


def test_a_queue_deleted_after_start_ends_the_worker_with_exit_3(stack):
    worker = start(worker_command(stack, "--fatal-after-s", "3"))
    try:
        wait_for_log(worker, "worker polling")
        boto3_client("sqs", stack.region, stack.endpoint_url).delete_queue(
            QueueUrl=stack.queue_url)
        seen = wait_for_log(worker, "AWS keeps refusing the worker; releasing what it holds and "
                                    "exiting", timeout=60)
        code = worker.wait(timeout=60)
        rest = worker.stderr.read()
    finally:
        if worker.poll() is None:
            worker.kill()
    assert code == 3, rest[-3000:]
    assert "sqs:ReceiveMessage has failed" in seen[-1]["error"]
    assert "NonExistentQueue" in seen[-1]["error"]
    assert rest.strip().splitlines()[-1].startswith("modfleet worker: sqs:ReceiveMessage")
