"""Replayed dead letters are processed by the real worker into verdicts, end to end."""

from __future__ import annotations

import json
import subprocess

import pytest

from tools.lab.harness import read_verdicts, upload, worker_command
from tools.lab.letters import cli_env
from tools.lab.harness import modfleet
from worker.messages import parse_body
from tools.lab.sample_videos import VideoSpec, write_video

pytestmark = pytest.mark.slow


def test_replayed_dead_letters_become_verdicts(stack, sqs, queues, tmp_path):
    queues.drain(stack.queue_url)  # the stack's s3:TestEvent
    keys = []
    for i, name in enumerate(["clips/a 1.mp4", "clips/b+2.mp4", "other/c.mp4"]):
        path = write_video(VideoSpec(f"v{i}.mp4", width=96, height=64, seconds=1.0, fps=8,
                                     seed=i), tmp_path)
        upload(stack, path, name)
        keys.append(name)
    # The real S3 notifications, dead-lettered as SQS's redrive does it (body kept, no
    # attributes), as after a fleet-wide outage; plus one direct job the worker had dead-lettered.
    notifications = queues.drain(stack.queue_url)
    assert len(notifications) == 3
    for message in notifications:
        sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=message["Body"])
    sqs.send_message(QueueUrl=stack.dlq_url, MessageBody=json.dumps(
        {"bucket": stack.bucket, "key": "clips/a 1.mp4"}), MessageAttributes={
        "modfleet.error_code": {"DataType": "String", "StringValue": "poison_body"},
        "modfleet.reason": {"DataType": "String", "StringValue": "test"},
        "modfleet.source_queue": {"DataType": "String", "StringValue": stack.queue_url}})

    replayed = subprocess.run(modfleet("replay-dlq", "--dlq-url", stack.dlq_url, "--match",
                                          "^clips/", "--json"),
                              env=cli_env(stack), capture_output=True, text=True, timeout=60)
    assert replayed.returncode == 0, replayed.stderr
    summary = json.loads(replayed.stdout)
    assert (summary["moved"], summary["skipped"]) == (3, 1)

    worker = subprocess.run(worker_command(stack, "--exit-when-idle", "4"), capture_output=True,
                            text=True, timeout=300)

    assert worker.returncode == 0, worker.stderr[-3000:]
    verdicts = read_verdicts(stack, expect_at_least=3)
    assert sorted(v["video"]["key"] for v in verdicts) == ["clips/a 1.mp4", "clips/a 1.mp4",
                                                           "clips/b+2.mp4"]
    assert all(v["status"] == "ok" and v["video"]["bucket"] == stack.bucket for v in verdicts)
    # The replayed duplicate of clips/a 1.mp4 is recognisable by its idempotency key.
    same = [v["idempotency_key"] for v in verdicts if v["video"]["key"] == "clips/a 1.mp4"]
    assert same[0] == same[1]
    assert queues.depth(stack.queue_url) == {"visible": 0, "in_flight": 0}
    left = queues.drain(stack.dlq_url)  # the one that did not match is still dead-lettered
    assert [job.key for m in left for job in parse_body(m["Body"]).jobs] == ["other/c.mp4"]
