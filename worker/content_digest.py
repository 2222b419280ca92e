"""The object's SHA-256 as S3 holds it, read with one HEAD before any GET.

The exact-copy cache is keyed by S3's ``ChecksumSHA256``: S3 computes it from the bytes it receives
and refuses an upload whose declared checksum does not match, so it names the content.  Never the
ETag or a CRC: an ETag is an MD5 (of the object, or of its parts), and MD5 collisions can be made
on purpose; a crafted bad video whose MD5 equals a benign video's would inherit the benign video's
cached ``allow``.  CRC32/CRC64 are not even meant to resist that.  SHA-256 has no known collision.

A multipart upload's ``ChecksumSHA256`` is a *composite*: the SHA-256 of its parts' SHA-256s, with
the part count.  It is just as collision resistant, but the same bytes uploaded in other parts get
another one, so it is kept apart (``sha256-composite:<hex>-<parts>``): copies uploaded the same way
(``modfleet submit``'s fixed part size) still hit.  An object without ``ChecksumSHA256`` skips the
cache lookup; where the worker fetches it whole anyway, it hashes the bytes as they are spooled so
that the verdict can still be written under the full-object digest.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from worker.errors_aws import is_aws_failure, is_missing
from worker.exceptions import SettleWithError
from worker.logs import get_logger
from worker.records import Job

log = get_logger(__name__)


@dataclass(frozen=True)
class ObjectDigest:
    """What one HEAD said about the object version the worker is about to moderate."""

    content_id: str | None  # "sha256:<hex>" or "sha256-composite:<hex>-<parts>"; None: no SHA-256
    etag: str | None
    version_id: str | None
    size_bytes: int


def full_object_id(hex_digest: str) -> str:
    """The content id of a whole object's SHA-256 (as hashed while spooling it)."""
    return f"sha256:{hex_digest}"


def content_id(head: dict[str, Any]) -> str | None:
    """The content id of a HeadObject answer, or None when it carries no usable SHA-256."""
    raw = head.get("ChecksumSHA256")
    if not raw:
        return None
    value, _, parts = raw.partition("-")
    try:
        digest = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(digest) != 32:
        return None
    etag_parts = (head.get("ETag") or "").strip('"').partition("-")[2]
    composite = head.get("ChecksumType") == "COMPOSITE" or parts or etag_parts
    if composite:
        count = parts or etag_parts or "0"
        return f"sha256-composite:{digest.hex()}-{count}"
    return full_object_id(digest.hex())


async def head_digest(s3: Any, job: Job) -> ObjectDigest | None:
    """HEAD the job's object with ``ChecksumMode=ENABLED``; None when the HEAD failed (the cache
    is skipped and the fetch meets the same failure, or not); ``object_missing`` when absent."""
    request: dict[str, Any] = {"Bucket": job.bucket, "Key": job.key, "ChecksumMode": "ENABLED"}
    if job.version_id:
        request["VersionId"] = job.version_id
    try:
        head = await s3.head_object(**request)
    except ClientError as exc:
        if is_missing(exc):
            raise SettleWithError("object_missing", f"s3://{job.bucket}/{job.key} "
                                  f"({job.version_id or 'latest'}) does not exist") from None
        log.warning("s3:HeadObject failed; verdict cache skipped", key=job.key, error=str(exc))
        return None
    except Exception as exc:
        if not is_aws_failure(exc):  # a bug, not a miss
            raise
        log.warning("s3:HeadObject failed; verdict cache skipped", key=job.key, error=str(exc))
        return None
    return ObjectDigest(content_id=content_id(head),
                        etag=(head.get("ETag") or "").strip('"') or None,
                        version_id=head.get("VersionId"), size_bytes=int(head["ContentLength"]))


def pinned(job: Job, digest: ObjectDigest) -> Job:
    """The job pinned to the version the HEAD saw, so that the bytes fetched are the bytes the
    digest names (an overwrite between HEAD and GET must not store a verdict under the wrong
    digest).  Unversioned buckets have no pin; the caller compares ETags instead."""
    if digest.version_id and digest.version_id != "null" and not job.version_id:
        return dataclasses.replace(job, version_id=digest.version_id)
    return job
