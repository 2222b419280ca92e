"""Evidence for reviewers: the frames behind a review or block verdict's labels, as JPEG.

Each frame is the one the model (or the hash matcher) saw, letterboxed at the model's frame size,
written once per verdict under ``<prefix><idempotency hex>/<timestamp>ms.jpg`` in the records
bucket, encrypted with the evidence KMS key when one is configured (the bucket's default is that
key too; infra/README.md).  The worker's role may only PutObject there.  The keys go into the
verdict beside each label's timestamps.  A frame that cannot be written is left out of the verdict (logged):
evidence helps a reviewer, and its absence must not hold a verdict back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np

from worker import verdict as verdicts
from worker.logs import get_logger

log = get_logger(__name__)
JPEG_QUALITY = 90


@dataclass(frozen=True)
class EvidenceTarget:
    """Where evidence goes: the records bucket, its prefix and (optionally) the KMS key."""

    bucket: str
    prefix: str = "evidence/"
    kms_key_id: str | None = None


def frame_times(labels: Sequence[verdicts.Label]) -> list[int]:
    """Every timestamp some label points at, once, in order."""
    return sorted({int(t) for label in labels for t in label.timestamps_ms})


def encode_jpeg(frame: np.ndarray) -> bytes:
    """One (S, S, 3) uint8 RGB frame as JPEG bytes."""
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame), "RGB").save(out, "JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


async def write_evidence(s3: Any, target: EvidenceTarget, pool: Executor, verdict_key: str,
                         frames: np.ndarray, timestamps_ms: Sequence[int],
                         wanted_ms: Sequence[int]) -> dict[int, str]:
    """Write the frames shown at ``wanted_ms``; {timestamp: S3 key} of those written."""
    index = {}
    for i, t in enumerate(timestamps_ms):
        index.setdefault(int(t), i)
    folder = f"{target.prefix}{verdict_key.removeprefix('sha256:')}/"
    extra = ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": target.kms_key_id}
             if target.kms_key_id else {})
    loop = asyncio.get_running_loop()

    async def one(t: int) -> tuple[int, str | None]:
        key = f"{folder}{t}ms.jpg"
        body = await loop.run_in_executor(pool, encode_jpeg, frames[index[t]])
        try:
            await s3.put_object(Bucket=target.bucket, Key=key, Body=body,
                                ContentType="image/jpeg", **extra)
        except Exception as exc:  # the verdict goes out without this frame's key
            log.warning("evidence frame not written", key=key, error=str(exc))
            return t, None
        return t, key

    written = await asyncio.gather(*(one(t) for t in wanted_ms if t in index))
    return {t: key for t, key in written if key}


def with_evidence(labels: Sequence[verdicts.Label], keys: dict[int, str]
                  ) -> tuple[verdicts.Label, ...]:
    """Labels with ``evidence_keys`` beside ``timestamps_ms`` (None where no frame was written)."""
    return tuple(dataclasses.replace(label, evidence_keys=tuple(keys.get(int(t))
                                                                 for t in label.timestamps_ms))
                 for label in labels)
