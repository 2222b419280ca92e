"""One job through the stages: [lookup] -> fetch -> decode -> [fingerprint, match] -> infer
-> verdict [-> evidence].

The bracketed stages run only where worker/reuse.py's ``Reuse`` turns them on: an exact copy's
cached verdict is published without a GET; a known-content match or a reusable near-duplicate is
decided without the model.  A ``SettleWithError`` anywhere becomes an error verdict;
``RetryLater`` (and anything unexpected) propagates so the message comes back, and so does
``ReplicaDied`` (the worker is stopping).  What a model error means for the message was decided
where it happened, in the replica threads (``worker.replicas.worker_error``); this module only
awaits the answer.

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
from worker import verdict_reuse
from worker.content_digest import ObjectDigest, full_object_id, head_digest, pinned
from worker.decode import DecodeLimits, SampledVideo, sample_frames
from worker.evidence import frame_times, with_evidence, write_evidence
from worker.exceptions import SettleWithError
from worker.fetch import FetchedObject, open_object
from worker.fingerprints import FrameFingerprint, fingerprint_frames
from worker.near_duplicates import NearMatch
from worker.ranged import sample_remote
from worker.records import Job
from worker.replicas import Inference, ReplicaPool
from worker.reuse import Reuse
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
    reuse: Reuse = Reuse()


async def process_job(job: Job, stages: Stages, timings: dict[str, float]) -> verdicts.Verdict:
    """Return the verdict for one job; ``timings`` arrives with queue_wait and gains the stages."""
    facts = verdicts.VideoFacts()
    try:
        digest, cached = await _lookup(job, stages, timings)
        job, facts = _seen_by_head(job, digest, facts)
        if cached is not None:  # the same bytes, model and policy: no GET, no decode
            facts = dataclasses.replace(facts, duration_s=cached.video.duration_s)
            return verdict_reuse.exact_hit(job, facts, cached, stages.context, timings)
        with _timed(timings, "fetch"):
            fetched = await fetch(job, stages.media)
        facts = verdicts.VideoFacts(etag=fetched.etag, size_bytes=fetched.size_bytes,
                                    version_id=fetched.version_id,
                                    sha256=_content_id(digest, fetched))
        try:
            with _timed(timings, "decode"):  # with ranged reads, the sampled packets' GETs too
                video = await decode(fetched, stages.media)
        finally:
            fetched.discard()
        facts = dataclasses.replace(facts, duration_s=video.duration_s)
        prints = await _fingerprint(stages, video, timings)
        shortcut, near = await _without_model(job, facts, video, prints, stages, timings)
        if shortcut is not None:
            return shortcut
        inference = await infer(job, video, stages.pool)
        timings.update(batch_wait=inference.wait_ms, infer=inference.run_ms)
    except SettleWithError as exc:
        return verdicts.error_verdict(job, facts, exc.code, exc.message, stages.context, timings)
    verdict = verdict_reuse.model_verdict(job, facts, inference.output, prints, near,
                                          stages.context, timings)
    return await _with_evidence(stages, verdict, video, timings)


async def _lookup(job: Job, stages: Stages, timings: dict[str, float]
                  ) -> tuple[ObjectDigest | None, verdicts.Verdict | None]:
    """S3's SHA-256 of the object (one HEAD) and the cached verdict for it, when the cache is on;
    a failed HEAD or lookup is a miss (logged where it failed)."""
    if stages.reuse.cache is None:
        return None, None
    with _timed(timings, "lookup"):
        digest = await head_digest(stages.media.s3, job)
        if digest is None or digest.content_id is None:
            return digest, None
        cached = await stages.reuse.cache.lookup(digest.content_id, stages.context.model)
    return digest, cached.verdict if cached is not None else None


def _seen_by_head(job: Job, digest: ObjectDigest | None, facts: verdicts.VideoFacts
                  ) -> tuple[Job, verdicts.VideoFacts]:
    """The job pinned to the version the HEAD saw, and what the HEAD said about it."""
    if digest is None:
        return job, facts
    return pinned(job, digest), verdicts.VideoFacts(
        etag=digest.etag, size_bytes=digest.size_bytes, version_id=digest.version_id,
        sha256=digest.content_id)


def _content_id(digest: ObjectDigest | None, fetched: FetchedObject) -> str | None:
    """The content id of the bytes fetched: S3's checksum when the HEAD saw this version, else
    the SHA-256 hashed while spooling, else None (read by ranges, no checksum)."""
    if digest is not None and digest.content_id and digest.etag == fetched.etag:
        return digest.content_id
    return full_object_id(fetched.sha256) if fetched.sha256 else None


async def _fingerprint(stages: Stages, video: SampledVideo, timings: dict[str, float]
                       ) -> tuple[FrameFingerprint, ...]:
    if not stages.reuse.fingerprints:
        return ()
    with _timed(timings, "fingerprint"):
        return await asyncio.get_running_loop().run_in_executor(
            stages.media.decode_pool, fingerprint_frames, video.frames, video.timestamps_ms)


async def _without_model(job: Job, facts: verdicts.VideoFacts, video: SampledVideo,
                         prints: tuple[FrameFingerprint, ...], stages: Stages,
                         timings: dict[str, float]
                         ) -> tuple[verdicts.Verdict | None, NearMatch | None]:
    """A verdict decided without the model (a known-content block, a reusable near-duplicate),
    or None; and the near-duplicate found, to record when the model runs."""
    known = await stages.reuse.known_content()
    match = known.match(prints) if known is not None else None
    if match is not None:  # known content: blocked before the model runs
        verdict = verdict_reuse.known_content_block(job, facts, match, prints, stages.context,
                                                    timings)
        return await _with_evidence(stages, verdict, video, timings), None
    near = stages.reuse.recent.find(prints) if stages.reuse.recent is not None else None
    if near is not None and near.reusable(stages.reuse.near_duplicate_reuse):
        return verdict_reuse.near_duplicate_hit(job, facts, near, prints, stages.context,
                                                timings), near
    return None, near


async def _with_evidence(stages: Stages, verdict: verdicts.Verdict, video: SampledVideo,
                         timings: dict[str, float]) -> verdicts.Verdict:
    """The verdict with its labels' evidence frames written and keyed (review and block only)."""
    target = stages.reuse.evidence
    if target is None or verdict.decision == "allow" or not verdict.labels:
        return verdict
    with _timed(timings, "evidence"):
        keys = await write_evidence(stages.media.s3, target, stages.media.decode_pool,
                                    verdict.idempotency_key, video.frames, video.timestamps_ms,
                                    frame_times(verdict.labels))
    return dataclasses.replace(
        verdict, labels=with_evidence(verdict.labels, keys), evidence_bucket=target.bucket,
        timings_ms=dataclasses.replace(verdict.timings_ms,
                                       evidence=round(timings["evidence"], 1)))


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
