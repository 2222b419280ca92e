"""The worker feeding a paced device (model/paced_backend.py): accelerator efficiency, host cost.

Two regimes on the same corpus, the embedded stack in its own process (so the process CPU measured
here is the worker's alone):

- **Fast device** (``--paced-fast-batch-ms``, a few ms per batch): the host is the bottleneck.
  Videos/s is the host's capacity; the worker's CPU per video, split by stage, is the host's cost.
- **Slow device**: a device rate of ``--paced-load`` x that capacity.  Efficiency is what the
  accelerator sees: video-slots filled per video-slot offered, over the steady state (from the
  moment every replica has finished its first batch to the moment the first replica starts its
  last), so a fleet's one-off pipeline fill and drain are not in it (``overall_videos_per_s``
  keeps them).  A padded batch, or a replica waiting for clips, counts against it.

The objects are uploaded once to a bucket without notifications and the queue is fed S3 event
notifications naming them (with size and ETag, as S3 sends), so one upload serves many messages.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.lab.bench.loop_profile import LoopProfile
from tools.lab.embedded_aws import StackInfo, drain_tap
from worker.app import WorkerService
from worker.aws import AsyncClients, boto3_client
from worker.metrics import Metrics
from worker.pipeline import Media, decode, fetch
from worker.records import Job
from worker.replicas import BatchReport, ReplicaPool
from worker.settings import Settings

Say = Callable[[str], None]


@dataclass(frozen=True)
class PacedOptions:
    videos: int
    replicas: int
    batch_size: int
    load: float  # slow device's rate as a fraction of the host's measured capacity
    fast_batch_ms: float
    slow_batch_ms: float = 0.0  # fixed instead (the regression test: a loaded CI box's capacity
    # can make the derived batch time a minute long)


@dataclass(frozen=True)
class StoredObject:
    key: str
    path: Path
    size: int
    etag: str


@dataclass(frozen=True)
class Batches:
    """(replica, start, end, real rows) of every batch a pool ran, on the perf_counter clock."""

    runs: tuple[tuple[int, float, float, int], ...]

    def steady_state(self, replicas: int, batch_size: int, batch_s: float) -> dict[str, float]:
        """Video-slots filled over offered, and videos/s, while every replica had work."""
        by_replica: dict[int, list] = defaultdict(list)
        for run in self.runs:
            by_replica[run[0]].append(run)
        # Past every replica's first batch (the pipeline fill) and before any replica's last
        # (the drain): what a long-running worker sustains.
        start = max(min(r[2] for r in runs) for runs in by_replica.values())
        end = min(max(r[1] for r in runs) for runs in by_replica.values())
        if len(by_replica) < replicas or end <= start:  # too few videos for a steady state
            start, end = min(r[1] for r in self.runs), max(r[2] for r in self.runs)
        filled = sum(rows * _overlap(s, e, start, end) / (e - s) for _, s, e, rows in self.runs)
        offered = replicas * batch_size * (end - start) / batch_s
        held = sum(_overlap(s, e, start, end) for _, s, e, _ in self.runs)
        return {"efficiency": filled / offered, "videos_per_s": filled / (end - start),
                "window_s": end - start, "busy_share": held / (replicas * (end - start))}


def _overlap(s: float, e: float, start: float, end: float) -> float:
    return max(0.0, min(e, end) - max(s, start))


def store_objects(stack: StackInfo, paths: Sequence[Path]) -> tuple[str, list[StoredObject]]:
    """Upload each file once to a versioned bucket that sends no notifications."""
    s3 = boto3_client("s3", stack.region, stack.endpoint_url)
    bucket = f"{stack.bucket}-store"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    stored = []
    for index, path in enumerate(paths):
        key = f"store/{index:03d}-{path.name}"
        with path.open("rb") as body:
            etag = s3.put_object(Bucket=bucket, Key=key, Body=body)["ETag"].strip('"')
        stored.append(StoredObject(key, path, path.stat().st_size, etag))
    return bucket, stored


def enqueue_events(stack: StackInfo, bucket: str, objects: Sequence[StoredObject],
                   count: int) -> None:
    """``count`` S3 ObjectCreated notifications cycling through ``objects``."""
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    bodies = [json.dumps({"Records": [{
        "eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "awsRegion": stack.region,
        "s3": {"bucket": {"name": bucket},
               "object": {"key": o.key, "size": o.size, "eTag": o.etag}}}]})
        for o in (objects[i % len(objects)] for i in range(count))]
    for first in range(0, count, 10):
        sqs.send_message_batch(QueueUrl=stack.queue_url, Entries=[
            {"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies[first:first + 10])])


def run_regime(settings: Settings, options: PacedOptions, stack: StackInfo, bucket: str,
               objects: Sequence[StoredObject], batch_ms: float,
               stack_cpu_s: Callable[[], float] = lambda: 0.0) -> dict[str, Any]:
    """One backlog of ``options.videos`` through the worker on a paced pool of ``batch_ms``;
    ``stack_cpu_s`` reads the embedded stack's CPU seconds (its own process)."""
    paced = settings.for_stack(stack).with_changes(backend="paced", replicas=options.replicas,
                                  batch_size=options.batch_size, paced_batch_ms=batch_ms)
    runs: list[tuple[int, float, float, int]] = []
    lock = threading.Lock()

    def on_batch(report: BatchReport) -> None:
        end = time.perf_counter()
        with lock:
            runs.append((report.replica, end - report.seconds, end, report.real_rows))

    pool = ReplicaPool(paced, on_batch=on_batch)
    with WorkerService(paced, Metrics(False, paced.region), pool=pool) as service:
        enqueue_events(stack, bucket, objects, options.videos)
        profile = LoopProfile()
        stack0 = stack_cpu_s()
        started, cpu0, loop0 = time.perf_counter(), time.process_time(), time.thread_time()
        with profile.installed():
            stats = service.run()
        cpu_s, loop_s = time.process_time() - cpu0, time.thread_time() - loop0
        stack_s = stack_cpu_s() - stack0
    arrivals = drain_tap(stack, options.videos)
    ok = sum(a.verdict["status"] == "ok" for a in arrivals)
    batches = Batches(tuple(runs))
    real = [r for r in runs if r[3] > 0]
    preprocess_s = sum(r.backend.stats["preprocess_cpu_s"] for r in pool.replicas)
    steady = Batches(tuple(real)).steady_state(options.replicas, options.batch_size,
                                               batch_ms / 1000)
    videos = max(1, len(arrivals))
    loop_cpu = dict(profile.cpu_s)
    # The loop's own work outside callbacks (selector polls, scheduling) is the event loop's too.
    loop_cpu["event_loop"] = loop_cpu.get("event_loop", 0.0) + loop_s - sum(profile.cpu_s.values())
    stages = {name: round(s / videos, 4) for name, s in sorted(loop_cpu.items())}
    stages["preprocess"] = round(preprocess_s / videos, 4)
    # By difference: decode threads and FFmpeg's own threads (the ranged reads' read callbacks
    # run there too), and the replica threads' batching beside their preprocessing.
    stages["decode"] = round((cpu_s - loop_s - preprocess_s) / videos, 4)
    fill = sum(r[3] for r in runs) / (len(runs) * options.batch_size)
    busy = max(b[2] for b in batches.runs) - started
    working = max(b[2] for b in batches.runs) - min(b[1] for b in batches.runs)
    return {
        "batch_ms": round(batch_ms, 2),
        "device_videos_per_s": options.replicas * options.batch_size / (batch_ms / 1000),
        "videos": len(arrivals), "ok": ok, "messages": dict(stats.messages),
        "steady_videos_per_s": steady["videos_per_s"], "efficiency": steady["efficiency"],
        "steady_window_s": round(steady["window_s"], 2),
        "batches": len(runs), "mean_batch_fill": fill,
        "batch_log": [(r, round(s - started, 2), round(e - started, 2), rows)
                      for r, s, e, rows in sorted(runs, key=lambda run: run[1])],
        "replica_busy_share": steady["busy_share"],
        "overall_videos_per_s": len(arrivals) / busy,  # start-up and pipeline fill included
        "host_videos_per_s": len(arrivals) / working,  # first batch start to last batch end
        "host_cpu_s_per_video": cpu_s / videos,
        "host_cpu_cores_busy": round(cpu_s / busy, 2),
        "stack_cpu_s_per_video": stack_s / videos,  # moto serving S3/SQS/SNS: not the host's
        "stack_cpu_cores_busy": round(stack_s / busy, 2),
        "host_cpu_s_per_video_by_stage": stages,
    }


