"""README's local-stack walkthrough, as written: only the endpoint is exported, every resource comes
from the stack's SSM parameters (the region's one stack), and queues are taken by name."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tools.lab.embedded_aws import StackInfo
from tools.lab.harness import FAST_MODEL, ROOT, modfleet, read_verdicts, start
from tools.lab.sample_videos import VideoSpec, write_video

pytestmark = pytest.mark.slow


@pytest.fixture()
def local_stack():
    process = start(modfleet("local-stack", "--json"))
    try:
        line = process.stdout.readline()
        assert line, process.stderr.read()
        yield StackInfo(**json.loads(line))
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_submit_enqueue_and_worker_need_only_the_endpoint(local_stack, tmp_path):
    stack = local_stack
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODFLEET_", "AWS_"))}
    env |= {"MODFLEET_ENDPOINT_URL": stack.endpoint_url, "PYTHONUNBUFFERED": "1"}

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(modfleet(*args), cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=180)

    clip = write_video(VideoSpec("walk.mp4", seconds=1), tmp_path)
    submitted = run("submit", str(clip), "--prefix", "walk")
    assert submitted.returncode == 0, submitted.stderr
    assert f"s3://{stack.bucket}/walk/walk.mp4" in submitted.stdout
    enqueued = run("enqueue", "--queue", f"{stack.name}-jobs", "--key", "walk/missing.mp4")
    assert enqueued.returncode == 0, enqueued.stderr
    assert f"to {stack.queue_url}" in enqueued.stdout  # the name, resolved to its URL
    worked = run("worker", "--exit-when-idle", "3", "--wait-time-s", "1", "--no-metrics",
                 "--log-format", "json", *FAST_MODEL)
    assert worked.returncode == 0, worked.stderr[-3000:]
    verdicts = {v["video"]["key"]: v for v in read_verdicts(stack, expect_at_least=2)}
    assert verdicts["walk/walk.mp4"]["status"] == "ok"
    assert verdicts["walk/missing.mp4"]["error"]["code"] == "object_missing"
