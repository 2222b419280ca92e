"""A chaos run: uploads through the embedded stack, faults on every call, workers killed at random.

The run starts moto on loopback (provisioned like one region), a fault proxy in front of it for the
workers, and a fleet of ``modfleet worker`` processes on the tiny synthetic model.  It uploads the
planned objects (clips, new versions of earlier keys, hostile mutants) and sends poison bodies,
then interrupts a random worker every ``kill_every_s`` seconds on average (SIGKILL, or SIGTERM for
``sigterm_share`` of them) until the job queue has been empty for ``idle_s``.  Then it stops the
fleet and holds what the verdict topic and the queues hold against what it uploaded (report.py).
"""

from __future__ import annotations

import json
import random
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.lab.chaos.corpus import POISON_BODIES, Upload, plan_uploads, seed_clips
from tools.lab.chaos.fault_proxy import FaultProxy
from tools.lab.chaos.fleet import Fleet
from tools.lab.chaos.report import ChaosReport, Leftover, Uploaded, analyse, version_of
from tools.ops.queues import queue_depth
from worker.aws import boto3_client
from worker.logs import get_logger
from worker.verdict import Verdict, from_json

log = get_logger(__name__)
CLI_MODULE = "tools.ops.cli"
# The tiny model at its fastest (as the tests run it), queue timings short enough that a killed
# worker's messages come back within seconds, and a backlog held in flight long enough for the
# heartbeat (ChangeMessageVisibilityBatch) to have calls to fail.
WORKER_FLAGS = ("--frames-per-video", "4", "--frame-size", "56", "--batch-size", "2",
                "--batch-wait-ms", "100", "--max-in-flight", "12", "--wait-time-s", "1",
                "--heartbeat-interval-s", "1",
                "--processing-deadline-s", "120", "--shutdown-deadline-s", "5",
                "--publish-retry-s", "1", "--log-format", "json", "--no-metrics")


@dataclass(frozen=True)
class ChaosPlan:
    """Everything a run does; the defaults are the test suite's small run."""

    uploads: int = 100
    hostile: int = 0
    poison: int = 3
    workers: int = 2
    fault_rate: float = 0.1
    kill_every_s: float = 6.0      # mean seconds between interruptions (0: none)
    sigterm_share: float = 0.25    # of the interruptions, the share that are SIGTERM
    min_kills: int = 0             # SIGKILLs before the run may end (the first ones are SIGKILLs)
    seed: int = 1
    visibility_timeout_s: int = 10
    max_receive_count: int = 10
    idle_s: float = 3.0
    timeout_s: float = 900.0
    media_dir: Path | None = None
    log_dir: Path | None = None
    worker_args: tuple[str, ...] = ()
    # The workers use the stack's verdict table and records bucket (issue 21), so DynamoDB calls
    # meet faults too.  Off by default: the run uploads copies of a few clips, which the cache
    # would answer without the GETs and decodes whose faults the run is mostly about.
    reuse: bool = False

    def __post_init__(self) -> None:
        if self.uploads < 0 or self.hostile < 0 or self.poison < 0 or self.workers < 1:
            raise ValueError("uploads, hostile and poison must be >= 0, workers >= 1")
        if self.uploads + self.hostile == 0:
            raise ValueError("nothing to upload: give --uploads or --hostile")
        if not 0 <= self.fault_rate <= 1:
            raise ValueError(f"fault-rate must be within 0-1, got {self.fault_rate}")
        if self.min_kills and not self.kill_every_s:
            raise ValueError("min-kills needs kill-every > 0")
        if not 0 <= self.sigterm_share <= 1 or self.kill_every_s < 0:
            raise ValueError("sigterm-share must be within 0-1 and kill-every >= 0")


def run_chaos(plan: ChaosPlan, on_progress: Callable[[float], None] = lambda n: None
              ) -> ChaosReport:
    """Run ``plan`` to the end and return its report."""
    from tools.lab.embedded_aws import EmbeddedAws, drain_tap, provision

    started = time.monotonic()
    rng = random.Random(plan.seed)
    with tempfile.TemporaryDirectory(prefix="modfleet-chaos-") as scratch, EmbeddedAws() as aws:
        stack = provision(aws.endpoint_url, name="chaos", max_receive_count=plan.max_receive_count,
                          visibility_timeout_s=plan.visibility_timeout_s)
        clips = seed_clips(Path(scratch) / "clips", plan.media_dir)
        planned = plan_uploads(clips, plan.uploads, plan.hostile, plan.seed)
        with FaultProxy(aws.endpoint_url, plan.fault_rate, plan.seed) as proxy:
            # A worker polls at least half the mean interval before it may be interrupted: on a
            # slow machine start-up takes most of it, and a run of kills during model loading
            # would test nothing but start-up.
            fleet = Fleet(_command_for(plan, stack, proxy.url), plan.workers,
                          plan.log_dir or Path(scratch) / "logs", rng,
                          min_uptime_s=plan.kill_every_s / 2)
            uploader = _Uploader(stack, planned)
            uploader.start()
            _send_poison(stack, plan.poison)
            verdicts: list[Verdict] = []
            try:
                fleet.start()
                timed_out = _until_idle(plan, stack, fleet, uploader, rng, started,
                                        lambda: _collect(stack, verdicts, drain_tap, on_progress))
            finally:
                fleet.stop()
            uploader.join()
            _collect(stack, verdicts, drain_tap, on_progress)
        leftovers = _leftovers(stack, "queue") + _leftovers(stack, "dlq")
        return analyse(
            uploader.uploaded, verdicts, leftovers, poison_sent=plan.poison,
            sigkills=fleet.counts.sigkills, sigterms=fleet.counts.sigterms,
            deaths=fleet.counts.deaths, unclean_sigterm_exits=fleet.counts.unclean_sigterm_exits,
            workers_started=fleet.counts.started, faults_injected=proxy.injected_by_kind(),
            calls=dict(proxy.calls), faults_by_type=dict(proxy.injected),
            fault_rate=plan.fault_rate,
            wall_s=round(time.monotonic() - started, 1), timed_out=timed_out,
            unexpected_errors_logged=_unexpected_errors(fleet.log_paths()))