def measure_fetching(settings: Settings, stack: StackInfo, bucket: str,
                     objects: Sequence[StoredObject], ranged_min_bytes: int) -> dict[str, Any]:
    """Bytes and GET requests per object through the worker's own fetch and decode stages."""
    settings = settings.with_changes(ranged_min_bytes=ranged_min_bytes)
    spool = Path(settings.cache_dir) / "bench-spool"
    spool.mkdir(parents=True, exist_ok=True)

    async def run() -> list[dict[str, Any]]:
        rows = []
        async with AsyncClients(stack.region, stack.endpoint_url) as aws:
            with ThreadPoolExecutor(1) as pool:
                media = Media.from_settings(settings, aws.s3, pool, spool)
                for o in objects:
                    job = Job(bucket, o.key, etag=o.etag, size=o.size)
                    fetched = await fetch(job, media)
                    try:
                        await decode(fetched, media)
                    finally:
                        fetched.discard()
                    rows.append({"file": o.path.name, "size": o.size,
                                 "ranged": fetched.remote is not None,
                                 "requests": fetched.counts.requests,
                                 "bytes": fetched.counts.bytes})
        return rows

    rows = asyncio.run(run())
    return {"bytes_fetched_ratio": sum(r["bytes"] for r in rows) / sum(r["size"] for r in rows),
            "get_requests_per_video": sum(r["requests"] for r in rows) / len(rows),
            "files": rows}


