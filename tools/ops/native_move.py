"""SQS's own redrive (StartMessageMoveTask): server-side, fast, but all-or-nothing.

It moves every message of the DLQ (no filter can be applied), keeps bodies and attributes, and
without a destination sends each message back to the queue it was dead-lettered from.  The
embedded stack (moto) does not implement the call; the error says so and points at the
client-side path.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tools.ops.exceptions import AwsCallFailed, UnsupportedByEndpoint
from tools.ops.queues import queue_arn

MAX_NATIVE_RATE = 500  # SQS's limit on MaxNumberOfMessagesPerSecond
_UNSUPPORTED_CODES = {"InvalidAction", "UnknownOperation", "UnknownOperationException",
                      "NotImplemented", "UnsupportedOperation", "500", "501"}


@dataclass(frozen=True)
class NativeMove:
    """A started move task (see tools/README.md for the JSON form)."""

    dlq_url: str
    destination_url: str | None  # None: each message goes back to its original source queue
    rate: int | None
    task_handle: str

    def as_dict(self) -> dict[str, Any]:
        return {"command": "replay-dlq", "native": True, **asdict(self)}


def start_native_move(sqs: Any, dlq_url: str, destination_url: str | None,
                      rate: float | None) -> NativeMove:
    """Start StartMessageMoveTask from the DLQ; raise UnsupportedByEndpoint if it is refused."""
    args: dict[str, Any] = {"SourceArn": queue_arn(sqs, dlq_url)}
    if destination_url:
        args["DestinationArn"] = queue_arn(sqs, destination_url)
    per_second = None if rate is None else max(1, min(MAX_NATIVE_RATE, int(rate)))
    if per_second is not None:
        args["MaxNumberOfMessagesPerSecond"] = per_second
    try:
        response = sqs.start_message_move_task(**args)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if error.get("Code") in _UNSUPPORTED_CODES or status in (500, 501):
            raise UnsupportedByEndpoint(
                "the endpoint does not support StartMessageMoveTask "
                f"({error.get('Code') or status}; "
                "the embedded stack, moto, does not implement it): run replay-dlq without "
                "--native to move the messages client-side") from exc
        raise AwsCallFailed(f"StartMessageMoveTask failed: {exc}") from exc
    except BotoCoreError as exc:
        raise AwsCallFailed(f"StartMessageMoveTask failed: {exc}") from exc
    return NativeMove(dlq_url, destination_url, per_second, response["TaskHandle"])
