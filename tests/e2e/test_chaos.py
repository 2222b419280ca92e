"""The chaos run, small: uploads and hostile mutants under 10% faults on every call kind the worker
makes, with workers SIGKILLed and SIGTERMed; nothing is lost, every duplicate agrees."""

from __future__ import annotations

import json
import subprocess

import pytest

from tools.lab.harness import ROOT, modfleet

pytestmark = pytest.mark.slow


def test_chaos_run_settles_every_upload_once_by_key_and_dead_letters_only_poison(tmp_path):
    done = subprocess.run(
        modfleet("chaos", "--uploads", "100", "--hostile", "30", "--poison", "3", "--workers", "2",
                 "--fault-rate", "0.1", "--kill-every", "6", "--min-kills", "3", "--seed", "1",
                 "--timeout", "480", "--log-dir", str(tmp_path), "--json"),
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    report = json.loads(done.stdout)
    assert report["problems"] == [] and done.returncode == 0, (report, done.stderr[-3000:])
    assert report["uploads"] == 130 and report["settled"] == 130 and report["lost"] == 0
    assert report["inconsistent"] == 0  # every duplicate: one idempotency key, one decision
    assert report["idempotency_keys"] == 130
    assert report["dlq_poison"] == 3 and report["dlq_not_poison"] == 0
    assert sum(report["left_in_queue"].values()) == 0
    assert report["sigkills"] >= 3 and report["deaths"] == 0
    # Every mutant settled as a verdict (ok or an error code), none as a transient failure.
    hostile = {k: v for k, v in report["outcomes_by_kind"].items()
               if k not in ("clip", "reupload")}
    assert sum(sum(v.values()) for v in hostile.values()) == 30
    assert all("unsettled" not in outcomes for outcomes in hostile.values())
    # Faults reached every call kind the run made often, near the set share.
    busy = {kind: n for kind, n in report["calls"].items() if n >= 30}
    assert {"s3:GetObject", "sqs:ReceiveMessage", "sqs:DeleteMessageBatch",
            "sns:Publish"} <= set(busy)
    for kind, calls in busy.items():
        assert 0 < report["faults_injected"].get(kind, 0) <= 0.25 * calls, (kind, report)
    assert report["faults_by_type"].get("sqs:DeleteMessageBatch partial_batch", 0) > 0
