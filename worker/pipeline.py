"""One job through the stages: fetch -> decode -> infer -> verdict.

A ``SettleWithError`` anywhere becomes an error verdict; ``RetryLater`` (and anything unexpected)
propagates so the message comes back, and so does ``ReplicaDied`` (the worker is stopping).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.api import Clip
from worker import verdict as verdicts
from worker.decode import DecodeLimits, SampledVideo, sample_frames
from worker.exceptions import ReplicaDied, RetryLater, SettleWithError
from worker.fetch import FetchedObject, open_object
from worker.ranged import sample_remote
from worker.records import Job
from worker.replicas import Inference, ReplicaPool


@dataclass(frozen=True)
class Stages:
    """What process_job needs, built once by the worker."""

    s3: Any
    pool: ReplicaPool
    decode_pool: Executor
    limits: DecodeLimits
    max_object_bytes: int
    spool_dir: Path
    context: verdicts.Context
    # Objects above this are read by ranges (worker/ranged.py; README says how it was chosen).
    ranged_min_bytes: int = 8 * 1024 * 1024


async def process_job(job: Job, stages: Stages, timings: dict[str, float]) -> dict[str, Any]:
    """Return the verdict for one job; ``timings`` arrives with queue_wait and gains the stages."""
    facts = verdicts.VideoFacts()
    try:
        with _timed(timings, "fetch"):
            fetched = await open_object(stages.s3, job, stages.max_object_bytes,
                                        stages.spool_dir, stages.ranged_min_bytes)
        facts = verdicts.VideoFacts(etag=fetched.etag, size_bytes=fetched.size_bytes,
                                    version_id=fetched.version_id)
        try:
            with _timed(timings, "decode"):  # with ranged reads, the sampled packets' GETs too
                video = await decode(stages.decode_pool, fetched, stages.limits, stages.spool_dir)
        finally:
            fetched.discard()
        facts = dataclasses.replace(facts, duration_s=video.duration_s)
        inference = await _infer(stages.pool, job, video)
        timings.update(batch_wait=inference.wait_ms, infer=inference.run_ms)
    except SettleWithError as exc:
        return verdicts.error_verdict(job, facts, exc.code, exc.message, stages.context, timings)
    return verdicts.ok_verdict(job, facts, inference.output, stages.context, timings)


async def decode(pool: Executor, fetched: FetchedObject, limits: DecodeLimits,
                 spool_dir: Path) -> SampledVideo:
    """Sample ``fetched`` in the decode pool; ``decode_timeout`` if it takes over the deadline.

    A thread cannot be stopped: past the deadline the video settles and its message is freed, and
    the thread finishes (or hangs) on its own.  3,000 hostile mutants never made FFmpeg hang or
    crash in-process (RELIABILITY.md), so decoding is not isolated in processes.
    """
    work = asyncio.get_running_loop().run_in_executor(pool, decode_fetched, fetched, limits,
                                                      spool_dir)
    try:
        return await asyncio.wait_for(work, limits.deadline_s)
    except asyncio.TimeoutError:
        raise SettleWithError("decode_timeout", f"decoding took longer than "
                              f"{limits.deadline_s:g} s") from None


def decode_fetched(fetched: FetchedObject, limits: DecodeLimits, spool_dir: Path) -> SampledVideo:
    """Sample a spooled object from its file, a remote one through ranged reads (decode thread)."""
    if fetched.remote is not None:
        return sample_remote(fetched.remote, limits, spool_dir)
    return sample_frames(fetched.path, limits)


async def _infer(pool: ReplicaPool, job: Job, video: SampledVideo) -> Inference:
    clip = Clip(frames=video.frames, timestamps_ms=video.timestamps_ms, ref=job.key)
    try:
        return await asyncio.wrap_future(pool.submit(clip))
    except (SettleWithError, RetryLater, ReplicaDied):  # outcomes the replica already decided
        raise
    except Exception as exc:  # a device or runtime fault: another attempt may succeed
        raise RetryLater(f"model replica failed: {exc}") from exc


class _timed:
    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] = (time.perf_counter() - self.started) * 1000
