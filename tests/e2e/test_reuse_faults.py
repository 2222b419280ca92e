"""The verdict table fails like any AWS call (the fault proxy's DynamoDB faults), and nothing is
lost: a failed lookup runs the model, a failed write still publishes, and once the table is back
the cache fills again."""

from __future__ import annotations

import signal

import pytest

from tools.lab.chaos.fault_proxy import FaultProxy
from tools.lab.harness import (queue_depth, read_verdicts, reuse_flags, start, wait_for_log,
                               worker_command)
from tools.lab.sample_videos import VideoSpec, write_video
from worker import verdict as verdicts
from worker.aws import boto3_client

pytestmark = pytest.mark.slow


def put(stack, path, key):
    boto3_client("s3", stack.region, stack.endpoint_url).put_object(
        Bucket=stack.bucket, Key=key, Body=path.read_bytes(), ChecksumAlgorithm="SHA256")


def test_a_failing_table_costs_model_runs_not_verdicts(stack, tmp_path):
    clip = write_video(VideoSpec("c.mp4", width=96, height=64, seconds=1, fps=8, seed=5,
                                 scene="blocks"), tmp_path)
    dynamodb = boto3_client("dynamodb", stack.region, stack.endpoint_url)
    with FaultProxy(stack.endpoint_url, kinds={"dynamodb:GetItem", "dynamodb:PutItem"}) as proxy:
        proxy.outage("dynamodb:GetItem")
        proxy.outage("dynamodb:PutItem")
        worker = start(worker_command(stack, *reuse_flags(stack), "--near-duplicate-reuse",
                                      "none", endpoint_url=proxy.url))
        try:
            put(stack, clip, "first.mp4")
            logs = wait_for_log(worker, "verdict")
            assert any(e["event"] == "verdict cache write failed" for e in logs)
            put(stack, clip, "copy-during-outage.mp4")  # the lookup fails: the model runs
            logs = wait_for_log(worker, "verdict")
            assert any(e["event"] == "verdict cache lookup failed; running the model"
                       for e in logs)
            assert dynamodb.scan(TableName=stack.verdict_table)["Count"] == 0
            proxy.restore("dynamodb:GetItem")
            proxy.restore("dynamodb:PutItem")
            put(stack, clip, "copy-after.mp4")  # a miss (nothing was written), then written
            wait_for_log(worker, "verdict")
            put(stack, clip, "copy-cached.mp4")
            wait_for_log(worker, "verdict")
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(60) == 0

    got = {v["video"]["key"]: v for v in read_verdicts(stack, expect_at_least=4)}
    assert set(got) == {"first.mp4", "copy-during-outage.mp4", "copy-after.mp4",
                        "copy-cached.mp4"}
    for verdict in got.values():
        verdict.pop("_attributes")
        verdicts.validate(verdict)
    for key in ("first.mp4", "copy-during-outage.mp4", "copy-after.mp4"):
        assert got[key]["cache_hit"] is False and got[key]["timings_ms"]["infer"] > 0
    assert got["copy-cached.mp4"]["cached_from"]["idempotency_key"] == \
        got["copy-after.mp4"]["idempotency_key"]
    assert proxy.injected_by_kind()["dynamodb:GetItem"] >= 2  # botocore retried each lookup
    assert queue_depth(stack) == 0 and queue_depth(stack, stack.dlq_url) == 0
