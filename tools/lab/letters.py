"""Dead letters for the operator-tool tests and runs: every accepted format with a unique id in
each body, real SQS calls to arrange and drain queues, the CLI's environment for a stack."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus

from more_itertools import chunked

from tools.ops.queues import queue_depth

ID_PATTERN = re.compile(r"id-\d{5}")


def letter_id(body: str) -> str:
    """The unique id every test body carries (also inside URL-encoded keys)."""
    match = ID_PATTERN.search(body)
    assert match, f"test body without an id: {body[:200]}"
    return match.group(0)


@dataclass(frozen=True)
class Letter:
    """A dead letter the tests put in the DLQ, and what a correct filter knows about it."""

    id: str
    body: str
    key: str | None
    error_code: str | None


def letter(i: int, bucket: str) -> Letter:
    """Dead letter number i: five body formats in turn, keys hot/ or cold/, half with an error code.

    Keys carry a space, so S3-event bodies hold them URL-encoded with + (as S3 sends them)."""
    ident = f"id-{i:05d}"
    key = f"{'hot' if i % 3 == 0 else 'cold'}/{ident} clip+{i}.mp4"
    record = {"eventName": "ObjectCreated:Put",
              "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "size": 1}}}
    kind = i % 5
    if kind == 0:
        body = json.dumps({"Records": [record]})
    elif kind == 1:
        body = json.dumps({"Type": "Notification", "MessageId": ident,
                           "Message": json.dumps({"Records": [record]})})
    elif kind == 2:
        body = json.dumps({"source": "aws.s3", "detail-type": "Object Created",
                           "detail": {"bucket": {"name": bucket}, "object": {"key": key}}})
    elif kind == 3:
        body = json.dumps({"bucket": bucket, "key": key})
    else:
        body, key = f"not a job at all {ident}", None
    return Letter(ident, body, key, "poison_body" if i % 2 == 0 else None)


class Queues:
    """Real SQS calls on the embedded stack, for arranging and checking queue contents."""

    def __init__(self, sqs: Any) -> None:
        self.sqs = sqs

    def dead_letter(self, dlq_url: str, letters: list[Letter], source_url: str) -> None:
        """Put letters in the DLQ, ten per SendMessageBatch, attributes as the worker sets them."""
        for chunk in chunked(letters, 10):
            entries = []
            for n, item in enumerate(chunk):
                attrs = {"test.origin": {"DataType": "String", "StringValue": "fixture"}}
                if item.error_code:
                    worker_set = (("modfleet.error_code", item.error_code),
                                  ("modfleet.reason", "bad body"),
                                  ("modfleet.source_queue", source_url))
                    attrs.update({name: {"DataType": "String", "StringValue": value}
                                  for name, value in worker_set})
                entries.append({"Id": str(n), "MessageBody": item.body, "MessageAttributes": attrs})
            response = self.sqs.send_message_batch(QueueUrl=dlq_url, Entries=entries)
            assert not response.get("Failed"), response["Failed"]

    def drain(self, queue_url: str, delete: bool = True) -> list[dict[str, Any]]:
        """Every message of a queue, with attributes; the s3:TestEvent that S3 sends when the
        stack configures the bucket's notifications is dropped.  Without ``delete`` the messages
        are only hidden for ten minutes (half the calls, for counting at the end of a test)."""
        messages = []
        while True:
            got = self.sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
            if not got:
                return messages
            messages += [m for m in got if '"s3:TestEvent"' not in m["Body"]]
            if delete:
                self.sqs.delete_message_batch(QueueUrl=queue_url, Entries=[
                    {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)])

    def ids(self, queue_url: str) -> Counter[str]:
        """How often each test id is in the queue (hiding its messages for ten minutes)."""
        return Counter(letter_id(m["Body"]) for m in self.drain(queue_url, delete=False))

    def depth(self, queue_url: str) -> dict[str, int]:
        depth = queue_depth(self.sqs, queue_url)
        return {"visible": depth.visible, "in_flight": depth.in_flight}


def cli_env(stack) -> dict[str, str]:
    # Only the endpoint and region come from the environment; each test passes its queues as flags.
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODFLEET_")}
    return {**env, "MODFLEET_ENDPOINT_URL": stack.endpoint_url, "MODFLEET_REGION": stack.region,
            "MODFLEET_LOG_FORMAT": "json"}
