"""The real worker on the embedded stack: uploads -> S3 notifications -> queue -> verdicts.

Two phases on one warm replica pool.  Throughput: the whole corpus is uploaded first, then the
worker drains the backlog; videos/s is counted from its first receive to its last verdict, so
neither the uploads, its start-up, nor the idle wait before it exits are in it.  Latency: a few
more uploads arrive one at a time at a fraction of that throughput while the worker runs, and each
verdict's latency is from the end of its upload to its arrival on the tap queue subscribed to the
topic.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.ops.queues import queue_depth
from worker.app import WorkerService
from worker.aws import boto3_client
from tools.lab.embedded_aws import StackInfo, drain_tap
from worker.metrics import Metrics
from worker.settings import Settings
from worker.verdict import Verdict

Advance = Callable[[float], None]


@dataclass(frozen=True)
class Upload:
    path: Path
    key: str


@dataclass(frozen=True)
class PipelineRun:
    """What one phase of the worker did, read back from the verdicts it published."""

    videos: int  # ok verdicts
    errors: int  # error verdicts (a real clip the decoder refuses, say)
    seconds: float  # first message received -> last verdict on the tap
    cpu_s: float  # process CPU time of the worker run: moto's server threads are in it too
    latencies_s: tuple[float, ...]
    stage_ms: dict[str, float]  # mean per stage over the ok verdicts
    messages: dict[str, int]

    @property
    def videos_per_s(self) -> float:
        return (self.videos + self.errors) / self.seconds


@dataclass
class StageTimes:
    """A metrics sink: collects each verdict's per-stage timings (publish included)."""

    timings: list[dict[str, float]] = field(default_factory=list)

    def __call__(self, line: str) -> None:
        record = json.loads(line)
        if "Videos" in record and record.get("Status") == "ok":
            self.timings.append({name[:-len("Latency")]: value for name, value in record.items()
                                 if name.endswith("Latency")})

    def means(self) -> dict[str, float]:
        sums: dict[str, list[float]] = defaultdict(list)
        for timing in self.timings:
            for stage, ms in timing.items():
                sums[_snake(stage)].append(ms)
        return {stage: round(statistics.fmean(values), 1) for stage, values in sums.items()}


def run_backlog(settings: Settings, service: WorkerService, stack: StackInfo,
                uploads: Sequence[Upload], advance: Advance,
                keep: Callable[[dict], None] = lambda verdict: None) -> PipelineRun:
    """Upload everything, wait for the notifications to queue, then let the worker drain it;
    ``keep`` sees every verdict read back."""
    s3 = boto3_client("s3", stack.region, stack.endpoint_url)
    uploaded_at = {upload.key: _put(s3, stack, upload) for upload in uploads}
    _wait_for_depth(stack, len(uploads))
    return _serve_and_collect(settings, service, stack, uploaded_at, len(uploads), advance, keep)


def run_paced(settings: Settings, service: WorkerService, stack: StackInfo,
              uploads: Sequence[Upload], interval_s: float, advance: Advance) -> PipelineRun:
    """Upload one video every ``interval_s`` while the worker runs; latency is the point here."""
    uploaded_at: dict[str, float] = {}

    def feed() -> None:
        s3 = boto3_client("s3", stack.region, stack.endpoint_url)  # clients are not shared
        for upload in uploads:
            uploaded_at[upload.key] = _put(s3, stack, upload)
            time.sleep(interval_s)

    feeder = threading.Thread(target=feed, name="bench-uploader", daemon=True)
    feeder.start()
    run = _serve_and_collect(settings, service, stack, uploaded_at, len(uploads), advance)
    feeder.join()
    return run


def _serve_and_collect(settings: Settings, service: WorkerService, stack: StackInfo,
                       uploaded_at: dict[str, float], expected: int,
                       advance: Advance,
                       keep: Callable[[dict], None] = lambda verdict: None) -> PipelineRun:
    stages = StageTimes()
    metrics = Metrics(True, settings.region, sink=stages)
    started, started_cpu = time.time(), time.process_time()
    stats = service.run(settings=settings, metrics=metrics, keep_verdicts=True)
    cpu_s = time.process_time() - started_cpu
    arrivals = drain_tap(stack, expected)
    advance(len(arrivals))
    for arrival in arrivals:
        keep(arrival.verdict)
    ok = sum(1 for a in arrivals if a.verdict["status"] == "ok")
    latencies = tuple(a.sent_at_s - uploaded_at[a.verdict["video"]["key"]]
                      for a in arrivals if a.verdict["video"]["key"] in uploaded_at)
    last = max((a.sent_at_s for a in arrivals), default=time.time())
    first = _first_receive(stats.verdicts, uploaded_at, default=started)
    return PipelineRun(videos=ok, errors=len(arrivals) - ok, seconds=last - first, cpu_s=cpu_s,
                       latencies_s=latencies, stage_ms=stages.means(),
                       messages=dict(stats.messages))


def _first_receive(verdicts: list[Verdict], uploaded_at: dict[str, float],
                   default: float) -> float:
    """When the worker received its first message: upload time plus that verdict's queue wait.

    Counting from here leaves out the worker's start-up (clients, first long poll), which a
    long-running worker pays once, not per video.
    """
    received = [uploaded_at[v.video.key] + (v.timings_ms.queue_wait or 0) / 1000
                for v in verdicts if v.video.key in uploaded_at]
    return min(received, default=default)


def _put(s3: Any, stack: StackInfo, upload: Upload) -> float:
    # One PUT, not upload_file: multipart uploads would make the notification's timing depend
    # on part sizes, and one PUT is how most upload services hand a video to S3.
    with upload.path.open("rb") as body:
        # With S3's SHA-256, as `modfleet submit` uploads (the verdict cache reads it).
        s3.put_object(Bucket=stack.bucket, Key=upload.key, Body=body, ChecksumAlgorithm="SHA256")
    return time.time()


def _wait_for_depth(stack: StackInfo, expected: int, timeout_s: float = 60) -> None:
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if queue_depth(sqs, stack.queue_url).visible >= expected:
            return
        time.sleep(0.1)
    raise RuntimeError(f"the queue did not reach {expected} notifications in {timeout_s} s")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() and i else c.lower() for i, c in enumerate(name))
