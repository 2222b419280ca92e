"""Fetch a job's object from S3 into a spool file, enforcing the size cap before reading a byte."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError, ClientError

from worker.errors_aws import is_missing, raise_transient
from worker.exceptions import RetryLater, SettleWithError
from worker.records import Job

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FetchedObject:
    path: Path
    etag: str | None
    size_bytes: int
    version_id: str | None


async def fetch_to_file(s3: Any, job: Job, max_bytes: int, spool_dir: Path) -> FetchedObject:
    """Download ``job``'s object to a temp file; the caller deletes it when done."""
    if job.size is not None and job.size > max_bytes:
        raise SettleWithError("too_large", f"{job.size} bytes is over the limit of {max_bytes}")
    request = {"Bucket": job.bucket, "Key": job.key}
    if job.version_id:
        request["VersionId"] = job.version_id
    try:
        response = await s3.get_object(**request)
    except ClientError as exc:
        if is_missing(exc):
            raise SettleWithError("object_missing", f"s3://{job.bucket}/{job.key} "
                                  f"({job.version_id or 'latest'}) does not exist") from None
        raise_transient(exc, "s3:GetObject")
    size = int(response["ContentLength"])
    async with response["Body"] as body:
        if size > max_bytes:
            raise SettleWithError("too_large", f"{size} bytes is over the limit of {max_bytes}")
        try:
            path = await _spool(body, spool_dir)
        except (aiohttp.ClientError, BotoCoreError, OSError, TimeoutError) as exc:
            # The connection dropped mid-body (a reset, a truncated answer): the same read can
            # succeed later, so the message comes back.
            raise RetryLater(f"s3:GetObject body read failed: {type(exc).__name__}: {exc}"
                             ) from exc
    return FetchedObject(path=path, etag=(response.get("ETag") or "").strip('"') or None,
                         size_bytes=size, version_id=response.get("VersionId"))


async def _spool(body: Any, spool_dir: Path) -> Path:
    # A file, not memory: videos can be gigabytes, and PyAV reads files without a copy.
    handle = tempfile.NamedTemporaryFile(dir=spool_dir, prefix="video-", delete=False)
    try:
        with handle:
            while chunk := await body.read(CHUNK):
                handle.write(chunk)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return Path(handle.name)
