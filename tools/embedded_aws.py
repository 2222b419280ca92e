"""The embedded AWS stack: moto in server mode on loopback, provisioned like one region of infra/.

A real HTTP endpoint that the real boto3 and aiobotocore clients talk to, so the worker and the
operator tools run unchanged against it.  Provisioned as infra/ does it: a versioned upload bucket
whose object-created notifications feed the job queue, a dead-letter queue with a redrive policy, a
verdict topic, and a "tap" queue subscribed to the topic (raw delivery) so that verdicts can be read
back.  S3 event notifications carry the object's ``versionId``, as real S3's do for a versioned
bucket (moto 5 leaves it out, so two uploads to one key would both name the latest version).
``StartMessageMoveTask`` is not implemented by moto, which is why `replay-dlq` moves messages
itself by default.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from worker.aws import boto3_client


@dataclass(frozen=True)
class StackInfo:
    """Where everything of one embedded stack lives."""

    endpoint_url: str
    region: str
    bucket: str
    queue_url: str
    dlq_url: str
    topic_arn: str
    tap_queue_url: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    def env(self) -> dict[str, str]:
        """MODFLEET_* variables that point a worker or tool at this stack."""
        return {"MODFLEET_ENDPOINT_URL": self.endpoint_url, "MODFLEET_REGION": self.region,
                "MODFLEET_QUEUE_URL": self.queue_url, "MODFLEET_DLQ_URL": self.dlq_url,
                "MODFLEET_TOPIC_ARN": self.topic_arn}


class EmbeddedAws:
    """moto's ThreadedMotoServer on a loopback port; ``start()`` / ``stop()``, or a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port or _free_port(host)
        self._server: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> EmbeddedAws:
        import logging

        from moto.server import ThreadedMotoServer  # heavy import, only where the stack is wanted

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one access-log line per request
        _speed_up_moto_sqs()
        _s3_events_with_version_ids()
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> EmbeddedAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EmbeddedAwsProcess(EmbeddedAws):
    """The same server in a child process, so that its CPU is not the caller's (the benchmark
    measures the worker process's CPU as the host's cost; on AWS, S3 runs elsewhere)."""

    def start(self) -> EmbeddedAwsProcess:
        self._server = subprocess.Popen(
            [sys.executable, "-m", "tools.embedded_aws", self.host, str(self.port)],
            stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self._server.poll() is not None:
                raise RuntimeError(f"the embedded AWS process exited ({self._server.returncode})")
            try:
                socket.create_connection((self.host, self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the embedded AWS process did not listen within 60 s")

    def cpu_s(self) -> float:
        """CPU seconds the server process has used so far (Linux ``/proc``)."""
        fields = Path(f"/proc/{self._server.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> None:
        if self._server is not None:
            self._server.terminate()
            try:
                self._server.wait(10)
            except subprocess.TimeoutExpired:
                self._server.kill()
                self._server.wait(10)
            self._server = None


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
    dlq_arn = _queue_arn(sqs, dlq_url)
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)}
    queue_url = sqs.create_queue(QueueName=f"{name}-jobs", Attributes={
        "VisibilityTimeout": str(visibility_timeout_s),
        "RedrivePolicy": json.dumps(redrive)})["QueueUrl"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": _queue_arn(sqs, queue_url),
                                 "Events": ["s3:ObjectCreated:*"]}]})

    topic_arn = sns.create_topic(Name=f"{name}-verdicts")["TopicArn"]
    tap_url = sqs.create_queue(QueueName=f"{name}-verdicts-tap")["QueueUrl"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=_queue_arn(sqs, tap_url),
                  Attributes={"RawMessageDelivery": "true"})
    return StackInfo(endpoint_url=endpoint_url, region=region, bucket=bucket, queue_url=queue_url,
                     dlq_url=dlq_url, topic_arn=topic_arn, tap_queue_url=tap_url)


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


def _queue_arn(sqs: Any, queue_url: str) -> str:
    attrs = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return attrs["Attributes"]["QueueArn"]


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _speed_up_moto_sqs() -> None:
    """Make moto's SQS O(1) per message where it is O(queue length), keeping its behaviour.

    moto 5 re-counts every message of a queue for each message it receives or sends (its
    retention check builds all queue attributes, and reads the clock through naive datetimes), so
    a DLQ of 1,000 messages or a benchmark corpus took minutes on two cores.  The same checks,
    computed directly.  Skipped, harmlessly, if a moto release renames what it replaces.
    """
    import time

    import moto.sqs.models as models

    backend = models.SQSBackend
    if getattr(backend, "_modfleet_fast", False) or not hasattr(
            backend, "is_message_valid_based_on_retention_period"):
        return
    slow_time, slow_millis = models.unix_time, models.unix_time_millis

    def within_retention(self: Any, queue_name: str, message: Any) -> bool:
        retention_s = int(self.get_queue(queue_name).message_retention_period)
        return retention_s + message.sent_timestamp / 1000 > time.time()

    backend.is_message_valid_based_on_retention_period = within_retention
    models.unix_time = lambda dt=None: time.time() if dt is None else slow_time(dt)
    models.unix_time_millis = lambda dt=None: (time.time() * 1000.0 if dt is None
                                               else slow_millis(dt))
    backend._modfleet_fast = True


def _s3_events_with_version_ids() -> None:
    """Add ``versionId`` to moto's S3 event records, as S3 sends it for a versioned bucket."""
    import moto.s3.notifications as notifications

    make_event = getattr(notifications, "_get_s3_event", None)
    if make_event is None or getattr(make_event, "_modfleet_versioned", False):
        return

    def with_version_id(event_name: str, bucket: Any, key: Any, *args: Any, **kwargs: Any
                        ) -> dict[str, Any]:
        event = make_event(event_name, bucket, key, *args, **kwargs)
        version = getattr(key, "version_id", None)
        if version and version != "null":
            for record in event.get("Records", []):
                record["s3"]["object"]["versionId"] = version
        return event

    with_version_id._modfleet_versioned = True  # type: ignore[attr-defined]
    notifications._get_s3_event = with_version_id


def _serve_until_terminated(host: str, port: int) -> None:
    """``python -m tools.embedded_aws HOST PORT``: the server of EmbeddedAwsProcess.

    SIGTERM's default action ends it: the server keeps nothing worth a graceful stop, and
    werkzeug's shutdown could hang when asked right after the start.
    """
    import signal

    EmbeddedAws(host, port).start()
    while True:
        signal.pause()


if __name__ == "__main__":
    _serve_until_terminated(sys.argv[1], int(sys.argv[2]))
