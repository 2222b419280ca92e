"""status against the embedded stack: depths, in flight, delayed, dead letters, oldest age."""

from __future__ import annotations

import json
import time

from tools.ops.status import fleet_status


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

    measured = fleet_status(sqs, [stack.queue_url], cloudwatch=CloudWatch()).queues[0]
    assert (measured.oldest_age_s, measured.oldest_age_source) == (42.0, "cloudwatch")


def test_status_text_table_and_missing_queue(stack, run_cli):
    done = run_cli("status", "--queue-url", stack.queue_url)
    header, jobs = done.stdout.splitlines()[1:3]
    assert done.returncode == 0 and header.split()[:3] == ["queue", "visible", "in"]
    assert jobs.split()[:4] == [stack.queue_url.rsplit("/", 1)[-1], "1", "0", "0"]  # TestEvent
    env_less = run_cli("status")
    assert env_less.returncode == 2 and "--queue-url" in env_less.stderr
