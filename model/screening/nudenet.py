"""NudeNet over frames, in a thread pool: threads over cores for a model that is not the LLM.

NudeNet (PyPI ``nudenet``, AGPL-3.0, hence the optional ``screening`` extra) ships its ONNX
detector inside the wheel.  One ONNX Runtime session is shared by the pool's threads: ``run``
releases the GIL and is safe to call concurrently, and each call is held to one intra-op thread so
the pool's width, not ONNX Runtime's own pool, decides how many cores are busy.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.api import Clip, Label
from model.exceptions import SdkMissing
from model.policy import Policy


@dataclass(frozen=True)
class Detection:
    """One detector hit on one frame."""

    frame: int
    cls: str
    score: float


class NudeNetScreener:
    """``screen(clips)``: per clip, the taxonomy labels NudeNet's detections map to."""

    def __init__(self, policy: Policy, threads: int) -> None:
        self.policy = policy
        self.threads = max(1, threads)
        self.frames_screened = 0
        self._detector = None
        self._pool: ThreadPoolExecutor | None = None

    def load(self) -> None:
        """Open the packaged ONNX model; raise SdkMissing when nudenet is not installed."""
        try:
            import nudenet
            import onnxruntime
            from nudenet import NudeDetector
        except ImportError as exc:
            raise SdkMissing("nudenet", "--screening (NudeNet, AGPL-3.0)",
                             "pip install 'modfleet[screening]'") from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        detector = NudeDetector()
        # The same packaged weights NudeDetector opens (nudenet/nudenet.py), under our options.
        model_path = str(Path(nudenet.__file__).parent / "320n.onnx")
        detector.onnx_session = onnxruntime.InferenceSession(
            model_path, sess_options=options, providers=["CPUExecutionProvider"])
        self._detector = detector
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="screening")

    def screen(self, clips: Sequence[Clip]) -> list[tuple[Label, ...]]:
        """Labels per clip (stage "screening"), every frame of every clip in one pool pass."""
        jobs = [(c, f) for c, clip in enumerate(clips) for f in range(len(clip.frames))]
        results = list(self._pool.map(lambda job: self._detect(clips[job[0]].frames[job[1]]), jobs))
        self.frames_screened += len(jobs)
        per_clip: list[list[Detection]] = [[] for _ in clips]
        for (c, f), hits in zip(jobs, results):
            per_clip[c].extend(Detection(f, h["class"], float(h["score"])) for h in hits)
        return [labels_from_detections(self.policy, dets, clip.timestamps_ms)
                for dets, clip in zip(per_clip, clips)]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._detector = None

    def _detect(self, frame: np.ndarray) -> list[dict]:
        # NudeNet expects OpenCV's BGR order; frames arrive RGB.
        return self._detector.detect(np.ascontiguousarray(frame[..., ::-1]))


def labels_from_detections(policy: Policy, detections: Sequence[Detection],
                           timestamps_ms: Sequence[int]) -> tuple[Label, ...]:
    """One label per mapped taxonomy name: best score as confidence, the frames it was seen on."""
    best: dict[str, float] = {}
    seen: dict[str, set[int]] = {}
    parents: dict[str, str] = {}
    for det in detections:
        target = policy.screening_classes.get(det.cls)
        if target is None or det.score < policy.min_detector_score:
            continue
        best[target.name] = max(best.get(target.name, 0.0), det.score)
        seen.setdefault(target.name, set()).add(timestamps_ms[det.frame])
        parents[target.name] = target.parent
    return tuple(
        Label(name=name, parent_name=parents[name], taxonomy_level=2 if parents[name] else 1,
              confidence=round(100 * best[name], 2), timestamps_ms=tuple(sorted(seen[name])),
              stage="screening")
        for name in sorted(best))
