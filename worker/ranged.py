"""Ranged reads: sample a large object by reading only its index and the packets it decodes.

A ``RemoteObject`` is an S3 object version seen by one first ranged GET (size, ETag, VersionId).
``RangedFile`` is a seekable file object over it that PyAV reads like a local file.  Before the
sampler seeks, ``RangedPlanner`` checks that the container has an index (otherwise the object is
downloaded whole: a demuxer without one would scan the file) and prefetches the byte ranges of the
keyframe packets the sampler will land on, neighbouring ranges coalesced into one request.  Other
reads (the header, a moov atom at the end, a decoder that needs one more packet) miss into a small
cache of fetched segments and fetch one block.

Every request after the first is pinned to the version the first read saw: ``VersionId`` on a
versioned bucket, else ``IfMatch`` on the ETag.  An object overwritten mid-read therefore yields
the first version's bytes or a 412, which becomes ``RetryLater``: never frames from two versions.

The network I/O stays on the worker's asyncio loop and its one aiobotocore client (one connection
pool, one retry policy): the decode thread hands each request to the loop with
``run_coroutine_threadsafe`` and blocks until it is done; PyAV's read callback runs in that thread.
"""

from __future__ import annotations

import asyncio
import io
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from botocore.exceptions import ClientError

from worker.decode import DecodeLimits, SampledVideo, sample_frames
from worker.errors_aws import is_missing, raise_transient
from worker.exceptions import RetryLater, SettleWithError
from worker.records import Job

REQUEST_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class RangedSizes:
    """Byte sizes of the ranged reads (tests shrink them to exercise every path on small files)."""

    head: int = 256 * 1024  # first GET: ftyp/moov of a faststart MP4, Matroska's EBML + seek head
    block: int = 256 * 1024  # one cache miss reads this much from the missed offset
    slack: int = 32 * 1024  # read past a keyframe packet: the demuxer's buffer reads ahead
    gap: int = 256 * 1024  # ranges closer than this are coalesced into one request
    cache: int = 16 * 1024 * 1024  # segments kept per object (oldest dropped first)
    # Beyond this many GETs for one object the demuxer is walking the file (a fragmented MP4
    # without an index): stop and read the object whole.
    max_requests: int = 64


@dataclass(frozen=True)
class ObjectVersion:
    """The object version the first read saw; every later request is pinned to it."""

    bucket: str
    key: str
    size: int
    etag: str | None
    version_id: str | None

    def pin(self) -> dict[str, str]:
        """Request parameters that make S3 serve this version or refuse."""
        if self.version_id and self.version_id != "null":
            return {"VersionId": self.version_id}
        return {"IfMatch": f'"{self.etag}"'} if self.etag else {}


@dataclass
class ReadCounts:
    """GET requests and body bytes for one object (what S3 bills)."""

    requests: int = 0
    bytes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, requests: int, nbytes: int) -> None:
        with self.lock:
            self.requests += requests
            self.bytes += nbytes


def parse_content_range(header: str) -> tuple[int, int, int]:
    """``bytes 0-99/1234`` -> (0, 99, 1234)."""
    unit_span, _, total = header.partition("/")
    first, _, last = unit_span.split()[-1].partition("-")
    return int(first), int(last), int(total)


async def get_job_object(s3: Any, job: Job, operation: str, tolerate: set[str] = frozenset(),
                         **extra: Any) -> dict[str, Any] | None:
    """GetObject of ``job``'s object (its version when the job names one): a missing object settles
    as ``object_missing``, an error code in ``tolerate`` gives None, any other failure is
    transient (the message comes back)."""
    request: dict[str, Any] = {"Bucket": job.bucket, "Key": job.key, **extra}
    if job.version_id:
        request["VersionId"] = job.version_id
    try:
        return await s3.get_object(**request)
    except ClientError as exc:
        if is_missing(exc):
            raise SettleWithError("object_missing", f"s3://{job.bucket}/{job.key} "
                                  f"({job.version_id or 'latest'}) does not exist") from None
        if exc.response.get("Error", {}).get("Code") in tolerate:
            return None
        raise_transient(exc, operation)


