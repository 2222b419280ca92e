"""Regression guard for `modfleet bench`: a small run must report every number, and sane ones.

Sane, not fast: speed targets live in BENCHMARKS.md, measured on a quiet machine, never here.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from tools.lab.harness import ROOT, modfleet

# A run takes about a minute on a quiet 2-core machine, many more on a loaded one.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SMALL_RUN = ["bench", "--videos", "3", "--latency-videos", "2", "--distinct-clips", "2",
             "--corpus-resolution", "320x240", "--corpus-seconds", "2", "--corpus-fps", "15",
             "--keyframe-every-s", "1", "--frames-per-video", "4", "--frame-size", "56",
             "--batch-size", "2", "--batch-wait-ms", "50", "--exit-when-idle-s", "1",
             "--no-shared-media", "--json", "--paced-videos", "8", "--long-clip-seconds", "20",
             "--long-clip-resolution", "320x240", "--paced-slow-batch-ms", "400"]
RATES = ("videos_per_s", "frames_per_s", "baseline_videos_per_s", "model_only_videos_per_s",
         "speedup_vs_baseline", "pipeline_efficiency", "decode_speedup", "latency_p50_s",
         "latency_p95_s")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict:
    cache = tmp_path_factory.mktemp("bench-cache")
    done = subprocess.run(modfleet(*SMALL_RUN, "--cache-dir", str(cache)), cwd=ROOT,
                          capture_output=True, text=True, timeout=840)
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


PACED = ("paced_efficiency", "paced_device_videos_per_s", "paced_videos_per_s",
         "paced_fast_videos_per_s", "host_cpu_s_per_video", "decode_floor_cpu_s_per_video",
         "bytes_fetched_ratio", "get_requests_per_video", "long_clip_bytes_fetched_ratio",
         "long_clip_get_requests_per_video")


def test_the_paced_device_figures_are_reported_and_consistent(report):
    for name in PACED:
        assert isinstance(report[name], (int, float)) and report[name] > 0, name
    assert report["paced_replicas"] == 4 and report["paced_batch_size"] == 4
    assert report["paced_efficiency"] == pytest.approx(
        report["paced_videos_per_s"] / report["paced_device_videos_per_s"], rel=0.01)
    assert report["paced_efficiency"] <= 1.05  # a device cannot be more than busy
    slow = report["paced"]["slow_device"]
    assert slow["videos"] == slow["ok"] == 8 and slow["messages"].get("settled") == 8
    assert slow["batch_ms"] == 400 and report["paced_device_videos_per_s"] == 40  # 16 / 0.4 s
    stages = report["host_cpu_s_per_video_by_stage"]
    assert {"decode", "preprocess", "fetch", "publish_settle", "event_loop"} <= set(stages)
    assert sum(stages.values()) == pytest.approx(report["host_cpu_s_per_video"], rel=0.05)


def test_bytes_and_requests_are_counted_per_object(report):
    files = report["paced"]["fetch_by_file"]
    assert len(files) == 2 and all(f["requests"] >= 1 and f["bytes"] > 0 for f in files)
    # These small clips are under the ranged-read threshold: one GET of the whole object each.
    assert report["get_requests_per_video"] == 1 and report["bytes_fetched_ratio"] == 1
    assert all(f["ranged"] for f in report["paced"]["fetch_by_file_all_ranged"])


def test_skipping_non_reference_frames_is_measured_on_long_gops(report):
    gop = report["long_gop_skip_nonreference"]
    assert "B-frames" in gop["spec"]
    # Frame counts, not times: the worker's sampler decodes fewer frames when it skips them.
    assert 0 < gop["skipping_frames_decoded"] < gop["decoding_all_frames_decoded"]
    assert gop["skipping_cpu_s"] > 0 and gop["decoding_all_cpu_s"] > 0
