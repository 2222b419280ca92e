"""Crashes, drains and outages: every message still ends as a verdict, a retry or a dead letter."""

from __future__ import annotations

import collections
import signal
import subprocess
import time

import pytest

from tools.lab.chaos.fault_proxy import FaultProxy
from tools.lab.harness import (queue_depth, read_verdicts, start, upload_clips, wait_for_log,
                               worker_command)

pytestmark = pytest.mark.slow


def test_sigkill_mid_batch_then_restart_settles_every_message_once(stack, tmp_path):
    keys = upload_clips(stack, tmp_path, 12)
    # Short visibility so the killed worker's messages come back quickly for the second one.
    fast = ["--visibility-timeout-s", "6", "--heartbeat-interval-s", "2", "--batch-size", "4",
            "--batch-wait-ms", "400"]
    first = start(worker_command(stack, *fast))
    wait_for_log(first, "verdict")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    survivors = queue_depth(stack)
    assert survivors > 0, "the kill should have left messages unsettled"

    second = subprocess.run(worker_command(stack, *fast, "--exit-when-idle", "10"),
                            capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:]
    got = read_verdicts(stack, expect_at_least=len(keys))
    per_key = collections.defaultdict(set)
    for verdict in got:
        assert verdict["status"] == "ok"
        per_key[verdict["video"]["key"]].add(verdict["idempotency_key"])
    assert set(per_key) == keys                      # every message settled ...
    assert all(len(ids) == 1 for ids in per_key.values())  # ... duplicates share one key
    assert len({next(iter(ids)) for ids in per_key.values()}) == len(keys)
    assert queue_depth(stack) == 0 and queue_depth(stack, stack.dlq_url) == 0


def test_sigterm_drains_within_the_deadline_and_exits_zero(stack, tmp_path):
    keys = upload_clips(stack, tmp_path, 10)
    deadline_s = 15
    worker = start(worker_command(stack, "--shutdown-deadline-s", str(deadline_s),
                                  "--batch-size", "2"))
    wait_for_log(worker, "verdict")
    signalled = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=deadline_s + 25) == 0
    assert time.monotonic() - signalled < deadline_s + 20  # + the long poll in progress
    logged = worker.stderr.read()
    assert "stop requested; draining" in logged and "worker stopped" in logged

    # Whatever it did not finish was released, not lost: a second worker settles the rest.
    rest = subprocess.run(worker_command(stack, "--exit-when-idle", "4"), capture_output=True,
                          text=True, timeout=240)
    assert rest.returncode == 0, rest.stderr[-3000:]
    got = read_verdicts(stack, expect_at_least=len(keys))
    assert {v["video"]["key"] for v in got} == keys
    assert queue_depth(stack) == 0


def test_sns_outage_deletes_nothing_unpublished_and_recovers(stack, tmp_path):
    keys = upload_clips(stack, tmp_path, 6)
    with FaultProxy(stack.endpoint_url) as proxy:
        proxy.outage("sns:Publish")
        worker = start(worker_command(stack, "--publish-retry-s", "1", "--exit-when-idle", "4",
                                      endpoint_url=proxy.url))
        # Start-up (torch, the model) is not what is timed: on a loaded machine it took minutes.
        wait_for_log(worker, "worker polling", timeout=600)
        # The worker's own retry, after botocore's have all been refused: restoring SNS before
        # that (on a count of refusals) left it to chance whether the worker ever saw a failure.
        wait_for_log(worker, "publish failed; retrying", timeout=120)
        assert refused(proxy) >= 4, "fewer refusals than botocore's 4 attempts"
        # Mid-outage: nothing published, so nothing may have been deleted.
        assert read_verdicts(stack, timeout=2) == []
        # (+ 1: the bucket's s3:TestEvent, which needs no publish and may be acknowledged already)
        assert queue_depth(stack) in (len(keys), len(keys) + 1)
        proxy.restore("sns:Publish")
        assert worker.wait(timeout=180) == 0
    got = read_verdicts(stack, expect_at_least=len(keys))
    assert {v["video"]["key"] for v in got} == keys
    assert queue_depth(stack) == 0 and queue_depth(stack, stack.dlq_url) == 0


def refused(proxy: FaultProxy) -> int:
    return proxy.injected_by_kind().get("sns:Publish", 0)
