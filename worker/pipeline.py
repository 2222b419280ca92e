"""One job through the stages: fetch -> decode -> infer -> verdict.

A ``SettleWithError`` anywhere becomes an error verdict; ``RetryLater`` (and anything unexpected)
propagates so the message comes back, and so does ``ReplicaDied`` (the worker is stopping).  What a
model error means for the message was decided where it happened, in the replica threads
(``worker.replicas.worker_error``); this module only awaits the answer.

The stage functions (``fetch``, ``decode``, ``infer``) are public so that the benchmarks measure
through the same code as the worker.  They are plain coroutines awaited from ``process_job``, so
that the bench's loop profile (tools/lab/bench/loop_profile.py) can follow a task's await chain
from here into the module doing the work.
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
from worker.exceptions import SettleWithError
from worker.fetch import FetchedObject, open_object
from worker.ranged import sample_remote
from worker.records import Job
from worker.replicas import Inference, ReplicaPool
from worker.settings import Settings, decode_limits


@dataclass(frozen=True)
class Media:
    """What the fetch and decode stages need: the S3 client, the decode threads, the limits."""

    s3: Any
    decode_pool: Executor
    limits: DecodeLimits
    max_object_bytes: int
    spool_dir: Path
    # Objects above this are read by ranges (worker/ranged.py; README says how it was chosen).
    ranged_min_bytes: int = 8 * 1024 * 1024

    @classmethod
    def from_settings(cls, settings: Settings, s3: Any, decode_pool: Executor,
                      spool_dir: Path) -> Media:
        return cls(s3=s3, decode_pool=decode_pool, limits=decode_limits(settings),
                   max_object_bytes=settings.max_object_bytes, spool_dir=spool_dir,
                   ranged_min_bytes=settings.ranged_min_bytes)


@dataclass(frozen=True)
class Stages:
    """What process_job needs, built once by the worker."""

    media: Media
    pool: ReplicaPool
    context: verdicts.Context


async def process_job(job: Job, stages: Stages, timings: dict[str, float]) -> verdicts.Verdict:
    """Return the verdict for one job; ``timings`` arrives with queue_wait and gains the stages."""
    facts = verdicts.VideoFacts()
    try:
        with _timed(timings, "fetch"):
            fetched = await fetch(job, stages.media)
        facts = verdicts.VideoFacts(etag=fetched.etag, size_bytes=fetched.size_bytes,
                                    version_id=fetched.version_id)
        try:
            with _timed(timings, "decode"):  # with ranged reads, the sampled packets' GETs too
                video = await decode(fetched, stages.media)
        finally:
            fetched.discard()
        facts = dataclasses.replace(facts, duration_s=video.duration_s)
        inference = await infer(job, video, stages.pool)
        timings.update(batch_wait=inference.wait_ms, infer=inference.run_ms)
    except SettleWithError as exc:
        return verdicts.error_verdict(job, facts, exc.code, exc.message, stages.context, timings)
    return verdicts.ok_verdict(job, facts, inference.output, stages.context, timings)


async def fetch(job: Job, media: Media) -> FetchedObject:
    """The object, spooled or opened for ranged reads; the caller discards it after decoding."""
    return await open_object(media.s3, job, media.max_object_bytes, media.spool_dir,
                             media.ranged_min_bytes)


async def decode(fetched: FetchedObject, media: Media) -> SampledVideo:
    """Sample ``fetched`` in the decode pool; ``decode_timeout`` if it takes over the deadline.

    A thread cannot be stopped: past the deadline the video settles and its message is freed, and
    the thread finishes (or hangs) on its own.  3,000 hostile mutants never made FFmpeg hang or
    crash in-process (RELIABILITY.md), so decoding is not isolated in processes.
    """
    limits = media.limits
    work = asyncio.get_running_loop().run_in_executor(media.decode_pool, decode_fetched, fetched,
                                                      limits, media.spool_dir)
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


async def infer(job: Job, video: SampledVideo, pool: ReplicaPool) -> Inference:
    """The clip's inference; fails with the worker outcome its replica decided (SettleWithError,
    RetryLater or ReplicaDied)."""
    clip = Clip(frames=video.frames, timestamps_ms=video.timestamps_ms, ref=job.key)
    return await asyncio.wrap_future(pool.submit(clip))


class _timed:
    def __init__(self, timings: dict[str, float], stage: str) -> None:
        self.timings, self.stage = timings, stage

    def __enter__(self) -> None:
        self.started = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.timings[self.stage] = (time.perf_counter() - self.started) * 1000