async def first_read(s3: Any, job: Job, head_bytes: int = RangedSizes.head
                     ) -> tuple[ObjectVersion, bytes] | None:
    """The first ``head_bytes`` and the version they belong to; None for an empty object.

    S3 refuses a range on an empty object (416 InvalidRange); the caller then takes the one-GET
    path, which handles it.
    """
    response = await get_job_object(s3, job, "s3:GetObject (range)", {"InvalidRange"},
                                    Range=f"bytes=0-{head_bytes - 1}")
    if response is None:
        return None
    async with response["Body"] as body:
        head = await body.read()
    header = response.get("ContentRange")
    size = parse_content_range(header)[2] if header else len(head)
    version = ObjectVersion(job.bucket, job.key, size,
                            (response.get("ETag") or "").strip('"') or None,
                            response.get("VersionId"))
    return version, head


async def read_range(s3: Any, version: ObjectVersion, start: int, end: int) -> bytes:
    """Bytes ``[start, end)`` of exactly ``version``; RetryLater if it was overwritten."""
    request = {"Bucket": version.bucket, "Key": version.key,
               "Range": f"bytes={start}-{end - 1}", **version.pin()}
    try:
        response = await s3.get_object(**request)
        async with response["Body"] as body:
            return await body.read()
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code in ("PreconditionFailed", "412"):
            raise RetryLater(f"s3://{version.bucket}/{version.key} changed while it was being "
                             f"read (ETag {version.etag}); the next attempt reads the new "
                             "version") from None
        if is_missing(exc):
            raise SettleWithError("object_missing", f"s3://{version.bucket}/{version.key} "
                                  "was deleted while it was being read") from None
        raise_transient(exc, "s3:GetObject (range)")


class RemoteObject:
    """One object version, read through the worker's loop from a decode thread."""

    def __init__(self, s3: Any, loop: asyncio.AbstractEventLoop, version: ObjectVersion,
                 head: bytes, counts: ReadCounts, sizes: RangedSizes = RangedSizes()) -> None:
        self.s3, self.loop, self.version, self.head, self.counts = s3, loop, version, head, counts
        self.sizes = sizes

    def fetch(self, ranges: Sequence[tuple[int, int]]) -> list[bytes]:
        """Bytes of each ``[start, end)``, requested concurrently; call from a non-loop thread."""
        async def all_of() -> list[bytes]:
            return await asyncio.gather(*(read_range(self.s3, self.version, s, e)
                                          for s, e in ranges))

        bodies = asyncio.run_coroutine_threadsafe(all_of(), self.loop).result(REQUEST_TIMEOUT_S)
        self.counts.add(len(ranges), sum(len(b) for b in bodies))
        return bodies

    def download_to(self, spool_dir: Path, prefix: bytes = b"") -> Path:
        """The whole version into a spool file (formats without an index); the caller deletes it.

        ``prefix``: the object's first bytes, already read (never fetched twice).
        """
        prefix = prefix if len(prefix) >= len(self.head) else self.head
        handle, name = tempfile.mkstemp(dir=spool_dir, prefix="video-")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(prefix)
                if self.version.size > len(prefix):
                    out.write(self.fetch([(len(prefix), self.version.size)])[0])
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)


class RangedFile(io.RawIOBase):
    """A read-only, seekable file over a ``RemoteObject`` with a small cache of fetched segments.

    A failed request is kept in ``failure``: PyAV turns an exception in its read callback into an
    FFmpeg error, so the caller re-raises the real cause (RetryLater, object_missing) itself.
    """

    def __init__(self, remote: RemoteObject) -> None:
        super().__init__()
        self.remote, self.size, self.sizes = remote, remote.version.size, remote.sizes
        self.position = 0
        self.segments: OrderedDict[int, bytes] = OrderedDict({0: remote.head})
        self.failure: BaseException | None = None

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def read(self, n: int = -1) -> bytes:
        if self.position >= self.size:
            return b""
        n = self.size - self.position if n is None or n < 0 else n
        start, data = self._segment_at(self.position) or self._miss(self.position, n)
        chunk = data[self.position - start:self.position - start + n]
        self.position += len(chunk)
        return chunk

    def prefetch(self, ranges: Sequence[tuple[int, int]]) -> None:
        """Fetch the uncached parts of ``ranges`` (coalesced) in one concurrent round."""
        wanted = [(max(0, s), min(self.size, e)) for s, e in ranges if s < self.size]
        missing = [r for r in coalesce(wanted, self.sizes.gap) if not self._covers(*r)]
        if missing:
            for (start, _), body in zip(missing, self._fetch(missing)):
                self._store(start, body)

    def prefix(self) -> bytes:
        """The cached bytes that run contiguously from offset 0."""
        out, position = b"", 0
        while (found := self._segment_at(position)) is not None:
            start, data = found
            out += data[position - start:]
            position = start + len(data)
        return out

    def _segment_at(self, offset: int) -> tuple[int, bytes] | None:
        for start, data in self.segments.items():
            if start <= offset < start + len(data):
                self.segments.move_to_end(start)
                return start, data
        return None

    def _covers(self, start: int, end: int) -> bool:
        found = self._segment_at(start)
        return found is not None and found[0] + len(found[1]) >= end

    def _miss(self, offset: int, n: int) -> tuple[int, bytes]:
        if self.remote.counts.requests >= self.sizes.max_requests:
            self.failure = self.failure or WholeObjectNeeded(
                f"{self.remote.counts.requests} ranged GETs: the demuxer is scanning the file")
            raise self.failure
        # Read a block from here, but stop at the next cached segment: never fetch a byte twice.
        following = [s for s in self.segments if s > offset]
        end = min(self.size, offset + max(n, self.sizes.block), *following)
        body = self._fetch([(offset, end)])[0]
        self._store(offset, body)
        return offset, body

    def _fetch(self, ranges: list[tuple[int, int]]) -> list[bytes]:
        try:
            return self.remote.fetch(ranges)
        except BaseException as exc:
            self.failure = self.failure or exc
            raise

    def _store(self, start: int, body: bytes) -> None:
        self.segments[start] = body
        while len(self.segments) > 1 and sum(map(len, self.segments.values())) > self.sizes.cache:
            self.segments.popitem(last=False)


