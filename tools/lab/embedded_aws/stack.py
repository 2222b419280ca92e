"""One region's resources on the embedded endpoint, provisioned as infra/ does it, and the tap
that reads verdicts back.

A versioned upload bucket whose object-created notifications feed the job queue, a dead-letter
queue with a redrive policy, a verdict topic, and a "tap" queue subscribed to the topic (raw
delivery) so that verdicts can be read back; the verdict cache table (on demand, TTL on
``expires_at``) and the records bucket (``evidence/``, ``hashlists/``) of issue 21.  Like the
Terraform module, it writes where they are as SSM parameters under ``/modfleet/<name>/``
(``worker.resources``), so that ``--stack`` (or the region's one stack) points every command at
them.  Unlike infra/, no KMS keys: the worker's evidence writes are tested with a key of moto's
KMS where a test asks for one.  ``StartMessageMoveTask`` is not implemented by moto, which is why
`replay-dlq` moves messages itself by default.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from tools.ops.queues import queue_arn
from worker.aws import boto3_client
from worker.resources import STACK_PARAMETERS, SSM_PREFIX
from worker.settings import StackRefs

EVIDENCE_PREFIX = "evidence/"
HASHLIST_PREFIX = "hashlists/"


@dataclass(frozen=True, kw_only=True)
class StackInfo(StackRefs):
    """Where everything of one embedded stack lives: the stack, and the tap queue that reads its
    verdicts back."""

    tap_queue_url: str
    name: str = ""  # the stack's name: its SSM parameters are under /modfleet/<name>/

    def as_dict(self) -> dict[str, str | None]:
        return asdict(self)

    def env(self) -> dict[str, str]:
        """MODFLEET_* variables that point a worker or tool at this stack."""
        env = {"MODFLEET_ENDPOINT_URL": self.endpoint_url or "", "MODFLEET_REGION": self.region,
               "MODFLEET_QUEUE_URL": self.queue_url, "MODFLEET_DLQ_URL": self.dlq_url,
               "MODFLEET_TOPIC_ARN": self.topic_arn}
        if self.verdict_table:
            env["MODFLEET_VERDICT_TABLE"] = self.verdict_table
        if self.records_bucket:
            env["MODFLEET_RECORDS_BUCKET"] = self.records_bucket
        return env


def provision(endpoint_url: str, region: str = "us-east-1", name: str = "modfleet",
              max_receive_count: int = 3, visibility_timeout_s: int = 300) -> StackInfo:
    """Create one region's resources on an endpoint (idempotent: existing ones are reused)."""
    s3 = boto3_client("s3", region, endpoint_url)
    sqs = boto3_client("sqs", region, endpoint_url)
    sns = boto3_client("sns", region, endpoint_url)

    bucket = f"{name}-uploads-{region}"
    create_args: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        create_args["CreateBucketConfiguration"] = {"LocationConstraint": region}
    s3.create_bucket(**create_args)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})

    dlq_url = sqs.create_queue(QueueName=f"{name}-jobs-dlq",
                               Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = queue_arn(sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
    queue_url = sqs.create_queue(QueueName=f"{name}-jobs", Attributes={
        "VisibilityTimeout": str(visibility_timeout_s),
        "RedrivePolicy": json.dumps(redrive)})["QueueUrl"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": queue_arn(sqs, queue_url),
                                 "Events": ["s3:ObjectCreated:*"]}]})

    topic_arn = sns.create_topic(Name=f"{name}-verdicts")["TopicArn"]
    tap_url = sqs.create_queue(QueueName=f"{name}-verdicts-tap")["QueueUrl"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn(sqs, tap_url),
                  Attributes={"RawMessageDelivery": "true"})
    table = _verdict_table(boto3_client("dynamodb", region, endpoint_url), name)
    records = f"{name}-records-{region}"
    s3.create_bucket(**{**create_args, "Bucket": records})
    info = StackInfo(endpoint_url=endpoint_url, region=region, bucket=bucket, queue_url=queue_url,
                     dlq_url=dlq_url, topic_arn=topic_arn, tap_queue_url=tap_url, name=name,
                     verdict_table=table, records_bucket=records)
    write_stack_parameters(boto3_client("ssm", region, endpoint_url), name, {  # those it has:
        parameter: getattr(info, setting) for setting, parameter in STACK_PARAMETERS.items()
        if getattr(info, setting, None)}  # no autoscaling-group until fleet_group makes one
        | {"evidence-prefix": EVIDENCE_PREFIX, "hashlist-prefix": HASHLIST_PREFIX})
    return info


def _verdict_table(dynamodb: Any, name: str) -> str:
    """The verdict cache table as infra/ makes it: key ``pk``, on demand, TTL on ``expires_at``."""
    table = f"{name}-verdicts"
    try:
        dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    except dynamodb.exceptions.ResourceInUseException:
        return table  # provisioned before: reused, as every other resource here
    dynamodb.update_time_to_live(TableName=table, TimeToLiveSpecification={
        "Enabled": True, "AttributeName": "expires_at"})
    return table


def write_stack_parameters(ssm: Any, name: str, values: dict[str, str]) -> None:
    """``/modfleet/<name>/<parameter>`` for each value, as the Terraform module writes them."""
    for parameter, value in values.items():
        ssm.put_parameter(Name=f"{SSM_PREFIX}{name}/{parameter}", Value=value, Type="String",
                          Overwrite=True)


@dataclass(frozen=True)
class TapMessage:
    """One verdict as a subscriber of the verdict topic received it."""

    verdict: dict[str, Any]
    attributes: dict[str, str]  # the SNS message attributes: decision, status, schema
    sent_at_s: float  # when SNS delivered it to the tap queue (epoch seconds)


def drain_tap(stack: StackInfo, expect_at_least: int = 0, timeout_s: float = 30.0
              ) -> list[TapMessage]:
    """Receive and delete every verdict on the tap queue, waiting up to ``timeout_s`` for at least
    ``expect_at_least``; stops at the first empty receive once that many have arrived."""
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    got: list[TapMessage] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = sqs.receive_message(
            QueueUrl=stack.tap_queue_url, MaxNumberOfMessages=10,
            WaitTimeSeconds=0 if len(got) >= expect_at_least else 1,
            MessageAttributeNames=["All"], MessageSystemAttributeNames=["SentTimestamp"])
        messages = response.get("Messages", [])
        for message in messages:
            got.append(TapMessage(
                verdict=json.loads(message["Body"]),
                attributes={k: v["StringValue"]
                            for k, v in message.get("MessageAttributes", {}).items()},
                sent_at_s=int(message["Attributes"]["SentTimestamp"]) / 1000))
        if messages:
            sqs.delete_message_batch(QueueUrl=stack.tap_queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                for i, m in enumerate(messages)])
        elif len(got) >= expect_at_least:
            break
    return got
