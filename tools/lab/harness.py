"""The harness the tests and lab runs drive modfleet with: its commands as subprocesses, the
worker's JSON log, uploads and jobs on an embedded stack, verdicts read back (faults over HTTP come
from tools/lab/chaos/fault_proxy.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tools.lab.embedded_aws import StackInfo, drain_tap
from tools.lab.sample_videos import VideoSpec, write_video
from tools.ops import queues
from worker.aws import boto3_client

ROOT = Path(__file__).resolve().parents[2]  # the repository root
NEURON_FAKES = ROOT / "tests" / "neuron_fakes"  # contract fakes of the pinned Neuron SDK
FAST_MODEL = ["--frames-per-video", "4", "--frame-size", "56", "--batch-size", "2",
              "--batch-wait-ms", "100"]


def modfleet(*args: str) -> list[str]:
    return [sys.executable, "-m", "tools.ops.cli", *args]


def worker_command(stack: StackInfo, *extra: str, endpoint_url: str | None = None) -> list[str]:
    return modfleet("worker", "--queue-url", stack.queue_url, "--topic-arn", stack.topic_arn,
                    "--dlq-url", stack.dlq_url, "--endpoint-url", endpoint_url or
                    stack.endpoint_url, "--wait-time-s", "1", "--log-format", "json",
                    "--no-metrics", *FAST_MODEL, *extra)


def reuse_flags(stack: StackInfo) -> list[str]:
    """Worker flags that turn on the verdict cache, known-content lists and evidence (issue 21)."""
    return ["--verdict-table", stack.verdict_table, "--records-bucket", stack.records_bucket]


def fake_sdk_env(**extra: str) -> dict[str, str]:
    """The environment of a process that sees the contract fakes as the installed Neuron SDK; the
    runtime's own core setting gives it two NeuronCores (this machine has no /dev/neuron*), on a
    fake instance of its own (the cores' lock files: tests/neuron_fakes/fake_nrt.py)."""
    path = os.pathsep.join(p for p in (str(NEURON_FAKES), os.environ.get("PYTHONPATH", "")) if p)
    devices = tempfile.mkdtemp(prefix="modfleet-fake-neuron-")
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1",
                NEURON_RT_VISIBLE_CORES="0-1", MODFLEET_FAKE_NEURON_DIR=devices, **extra)


def start(command: list[str], **kwargs) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    kwargs = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE} | kwargs
    return subprocess.Popen(command, cwd=ROOT, env=env, text=True, **kwargs)


def wait_for_log(process: subprocess.Popen, event: str, timeout: float = 120) -> list[dict]:
    """Read the worker's JSON log lines (stderr) until one has ``event``; return those read."""
    seen: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stderr.readline()
        if not line:
            raise AssertionError(f"worker exited before {event!r}: {seen[-5:]}")
        try:
            record = json.loads(line)
        except ValueError:
            continue
        seen.append(record)
        if record.get("event") == event:
            return seen
    raise AssertionError(f"no {event!r} within {timeout} s")


def read_verdicts(stack: StackInfo, expect_at_least: int = 0, timeout: float = 30) -> list[dict]:
    """Drain the tap queue subscribed to the verdict topic; SNS attributes under ``_attributes``."""
    return [{**m.verdict, "_attributes": m.attributes}
            for m in drain_tap(stack, expect_at_least, timeout)]


def queue_depth(stack: StackInfo, url: str | None = None) -> int:
    """Visible plus in-flight plus delayed messages."""
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    return queues.queue_depth(sqs, url or stack.queue_url).total


def upload(stack: StackInfo, path: Path, key: str) -> None:
    boto3_client("s3", stack.region, stack.endpoint_url).upload_file(str(path), stack.bucket, key)


def upload_clips(stack: StackInfo, tmp_path: Path, count: int, seconds: float = 1.0) -> set[str]:
    """Upload ``count`` small generated clips as clips/NN.mp4; their keys."""
    keys = set()
    for i in range(count):
        path = write_video(VideoSpec(f"c{i}.mp4", width=96, height=64, seconds=seconds, fps=8,
                                     seed=i), tmp_path)
        upload(stack, path, f"clips/{i:02d}.mp4")
        keys.add(f"clips/{i:02d}.mp4")
    return keys


def send(stack: StackInfo, body: str | dict) -> None:
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    sqs.send_message(QueueUrl=stack.queue_url,
                     MessageBody=body if isinstance(body, str) else json.dumps(body))


def serve_until_idle(settings, pool):
    """Run the real worker on ``pool`` in this process until the queue is idle (the settings'
    ``exit_when_idle_s``); the worker's stats."""
    from worker.app import WorkerService
    from worker.metrics import Metrics

    with WorkerService(settings, Metrics(False, settings.region), pool=pool) as service:
        return service.run()