def _command_for(plan: ChaosPlan, stack: Any, endpoint: str) -> Callable[[int, int], list[str]]:
    def command(slot: int, generation: int) -> list[str]:
        return [sys.executable, "-m", CLI_MODULE, "worker", "--queue-url", stack.queue_url,
                "--topic-arn", stack.topic_arn, "--dlq-url", stack.dlq_url, "--endpoint-url",
                endpoint, "--region", stack.region, "--visibility-timeout-s",
                str(plan.visibility_timeout_s), "--worker-id", f"chaos-{slot}.{generation}",
                *WORKER_FLAGS, *(_reuse_flags(stack) if plan.reuse else ()), *plan.worker_args]
    return command


def _reuse_flags(stack: Any) -> tuple[str, ...]:
    return ("--verdict-table", stack.verdict_table, "--records-bucket", stack.records_bucket)


def _until_idle(plan: ChaosPlan, stack: Any, fleet: Fleet, uploader: _Uploader,
                rng: random.Random, started: float, collect: Callable[[], None]) -> bool:
    """Interrupt workers until the queue has been empty ``idle_s``; True if the time ran out."""
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    next_interrupt = _next(plan, rng)
    idle_since: float | None = None
    while time.monotonic() - started < plan.timeout_s:
        time.sleep(0.5)
        fleet.poll()
        collect()
        now = time.monotonic()
        if next_interrupt is not None and now >= next_interrupt:
            kills_owed = fleet.counts.sigkills < plan.min_kills
            term = rng.random() < plan.sigterm_share and not kills_owed
            sig = signal.SIGTERM if term else signal.SIGKILL
            if fleet.interrupt(sig):
                next_interrupt = _next(plan, rng)
        if (uploader.is_alive() or fleet.counts.sigkills < plan.min_kills
                or _depth(sqs, stack.queue_url)):
            idle_since = None
        elif idle_since is None:
            idle_since = now
        elif now - idle_since >= plan.idle_s:
            return False
    return True


def _next(plan: ChaosPlan, rng: random.Random) -> float | None:
    if not plan.kill_every_s:
        return None
    return time.monotonic() + rng.uniform(0.5, 1.5) * plan.kill_every_s


def _depth(sqs: Any, queue_url: str) -> int:
    return queue_depth(sqs, queue_url).total


class _Uploader(threading.Thread):
    """Uploads the planned objects straight to moto (uploads are not the worker's calls)."""

    def __init__(self, stack: Any, planned: list[Upload]) -> None:
        super().__init__(name="chaos-uploads", daemon=True)
        self.stack, self.planned = stack, planned
        self.uploaded: list[Uploaded] = []

    def run(self) -> None:
        s3 = boto3_client("s3", self.stack.region, self.stack.endpoint_url)
        for item in self.planned:
            # With S3's SHA-256, as `modfleet submit` uploads (the verdict cache reads it).
            response = s3.put_object(Bucket=self.stack.bucket, Key=item.key, Body=item.data,
                                     ChecksumAlgorithm="SHA256")
            self.uploaded.append(Uploaded(self.stack.bucket, item.key, response.get("VersionId"),
                                          item.kind))


def _send_poison(stack: Any, count: int) -> None:
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    for i in range(count):
        sqs.send_message(QueueUrl=stack.queue_url,
                         MessageBody=POISON_BODIES[i % len(POISON_BODIES)] + f" #{i}")


def is_poison(body: str) -> bool:
    return any(body.startswith(p + " #") for p in POISON_BODIES)


def _collect(stack: Any, verdicts: list[Verdict], drain_tap: Callable,
             on_progress: Callable[[float], None]) -> None:
    """Read what reached the verdict topic (validated against the schema it names) as Verdicts."""
    before = {version_of(v) for v in verdicts}
    verdicts.extend(from_json(m.verdict) for m in drain_tap(stack, 0, 5.0))
    on_progress(len({version_of(v) for v in verdicts} - before))


def _leftovers(stack: Any, which: str) -> list[Leftover]:
    """Every message left in the job queue or the DLQ (received and deleted: the stack is gone
    after the run anyway)."""
    from tools.ops.references import object_refs

    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    url = stack.queue_url if which == "queue" else stack.dlq_url
    found: list[Leftover] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=60, MessageAttributeNames=["All"]
                                       ).get("Messages", [])
        if not messages:
            return found
        for message in messages:
            attrs = message.get("MessageAttributes", {})
            body = message["Body"]
            if which == "queue" and "s3:TestEvent" in body:
                continue
            found.append(Leftover(
                queue=which, poison=is_poison(body),
                error_code=attrs.get("modfleet.error_code", {}).get("StringValue", "redrive"),
                reason=attrs.get("modfleet.reason", {}).get("StringValue"),
                refs=tuple((r.bucket, r.key) for r in object_refs(body))))


def _unexpected_errors(paths: list[Path]) -> int:
    """Log lines at error level or with a traceback: each is worth a look after a run."""
    count = 0
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                count += "Traceback" in line
                continue
            count += record.get("level") in ("error", "critical") or "exception" in record
    return count
