"""Regression guard for `modfleet bench`: a small run must report every number, and sane ones.

Sane, not fast: speed targets live in BENCHMARKS.md, measured on a quiet machine, never here.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers import ROOT, modfleet

pytestmark = pytest.mark.slow

SMALL_RUN = ["bench", "--videos", "3", "--latency-videos", "2", "--distinct-clips", "2",
             "--corpus-resolution", "320x240", "--corpus-seconds", "2", "--corpus-fps", "15",
             "--keyframe-every-s", "1", "--frames-per-video", "4", "--frame-size", "56",
             "--batch-size", "2", "--batch-wait-ms", "50", "--exit-when-idle-s", "1",
             "--no-shared-media", "--json"]
RATES = ("videos_per_s", "frames_per_s", "baseline_videos_per_s", "model_only_videos_per_s",
         "speedup_vs_baseline", "pipeline_efficiency", "decode_speedup", "latency_p50_s",
         "latency_p95_s")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    cache = tmp_path_factory.mktemp("bench-cache")
    done = subprocess.run(modfleet(*SMALL_RUN, "--cache-dir", str(cache)), cwd=ROOT,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, f"--json must print exactly one line, got {done.stdout!r}"
    return json.loads(lines[0])


def test_every_field_is_reported_and_positive(report):
    for name in RATES:
        assert isinstance(report[name], (int, float)), name
        assert report[name] > 0, f"{name} = {report[name]}"
    assert set(report["stage_ms"]) >= {"queue_wait", "fetch", "decode", "infer", "publish"}
    cpu = report["cpu_s_per_video"]
    assert cpu["worker_total"] > 0 and cpu["decode_sampled"] > 0 and cpu["model"] > 0


def test_the_ratios_agree_with_the_rates(report):
    assert report["pipeline_efficiency"] == pytest.approx(
        report["videos_per_s"] / report["model_only_videos_per_s"], rel=0.01)
    assert report["speedup_vs_baseline"] == pytest.approx(
        report["videos_per_s"] / report["baseline_videos_per_s"], rel=0.01)
    assert report["frames_per_s"] == pytest.approx(4 * report["videos_per_s"], rel=0.01)
    # The pipeline cannot beat the model it feeds by more than measurement noise.
    assert report["pipeline_efficiency"] <= 1.3
    assert report["latency_p50_s"] <= report["latency_p95_s"]


def test_every_video_got_a_verdict_from_a_labelled_synthetic_model(report):
    assert report["videos"] + report["errors"] == 3 and report["errors"] == 0
    assert report["baseline_videos"] == 3
    assert report["latency_videos"] == 2
    assert report["worker_messages"].get("settled") == 3
    assert report["synthetic"] is True and report["model"]["synthetic"] is True
    assert report["settings"]["batch_size"] == 2 and report["settings"]["frames_per_video"] == 4


def test_sampling_decodes_fewer_frames_than_decoding_everything(report):
    decode = report["decode"]
    assert decode["videos"] == 2
    assert 0 < decode["sampled_frames_decoded"] < decode["every_frame_frames_decoded"]
    assert decode["every_frame_frames_decoded"] == 2 * 2 * 15  # two clips of 2 s at 15 fps
