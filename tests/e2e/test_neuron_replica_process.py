"""A Neuron replica's process killed under a running `modfleet worker --backend neuron`: the worker
exits 3 within 60 s, naming the replica, with every message it held released for another worker
and none dead-lettered.

The worker runs as a subprocess on the contract fakes of the Neuron SDK 2.25 (tests/neuron_fakes)
over the embedded AWS stack; the test kills the replica's child process (whose pid the worker logs
when it starts it) as the replicas become ready, while the queue still holds most of the clips.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from model.synthetic import build_checkpoint
from tools.lab.harness import (ROOT, fake_sdk_env, modfleet, read_verdicts, upload,
                               wait_for_log, worker_command)
from tools.lab.sample_videos import VideoSpec, write_video
from tools.ops.queues import queue_depth
from worker.aws import boto3_client

pytestmark = pytest.mark.slow
MODEL = ["--frames-per-video", "4", "--frame-size", "56", "--batch-size", "2", "--tp-degree", "1"]
CLIPS = 8


def counts(stack, url: str) -> dict[str, int]:
    depth = queue_depth(boto3_client("sqs", stack.region, stack.endpoint_url), url)
    return {"visible": depth.visible, "held": depth.in_flight}


def test_a_killed_replica_process_makes_the_worker_exit_3_and_release_its_messages(stack,
                                                                                   tmp_path):
    checkpoint = build_checkpoint(tmp_path / "tiny-llava", "tiny", "llava_next_video")
    compiled = tmp_path / "compiled"
    done = subprocess.run(modfleet("compile", "--out", str(compiled), "--model-dir",
                                   str(checkpoint), "--amp", "f32", *MODEL),
                          cwd=ROOT, env=fake_sdk_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for i in range(CLIPS):
        path = write_video(VideoSpec(f"c{i}.mp4", width=96, height=64, seconds=1.0, fps=8,
                                     seed=i), tmp_path)
        upload(stack, path, f"clips/{i:02d}.mp4")

    worker = subprocess.Popen(
        worker_command(stack, "--backend", "neuron", "--compiled-dir", str(compiled), *MODEL,
                       "--replicas", "1", "--visibility-timeout-s", "300", "--max-in-flight", "4"),
        cwd=ROOT, env=fake_sdk_env(), text=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        started = wait_for_log(worker, "neuron replica process started", timeout=180)[-1]
        assert started["replica"] == 0 and started["cores"] == "0"
        wait_for_log(worker, "replicas ready", timeout=180)
        os.kill(started["pid"], signal.SIGKILL)
        killed_at = time.monotonic()
        code = worker.wait(timeout=60)
        exited_in = time.monotonic() - killed_at
        rest = [json.loads(line) for line in worker.stderr.read().splitlines()
                if line.startswith("{")]
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert code == 3, rest[-5:]
    assert exited_in < 60
    died = [r for r in rest if r.get("event") == "replica died"]
    assert died and died[0]["replica"] == 0
    assert "neuron replica 0 process" in died[0]["error"] and "exit code -9" in died[0]["error"]
    assert any(r.get("event") == "released unfinished message" for r in rest)

    # Nothing lost: each clip has a verdict or is back on the queue, visible to the next worker;
    # nothing held for the 300 s visibility timeout, nothing dead-lettered.
    published = read_verdicts(stack, timeout=2)
    assert all(v["status"] == "ok" for v in published)
    queue = counts(stack, stack.queue_url)
    assert queue["held"] == 0
    assert queue["visible"] + len(published) == CLIPS
    assert counts(stack, stack.dlq_url) == {"visible": 0, "held": 0}