def coalesce(ranges: Sequence[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Sorted ``[start, end)`` ranges with those less than ``gap`` apart merged."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[1] > r[0]):
        if merged and start - merged[-1][1] < gap:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


class WholeObjectNeeded(Exception):
    """The container has no usable index: seeking would scan it, so read the object whole."""


class RangedPlanner:
    """decode.ReadPlanner for a RangedFile: index check, then the keyframe packets' ranges."""

    def __init__(self, file: RangedFile) -> None:
        self.file, self.slack = file, file.sizes.slack

    def check_index(self, container: av.container.InputContainer,
                    stream: av.video.stream.VideoStream) -> None:
        duration = (float(stream.duration * stream.time_base) if stream.duration
                    else (container.duration or 0) / av.time_base)
        if not duration:
            self._give_up(WholeObjectNeeded("no duration in the header"))
        if not self._index_covers(stream, duration):
            # Matroska reads cues kept at the end on its first seek, not when opened; loading them
            # early moved some samples to other frames than a whole-object read picks (an AV1
            # Matroska file, 2 of 8 samples), so such files are read whole until that is solved.
            self._give_up(WholeObjectNeeded("no index read with the header"))

    def _give_up(self, reason: WholeObjectNeeded) -> None:
        # Kept on the file too: the sampler turns whatever escapes it into `undecodable`, and
        # sample_remote re-raises the file's failure instead.
        self.file.failure = self.file.failure or reason
        raise reason

    @staticmethod
    def _index_covers(stream: av.video.stream.VideoStream, duration: float) -> bool:
        entries = stream.index_entries
        if entries is None or len(entries) < 2:
            return False
        last = float(entries[len(entries) - 1].timestamp * stream.time_base)
        # An index that stops early would send the demuxer walking the rest of the file.
        return last >= duration - max(10.0, 0.1 * duration)

    def prefetch(self, stream: av.video.stream.VideoStream, targets: list[float]) -> None:
        keyframes = sorted((float(e.timestamp * stream.time_base), e.pos, e.size)
                           for e in stream.index_entries if e.is_keyframe and e.pos >= 0)
        if not keyframes:
            return
        ranges = []
        for target in targets:
            before = [k for k in keyframes if k[0] <= target] or keyframes[:1]
            _, pos, size = before[-1]
            # Matroska's cues give a cluster's position but no size: read one block from there.
            ranges.append((pos, pos + (size or self.file.sizes.block) + self.slack))
        self.file.prefetch(ranges)


def sample_remote(remote: RemoteObject, limits: DecodeLimits, spool_dir: Path) -> SampledVideo:
    """Sample through ranged reads; formats without an index are downloaded whole and sampled."""
    file = RangedFile(remote)
    try:
        try:
            video = sample_frames(file, limits, reads=RangedPlanner(file))
        except Exception:
            if file.failure is not None:  # PyAV reported our failed read as a decoding error
                raise file.failure from None
            raise
        if file.failure is not None:  # a failed read ended sampling early: never a partial result
            raise file.failure
        return video
    except WholeObjectNeeded:
        path = remote.download_to(spool_dir, file.prefix())
        try:
            return sample_frames(path, limits)
        finally:
            path.unlink(missing_ok=True)
