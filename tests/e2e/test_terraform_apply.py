"""infra/ applied for real: `modfleet local-stack --terraform` applies the us-east-1 root with the
real Terraform and AWS provider to the embedded AWS stack (moto over HTTPS, so the TLS-only bucket
policy stays as it is); a worker started with the root's outputs moderates a clip uploaded through
the bucket's notifications; Ctrl-C destroys the stack and nothing is left.

One clip, one apply and one destroy (a few minutes on two cores); skipped only where there is no
terraform binary.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
from pathlib import Path

import boto3
import pytest

from tools.lab.harness import FAST_MODEL, ROOT, modfleet, queue_depth
from tools.lab import terraform
from tools.lab.embedded_aws import StackInfo, drain_tap
from tools.lab.exceptions import TerraformUnavailable
from tools.lab.sample_videos import write_demo_set
from tools.lab.terraform_local import stack_leftovers
from worker.aws import client_kwargs

# An apply and a destroy take minutes on a loaded two-core machine: above the suite's 300 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


@pytest.fixture()
def tools_present(tmp_path):
    try:
        terraform.find_terraform()
    except TerraformUnavailable as exc:
        pytest.skip(str(exc))
    terraform.toolchain(tmp_path / "check")  # a missing provider mirror fails, saying where


class Lines:
    """The JSON lines a process prints on stdout, read by a thread so that waits can time out."""

    def __init__(self, process: subprocess.Popen, log: Path) -> None:
        self._log = log
        self._queue: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(process.stdout,), daemon=True).start()

    def _pump(self, stream) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put("")

    def next_json(self, timeout: float) -> dict:
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"nothing within {timeout} s:\n{self._log_tail()}") from None
            if not line:
                raise AssertionError(f"the command exited early:\n{self._log_tail()}")
            if line.startswith("{"):
                return json.loads(line)

    def _log_tail(self) -> str:
        return self._log.read_text()[-3000:] if self._log.exists() else ""


def test_applied_root_feeds_a_worker_and_destroys_to_nothing(tools_present, tmp_path,
                                                             monkeypatch):
    log_path = tmp_path / "local-stack.log"
    log = log_path.open("w")
    command = subprocess.Popen(
        modfleet("local-stack", "--terraform", "--json", "--work-dir", str(tmp_path / "tf")),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = Lines(command, log_path)
    try:
        applied = lines.next_json(timeout=900)
        assert applied["event"] == "applied", applied
        outputs, worker_env = applied["outputs"], applied["worker_env"]
        stack = StackInfo(**applied["stack"])
        monkeypatch.setenv("AWS_CA_BUNDLE", applied["ca_bundle"])
        client = _clients(stack)

        # What Terraform made is there, and the leftover check sees it.
        assert outputs["worker_vpc_id"].startswith("vpc-")
        assert len(outputs["worker_subnet_ids"]) == 2
        policy = json.loads(client("s3").get_bucket_policy(Bucket=stack.bucket)["Policy"])
        assert [s["Sid"] for s in policy["Statement"]] == ["DenyInsecureTransport"]
        present = stack_leftovers(client, {outputs["worker_vpc_id"]})
        for expected in (f"s3 bucket {stack.bucket}", f"sqs queue {stack.queue_url}",
                         f"sqs queue {stack.dlq_url}", f"sns topic {stack.topic_arn}",
                         f"autoscaling group {outputs['autoscaling_group_name']}"):
            assert expected in present, present

        # The worker runs with the root's worker_environment output, as the instance's unit does.
        assert worker_env["MODFLEET_QUEUE_URL"] == stack.queue_url
        assert worker_env["MODFLEET_TOPIC_ARN"] == stack.topic_arn
        clip = write_demo_set(tmp_path / "clips")[0]
        client("s3").upload_file(str(clip), stack.bucket, f"e2e/{clip.stem}.MP4")
        worker = subprocess.run(
            modfleet("worker", "--wait-time-s", "1", "--exit-when-idle", "3", "--no-metrics",
                     *FAST_MODEL),
            cwd=ROOT, env={**_without_modfleet(os.environ), **worker_env}, capture_output=True,
            text=True, timeout=600, check=False)
        assert worker.returncode == 0, worker.stderr[-3000:]
        verdicts = [m.verdict for m in drain_tap(stack, expect_at_least=1, timeout_s=60)]
        assert [(v["video"]["bucket"], v["video"]["key"]) for v in verdicts] == [
            (stack.bucket, f"e2e/{clip.stem}.MP4")]
        assert verdicts[0]["status"] == "ok" and verdicts[0]["region"] == stack.region
        assert queue_depth(stack) == 0 and queue_depth(stack, stack.dlq_url) == 0

        command.send_signal(signal.SIGINT)
        destroyed = lines.next_json(timeout=900)
        assert destroyed == {"event": "destroyed", "leftovers": []}
        assert command.wait(timeout=120) == 0
    finally:
        if command.poll() is None:
            command.send_signal(signal.SIGINT)
            try:
                command.wait(timeout=600)
            except subprocess.TimeoutExpired:
                command.kill()
        log.close()


def _clients(stack: StackInfo):
    def client(service: str):
        return boto3.session.Session().client(
            service, **client_kwargs(stack.region, stack.endpoint_url))
    return client


def _without_modfleet(env) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith("MODFLEET_")}
