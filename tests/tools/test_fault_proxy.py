"""The chaos run's fault proxy, against the embedded stack: the faults it reports are the faults
it makes (a partial batch failure really leaves its failed entries undone)."""

from __future__ import annotations

import pytest
from botocore.exceptions import BotoCoreError, ClientError

from tools.lab.chaos.fault_proxy import FaultProxy
from worker.aws import boto3_client


def clients(stack, url):
    return (boto3_client("sqs", stack.region, url), boto3_client("s3", stack.region, url))


def test_a_partial_delete_batch_deletes_only_the_entries_it_reports_done(stack, queues):
    queues.drain(stack.queue_url)  # the bucket's s3:TestEvent
    with FaultProxy(stack.endpoint_url, rate=1.0, kinds={"sqs:DeleteMessageBatch"},
                    faults={"sqs:DeleteMessageBatch": ("partial_batch",)}) as proxy:
        sqs, _ = clients(stack, proxy.url)
        for i in range(10):
            sqs.send_message(QueueUrl=stack.queue_url, MessageBody=f"m{i}")
        got = sqs.receive_message(QueueUrl=stack.queue_url, MaxNumberOfMessages=10,
                                  VisibilityTimeout=0)["Messages"]
        result = sqs.delete_message_batch(QueueUrl=stack.queue_url, Entries=[
            {"Id": m["Body"], "ReceiptHandle": m["ReceiptHandle"]} for m in got])
    failed = {f["Id"] for f in result.get("Failed", [])}
    done = {s["Id"] for s in result.get("Successful", [])}
    assert failed and failed | done == {m["Body"] for m in got} and not failed & done
    assert all(f["SenderFault"] is False for f in result["Failed"])
    left = {m["Body"] for m in queues.drain(stack.queue_url)}
    assert left == failed  # what was reported failed is still there, nothing else
    assert proxy.injected["sqs:DeleteMessageBatch partial_batch"] == 1


def test_a_get_object_reset_mid_body_fails_the_read(stack, tmp_path):
    boto3_client("s3", stack.region, stack.endpoint_url).put_object(
        Bucket=stack.bucket, Key="big.bin", Body=b"x" * 200_000)
    with FaultProxy(stack.endpoint_url, rate=1.0, kinds={"s3:GetObject"},
                    faults={"s3:GetObject": ("reset_mid_body",)}) as proxy:
        _, s3 = clients(stack, proxy.url)
        response = s3.get_object(Bucket=stack.bucket, Key="big.bin")
        with pytest.raises((BotoCoreError, OSError)):
            response["Body"].read()
    assert proxy.calls["s3:GetObject"] == 1


def test_calls_are_counted_by_kind_and_an_outage_fails_every_one(stack):
    with FaultProxy(stack.endpoint_url) as proxy:
        sqs, s3 = clients(stack, proxy.url)
        sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=0)
        s3.list_objects_v2(Bucket=stack.bucket)  # not a worker call: passed, not counted
        proxy.outage("sqs:ReceiveMessage")
        with pytest.raises(ClientError) as exc:
            sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=0)
        proxy.restore("sqs:ReceiveMessage")
        sqs.receive_message(QueueUrl=stack.queue_url, WaitTimeSeconds=0)
    assert exc.value.response["Error"]["Code"] == "InternalError"
    retried = proxy.calls["sqs:ReceiveMessage"] - 2  # botocore's own tries during the outage
    assert retried > 1 and proxy.injected_by_kind() == {"sqs:ReceiveMessage": retried}
    assert "s3:GetObject" not in proxy.calls