def summarise(options: PacedOptions, fast: dict, slow: dict, floors: dict, corpus_fetch: dict,
              all_ranged: dict, long_fetch: dict, long_describe: str) -> dict[str, Any]:
    """The run's top-level fields (the accelerator's view, host cost, fetching) and details."""
    floor = sum(floors["floor"].values()) / len(floors["floor"])
    sampled = sum(floors["sampled"].values()) / len(floors["sampled"])
    sig = _significant
    return {
        "paced_efficiency": sig(slow["efficiency"]),
        "paced_replicas": options.replicas, "paced_batch_size": options.batch_size,
        "paced_device_videos_per_s": sig(slow["device_videos_per_s"]),
        "paced_videos_per_s": sig(slow["steady_videos_per_s"]),
        "paced_fast_videos_per_s": sig(fast["host_videos_per_s"]),
        "host_cpu_s_per_video": sig(fast["host_cpu_s_per_video"]),
        "host_cpu_s_per_video_by_stage": fast["host_cpu_s_per_video_by_stage"],
        "embedded_stack_cpu_s_per_video": sig(fast["stack_cpu_s_per_video"]),
        "decode_floor_cpu_s_per_video": sig(floor),
        "sampler_cpu_s_per_video": sig(sampled),
        "sampler_to_floor": sig(sampled / floor),
        "host_to_floor": sig(fast["host_cpu_s_per_video"] / floor),
        "bytes_fetched_ratio": sig(corpus_fetch["bytes_fetched_ratio"]),
        "get_requests_per_video": sig(corpus_fetch["get_requests_per_video"]),
        "long_clip_bytes_fetched_ratio": sig(long_fetch["bytes_fetched_ratio"]),
        "long_clip_get_requests_per_video": sig(long_fetch["get_requests_per_video"]),
        "paced": {"fast_device": _rounded(fast), "slow_device": _rounded(slow),
                  "load": options.load, "videos": options.videos,
                  "decode_cpu_s_by_file": {k: {"floor": round(v, 4),
                                               "sampled": round(floors["sampled"][k], 4)}
                                           for k, v in floors["floor"].items()},
                  "fetch_by_file": corpus_fetch["files"],
                  "fetch_by_file_all_ranged": all_ranged["files"],
                  "long_clip": {"spec": long_describe, **long_fetch["files"][0]}},
    }


def _rounded(run: dict) -> dict:
    return {k: (_significant(v) if isinstance(v, float) else v) for k, v in run.items()}


def _significant(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")
