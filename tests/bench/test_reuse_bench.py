"""Regression guard for `modfleet bench --reuse`: a small run reports both phases, the cache cuts
model calls by at least the exact copies' share, and distinct clips never match."""

from __future__ import annotations

import json
import subprocess

import pytest

from tools.lab.harness import ROOT, modfleet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SMALL_RUN = ["bench", "--reuse", "--videos", "10", "--reuse-mutants", "30",
             "--reuse-resolution", "160x96", "--reuse-seconds", "2", "--frames-per-video", "4",
             "--frame-size", "56", "--batch-size", "2", "--batch-wait-ms", "50",
             "--exit-when-idle-s", "1", "--no-shared-media", "--json"]


def test_the_cache_saves_model_calls_and_distinct_clips_never_match():
    done = subprocess.run(modfleet(*SMALL_RUN), cwd=ROOT, capture_output=True, text=True,
                          timeout=800)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    corpus, off, on = report["corpus"], report["cache_off"], report["cache_on"]
    assert (corpus["originals"], corpus["exact_copies"], corpus["reencodes"]) == (5, 3, 2)
    assert off["videos"] == on["videos"] == 10
    assert (off["cache_hit_share"], off["model_calls_per_video"]) == (0.0, 1.0)
    # Every exact copy of an original already published is a hit; re-encodes may be reused.
    assert on["hits_by_kind"]["exact"] == 3
    assert on["model_calls_per_video"] <= 0.7 and on["cache_hit_share"] >= 0.3
    assert on["model_calls_per_video"] + on["cache_hit_share"] == pytest.approx(1.0)
    for phase in (off, on):
        assert phase["host_cpu_s_per_video"] > 0 and phase["videos_per_s"] > 0
    matches = report["false_matches"]
    assert matches["pairs_checked"] > 0 and matches["false_matches"] == 0
    assert matches["mutants"] == 30 and matches["mutants_decodable"] > 0
