"""Classify botocore errors at the boundary: wrap them in what the caller must do."""

from __future__ import annotations

from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from worker.exceptions import RetryLater

MISSING_CODES = {"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404", "NotFound"}


def is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in MISSING_CODES


def is_aws_failure(exc: BaseException) -> bool:
    """An AWS call failed: an error response of any code, or a connection or client fault.

    The worker retries every one of them, throttling, 5xx and AccessDenied alike: a permissions
    mistake or a topic being recreated is fixed by an operator, and the message must survive
    until then (see ``raise_transient``).
    """
    return isinstance(exc, (ClientError, BotoCoreError, OSError, TimeoutError))


def raise_transient(exc: BaseException, operation: str) -> NoReturn:
    """Every failure that is not a known permanent one leaves the message to come back.

    An AccessDenied is retried too: a permissions mistake should fill the dead-letter queue for
    an operator to replay once fixed, not settle every video as an error.
    """
    raise RetryLater(f"{operation} failed: {exc}") from exc
