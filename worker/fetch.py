"""Fetch a job's object from S3, enforcing the size cap before reading its body.

Objects up to ``ranged_min_bytes`` come in one GET, spooled to a file.  Larger ones are opened for
ranged reads (worker/ranged.py): one GET of the first block tells the size and the version, and
the sampler reads the rest of what it needs from the decode thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from botocore.exceptions import BotoCoreError

from worker.exceptions import RetryLater, SettleWithError
from worker.ranged import (RangedSizes, ReadCounts, RemoteObject, first_read, get_job_object,
                           read_range)
from worker.records import Job

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class FetchedObject:
    """A spooled object (``path``), or one to be read by ranges (``remote``), and its identity."""

    path: Path | None
    etag: str | None
    size_bytes: int
    version_id: str | None
    remote: RemoteObject | None = None
    counts: ReadCounts | None = None  # GET requests and bytes so far (ranged reads add to it)
    # SHA-256 hex of the whole object, hashed while spooling (None when read by ranges): the
    # verdict cache's key for an object uploaded without a checksum (worker/content_digest.py).
    sha256: str | None = None

    def discard(self) -> None:
        """Delete the spool file, if any."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def open_object(s3: Any, job: Job, max_bytes: int, spool_dir: Path,
                      ranged_min_bytes: int, sizes: RangedSizes = RangedSizes()) -> FetchedObject:
    """One GET for objects up to ``ranged_min_bytes`` (when the event says the size), else a
    ranged first read: a large object stays remote, a small one is completed and spooled."""
    if job.size is not None and (job.size > max_bytes or job.size <= ranged_min_bytes):
        return await fetch_to_file(s3, job, max_bytes, spool_dir)
    first = await first_read(s3, job, sizes.head)
    if first is None:  # an empty object: the one-GET path settles it
        return await fetch_to_file(s3, job, max_bytes, spool_dir)
    version, head = first
    if version.size > max_bytes:
        raise SettleWithError("too_large", f"{version.size} bytes is over the limit of {max_bytes}")
    counts = ReadCounts(1, len(head))
    remote = RemoteObject(s3, asyncio.get_running_loop(), version, head, counts, sizes)
    facts = dict(etag=version.etag, size_bytes=version.size, version_id=version.version_id)
    if version.size > ranged_min_bytes:
        return FetchedObject(path=None, remote=remote, counts=counts, **facts)
    # The size was unknown and the object is small: finish it with one more (pinned) GET.
    rest = await read_range(s3, version, len(head), version.size) if version.size > len(head) \
        else b""
    counts.add(1 if rest else 0, len(rest))
    return FetchedObject(path=_spool_bytes(head + rest, spool_dir), counts=counts,
                         sha256=hashlib.sha256(head + rest).hexdigest(), **facts)


async def fetch_to_file(s3: Any, job: Job, max_bytes: int, spool_dir: Path) -> FetchedObject:
    """Download ``job``'s object to a temp file; the caller deletes it when done."""
    if job.size is not None and job.size > max_bytes:
        raise SettleWithError("too_large", f"{job.size} bytes is over the limit of {max_bytes}")
    response = await get_job_object(s3, job, "s3:GetObject")
    size = int(response["ContentLength"])
    async with response["Body"] as body:
        if size > max_bytes:
            raise SettleWithError("too_large", f"{size} bytes is over the limit of {max_bytes}")
        try:
            path, sha256 = await _spool(body, spool_dir)
        except (aiohttp.ClientError, BotoCoreError, OSError, TimeoutError) as exc:
            # The connection dropped mid-body (a reset, a truncated answer): the same read can
            # succeed later, so the message comes back.
            raise RetryLater(f"s3:GetObject body read failed: {type(exc).__name__}: {exc}"
                             ) from exc
    return FetchedObject(path=path, etag=(response.get("ETag") or "").strip('"') or None,
                         size_bytes=size, version_id=response.get("VersionId"),
                         counts=ReadCounts(1, size), sha256=sha256)


async def _spool(body: Any, spool_dir: Path) -> tuple[Path, str]:
    """The body in a spool file, and its SHA-256 (about 2 ms a MiB, while the bytes pass)."""
    # A file, not memory: videos can be gigabytes, and PyAV reads files without a copy.
    handle = tempfile.NamedTemporaryFile(dir=spool_dir, prefix="video-", delete=False)
    digest = hashlib.sha256()
    try:
        with handle:
            while chunk := await body.read(CHUNK):
                handle.write(chunk)
                digest.update(chunk)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
    return Path(handle.name), digest.hexdigest()


def _spool_bytes(data: bytes, spool_dir: Path) -> Path:
    with tempfile.NamedTemporaryFile(dir=spool_dir, prefix="video-", delete=False) as handle:
        handle.write(data)
    return Path(handle.name)
