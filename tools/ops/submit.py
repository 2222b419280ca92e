"""Upload videos to the bucket, so that its object-created notifications enqueue them.

Every upload declares ``ChecksumAlgorithm=SHA256``: S3 checks the bytes against it and keeps it,
and the worker reads it with one HEAD to find an exact copy's cached verdict without a GET
(worker/content_digest.py; the bucket's upload contract in README asks every uploader for it).

Large files go up in parts (boto3's TransferConfig); the key of each upload is the prefix plus the
file name, or plus the path below a directory given on the command line.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from tools.ops.exceptions import InvalidRequest
from tools.ops.video_files import is_video_name
MIB = 1024 * 1024
S3_MIN_PART = 5 * MIB  # S3 rejects smaller parts, except the last


@dataclass(frozen=True)
class PlannedUpload:
    path: Path
    key: str
    size_bytes: int


@dataclass(frozen=True)
class Uploaded:
    path: str
    key: str
    size_bytes: int
    etag: str
    version_id: str | None
    multipart: bool
    checksum_sha256: str | None = None  # as S3 stored it (a multipart upload's is a composite)


@dataclass(frozen=True)
class UploadFailure:
    path: str
    key: str
    error: str


@dataclass(frozen=True)
class SubmitReport:
    """What submit did (see tools/README.md for the JSON form)."""

    bucket: str
    uploaded: tuple[Uploaded, ...]
    failed: tuple[UploadFailure, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"command": "submit", "bucket": self.bucket,
                "uploaded": [asdict(u) for u in self.uploaded],
                "failed": [asdict(f) for f in self.failed]}


def transfer_config(threshold_mib: float = 64, part_mib: float = 16) -> TransferConfig:
    """Multipart above ``threshold_mib``, in parts of ``part_mib`` (at least S3's 5 MiB)."""
    part = int(part_mib * MIB)
    if part < S3_MIN_PART or threshold_mib <= 0:
        raise InvalidRequest("--part-size-mib must be at least 5 and the threshold positive")
    return TransferConfig(multipart_threshold=int(threshold_mib * MIB), multipart_chunksize=part)


def plan_uploads(paths: Sequence[Path], prefix: str = "") -> list[PlannedUpload]:
    """The files to upload and their keys; a directory contributes its videos, recursively."""
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    planned = []
    for path in paths:
        if path.is_dir():
            try:
                files = sorted(p for p in path.rglob("*")
                               if p.is_file() and is_video_name(p))
            except OSError as exc:  # a folder unreadable or changing while walked
                raise InvalidRequest(f"cannot read {exc.filename or path}: {exc.strerror or exc}") from exc
            planned += [_planned(p, prefix + p.relative_to(path).as_posix()) for p in files]
        elif path.is_file():
            planned.append(_planned(path, prefix + path.name))
        else:
            raise InvalidRequest(f"no such file or directory: {path}")
    keys = [p.key for p in planned]
    if len(set(keys)) != len(keys):
        raise InvalidRequest("two files would be uploaded to the same key; use separate prefixes")
    return planned


def upload_all(s3: Any, bucket: str, planned: Iterable[PlannedUpload], config: TransferConfig,
               on_bytes: Callable[[float], None] = lambda n: None) -> SubmitReport:
    """Upload each planned file; one failure does not stop the others."""
    uploaded, failed = [], []
    for item in planned:
        try:
            uploaded.append(_upload(s3, bucket, item, config, on_bytes))
        except (ClientError, BotoCoreError, OSError) as exc:
            failed.append(UploadFailure(str(item.path), item.key, str(exc)))
    return SubmitReport(bucket, tuple(uploaded), tuple(failed))


def _upload(s3: Any, bucket: str, item: PlannedUpload, config: TransferConfig,
            on_bytes: Callable[[float], None]) -> Uploaded:
    content_type = mimetypes.guess_type(item.path.name)[0] or "application/octet-stream"
    s3.upload_file(str(item.path), bucket, item.key, Config=config, Callback=on_bytes,
                   ExtraArgs={"ContentType": content_type, "ChecksumAlgorithm": "SHA256"})
    head = s3.head_object(Bucket=bucket, Key=item.key, ChecksumMode="ENABLED")
    return Uploaded(str(item.path), item.key, item.size_bytes, head["ETag"].strip('"'),
                    head.get("VersionId"), item.size_bytes >= config.multipart_threshold,
                    head.get("ChecksumSHA256"))


def _planned(path: Path, key: str) -> PlannedUpload:
    return PlannedUpload(path, key, path.stat().st_size)
