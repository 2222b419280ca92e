"""Classify botocore errors at the boundary: wrap them in what the caller must do."""

from __future__ import annotations

from typing import NoReturn

from botocore.exceptions import BotoCoreError, ClientError

from worker.exceptions import RetryLater

MISSING_CODES = {"NoSuchKey", "NoSuchVersion", "NoSuchBucket", "404", "NotFound"}
# Errors worth retrying because the same call can succeed later: throttling, 5xx, clock skew.
TRANSIENT_CODES = {"Throttling", "ThrottlingException", "ThrottledException", "SlowDown",
                   "RequestTimeout", "RequestTimeoutException", "ServiceUnavailable",
                   "InternalError", "InternalFailure", "RequestLimitExceeded",
                   "KMSThrottlingException", "RequestThrottled", "TooManyRequestsException"}


def is_missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in MISSING_CODES


def is_transient(exc: BaseException) -> bool:
    """Connection trouble, throttling and 5xx: the same request can succeed later."""
    if isinstance(exc, (BotoCoreError, OSError, TimeoutError)):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_CODES or status >= 500
    return False


def raise_transient(exc: BaseException, operation: str) -> NoReturn:
    """Every failure that is not a known permanent one leaves the message to come back.

    An AccessDenied is retried too: a permissions mistake should fill the dead-letter queue for
    an operator to replay once fixed, not settle every video as an error.
    """
    raise RetryLater(f"{operation} failed: {exc}") from exc
