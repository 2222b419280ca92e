"""`modfleet demo` as a person reads it: the counts it prints match what it did, and the worker's
summary is a sentence, not a Python dict."""

from __future__ import annotations

import collections
import subprocess

import pytest

from tools.lab.harness import FAST_MODEL, ROOT, modfleet
from tools.lab.sample_videos import VideoSpec, write_video
from tools.ops.commands.demo import outcome_summary

pytestmark = pytest.mark.slow


def test_demo_counts_match_and_its_summary_reads_as_a_sentence(tmp_path):
    clip = write_video(VideoSpec("one.mp4", seconds=1), tmp_path)
    result = subprocess.run(modfleet("demo", "--no-samples", str(clip), *FAST_MODEL), cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = " ".join(result.stdout.split())  # the table wraps long lines
    assert "Uploaded 1 object to s3://" in out
    assert "2 verdicts:" in out  # the upload, and the direct job for a missing object
    assert "1 message(s) in the dead-letter queue" in out
    assert "worker: 2 settled, 1 S3 test event acknowledged, 1 dead-lettered." in out
    assert "Counter(" not in out and "{'" not in out


def test_outcome_summary_names_every_count():
    counts = collections.Counter(settled=10, dead_lettered=1, retried=0, something_new=2)
    assert outcome_summary(counts) == "10 settled, 1 dead-lettered, 2 something new"
    assert outcome_summary(collections.Counter()) == "no messages"
