"""A dead replica: the worker stops receiving, releases what it holds, exits 3; nothing waits.

How a replica dies here, with no test hook in the worker: each replica thread writes its batch's
metric record (CloudWatch EMF) to stdout, which the systemd unit appends to a log file.  With
stdout on /dev/full every write fails with ENOSPC, as on a full log disk, and the OSError escapes
the replica's loop after its first batch, as any failure outside the model call would.  The
messages are held with a 300 s visibility timeout, so a second worker that goes idle after 5 s
settles them only if the first one released what it held instead of leaving it to time out.
"""

from __future__ import annotations

import subprocess
import time

import pytest

from tools.lab.harness import (queue_depth, read_verdicts, start, upload_clips, wait_for_log,
                               worker_command)

pytestmark = pytest.mark.slow


def test_a_dead_replica_exits_3_and_a_second_worker_settles_every_message(stack, tmp_path):
    keys = upload_clips(stack, tmp_path, 6)
    held = ["--visibility-timeout-s", "300", "--batch-size", "2", "--max-in-flight", "4"]
    with open("/dev/full", "w") as full_disk:
        first = start(worker_command(stack, *held, "--metrics"), stdout=full_disk)
        seen = wait_for_log(first, "replica died", timeout=180)
        died_at = time.monotonic()
        code = first.wait(timeout=60)
        exited_in = time.monotonic() - died_at
        rest = first.stderr.read()
    assert code == 3, rest[-3000:]
    assert exited_in < 30  # seconds, not the 900 s processing deadline
    assert "ENOSPC" in seen[-1]["error"] or "No space left" in seen[-1]["error"]
    assert "released unfinished message" in rest and "exiting for a restart" in rest

    second = subprocess.run(worker_command(stack, *held, "--exit-when-idle", "5"),
                            capture_output=True, text=True, timeout=240)
    assert second.returncode == 0, second.stderr[-3000:]
    got = read_verdicts(stack, expect_at_least=len(keys))
    assert {v["video"]["key"] for v in got} == keys
    assert all(v["status"] == "ok" for v in got)
    assert queue_depth(stack) == 0 and queue_depth(stack, stack.dlq_url) == 0
