"""Screening labels in published verdicts: the real worker, real NudeNet, real sample videos.

The sample videos show no nudity, so NudeNet finds nothing in them; one generated all-white clip
stands in for explicit content through a screener whose ONNX call also reports a detection on
near-white frames.  Everything else is the production path: S3 notifications, the run loop,
replica threads, the cascade wrapper, publishing to SNS, the tap queue.
"""

from __future__ import annotations

import av
import numpy as np
import pytest

from model.api import Batch, Clip
from model.devices import plan_slots
from model.policy import load_policy
from model.registry import create_backend
from model.screening.backend import ScreeningBackend
from model.screening.nudenet import NudeNetScreener
from model.torch_backend import TorchBackend
from tools.lab.harness import read_verdicts, serve_until_idle, upload
from worker import verdict as verdicts
from worker.decode import DecodeLimits, sample_frames
from worker.replicas import ReplicaPool
from worker.settings import Settings

pytestmark = pytest.mark.slow


class NudeNetPlusWhite(NudeNetScreener):
    """Real NudeNet on every frame, plus a stand-in detection on near-white frames."""

    def _detect(self, frame):
        hits = super()._detect(frame)
        if frame.mean() > 200:
            hits.append({"class": "FEMALE_GENITALIA_EXPOSED", "score": 0.97, "box": [0, 0, 1, 1]})
        return hits


def _white_clip(path):
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=5)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for index in range(5):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 255, np.uint8), format="rgb24")
            frame.pts = index
            container.mux(stream.encode(frame.reformat(format="yuv420p")))
        container.mux(stream.encode(None))
    return path


def test_screening_labels_reach_the_verdict(stack, shared_media, model_cache, tmp_path):
    keys = {}
    for path in sorted(shared_media.iterdir()):
        upload(stack, path, f"real/{path.name}")
        keys[f"real/{path.name}"] = path.name
    upload(stack, _white_clip(tmp_path / "white.mp4"), "white.mp4")
    settings = Settings().for_stack(stack).with_changes(
        wait_time_s=1, exit_when_idle_s=3, frames_per_video=4,
        frame_size=56, batch_size=2, batch_wait_ms=300, cache_dir=model_cache, screening=True,
        cascade=True, metrics=False)
    screeners = []

    def factory(s, slot):
        screener = NudeNetPlusWhite(load_policy(), threads=2)
        screeners.append(screener)
        inner = TorchBackend(s.with_changes(screening=False, cascade=False), slot)
        return ScreeningBackend(s, slot, inner, screener=screener)

    stats = serve_until_idle(settings, ReplicaPool(settings, factory=factory))
    assert stats.messages["settled"] == 5
    got = {v["video"]["key"]: v for v in read_verdicts(stack, expect_at_least=5)}
    assert set(got) == {*keys, "white.mp4"}
    for verdict in got.values():
        verdict.pop("_attributes")
        verdicts.validate(verdict)
        assert verdict["status"] == "ok"
        assert verdict["model"]["version"].endswith("+screening-nudenet")
    white = got["white.mp4"]
    screening = [label for label in white["labels"] if label["stage"] == "screening"]
    assert [(lab["name"], lab["parent_name"], lab["taxonomy_level"]) for lab in screening] == [
        ("Exposed Female Genitalia", "Explicit", 2)]
    assert screening[0]["confidence"] == 97.0 and len(screening[0]["timestamps_ms"]) == 4
    assert white["decision"] == "block"
    # The cascade skipped the LLM for the white clip: its only labels are the screening ones.
    assert all(label["stage"] == "screening" for label in white["labels"])
    for key in keys:
        assert all(label["stage"] == "llm" for label in got[key]["labels"])
    # Every sampled frame of every video went through the detector (warm-up frames aside).
    assert sum(s.frames_screened for s in screeners) >= 5 * settings.frames_per_video


def test_real_nudenet_screens_every_frame_of_the_real_sample_videos(shared_media, model_config):
    settings = model_config.with_changes(screening=True, batch_size=4)
    backend = create_backend(settings, plan_slots(settings)[0])
    assert isinstance(backend, ScreeningBackend)
    backend.load()
    backend.warm_up()
    limits = DecodeLimits(settings.frames_per_video, settings.frame_size, 3600.0, 10**8)
    clips = [Clip(v.frames, v.timestamps_ms, path.name) for path in sorted(shared_media.iterdir())
             for v in [sample_frames(path, limits)]]
    assert len(clips) == 4
    before = backend.screener.frames_screened
    outputs = backend.infer(Batch(rows=tuple(clips)))
    llm = backend.inner.infer(Batch(rows=tuple(clips)))
    assert backend.screener.frames_screened - before == 4 * settings.frames_per_video
    for out, plain in zip(outputs, llm):
        # NASA footage and test clips show no nudity: the detector adds nothing, the LLM decides.
        assert [lab for lab in out.labels if lab.stage == "screening"] == []
        assert out.labels == plain.labels and out.decision == plain.decision
    assert backend.identity.version.endswith("+screening-nudenet")
    backend.shutdown()
