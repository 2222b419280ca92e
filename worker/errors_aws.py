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


# Error codes no retry cures: the setting names something AWS does not have, or the caller's
# credentials are refused.  An operator must act; they mean exit 2 at start-up.
NOT_FOUND_CODES = frozenset({
    "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist",
    "AWS.SimpleQueueService.QueueDeletedRecently", "NotFound", "NotFoundException",
    "ParameterNotFound", "NoSuchBucket", "ResourceNotFoundException",
    "404"})  # HeadBucket's (and HeadObject's) bare status code
REFUSED_CODES = frozenset({
    "AccessDenied", "AccessDeniedException", "AuthorizationError", "AuthFailure",
    "InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException",
    "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidSignatureException",
    "IncompleteSignature", "MissingAuthenticationToken", "InvalidToken", "KMSAccessDeniedException",
    "KMS.AccessDeniedException"})


def aws_error(exc: BaseException | None) -> BaseException | None:
    """The botocore error at the root of ``exc``: itself, or the cause it was wrapped from
    (``raise ... from exc``; an error merely raised while handling one is not its cause)."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, (ClientError, BotoCoreError)):
            return exc
        exc, seen = exc.__cause__, seen + 1
    return None


def error_code(exc: BaseException | None) -> str:
    """The AWS error code of a ClientError (``""`` for anything else)."""
    error = aws_error(exc)
    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""


def is_not_found(exc: BaseException | None) -> bool:
    """AWS says the queue, topic, bucket or parameter named does not exist."""
    return error_code(exc) in NOT_FOUND_CODES


def is_refused(exc: BaseException | None) -> bool:
    """The credentials are missing, unknown, expired, or lack the permission."""
    from botocore.exceptions import NoCredentialsError, PartialCredentialsError, ProfileNotFound

    error = aws_error(exc)
    return (isinstance(error, (NoCredentialsError, PartialCredentialsError, ProfileNotFound))
            or error_code(exc) in REFUSED_CODES)


def is_incurable(exc: BaseException | None) -> bool:
    """No retry cures it (an operator must fix a setting, a permission, or recreate a resource)."""
    from botocore.exceptions import InvalidRegionError, NoRegionError

    return (is_not_found(exc) or is_refused(exc)
            or isinstance(aws_error(exc), (NoRegionError, InvalidRegionError)))


def one_line(exc: BaseException) -> str:
    """A botocore error as one line: ``Code: message`` for an error response."""
    error = aws_error(exc) or exc
    if isinstance(error, ClientError):
        detail = error.response.get("Error", {})
        return f"{detail.get('Code', '?')}: {detail.get('Message', '')}".rstrip(": ")
    return " ".join(str(error).split())
