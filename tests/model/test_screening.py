import numpy as np
import pytest

from model.api import Batch, Clip
from model.devices import plan_slots
from model.policy import load_policy
from model.registry import create_backend
from model.screening.backend import ScreeningBackend
from model.screening.nudenet import Detection, NudeNetScreener, labels_from_detections


def test_detections_map_into_the_taxonomy_with_timestamps():
    policy = load_policy()
    detections = [Detection(0, "FEMALE_BREAST_EXPOSED", 0.62),
                  Detection(2, "FEMALE_BREAST_EXPOSED", 0.91),
                  Detection(1, "BELLY_EXPOSED", 0.40), Detection(1, "FACE_FEMALE", 0.99),
                  Detection(3, "MALE_GENITALIA_EXPOSED", 0.2)]  # below min_detector_score
    labels = labels_from_detections(policy, detections, (0, 500, 1000, 1500))
    assert [(lab.name, lab.parent_name, lab.taxonomy_level, lab.confidence, lab.timestamps_ms,
             lab.stage)
            for lab in labels] == [
        ("Exposed Belly", "Non-Explicit Nudity", 2, 40.0, (500,), "screening"),
        ("Exposed Female Nipple", "Explicit", 2, 91.0, (0, 1000), "screening")]
    assert policy.decide(labels) == "block"


class BrightIsExplicit(NudeNetScreener):
    """The real screener with the ONNX call replaced: bright frames are 'detected' as explicit."""

    def _detect(self, frame):
        return [{"class": "FEMALE_GENITALIA_EXPOSED", "score": 0.95}] if frame.mean() > 128 else []


@pytest.mark.parametrize("cascade", [False, True])
def test_cascade_skips_the_llm_only_for_decisive_rows(model_config, cascade):
    settings = model_config.with_changes(screening=True, cascade=cascade)
    slot = plan_slots(settings)[0]
    inner = create_backend(settings.with_changes(screening=False, cascade=False), slot)
    backend = ScreeningBackend(settings, slot, inner, screener=BrightIsExplicit(load_policy(), 2))
    backend.load()
    n, s = settings.frames_per_video, settings.frame_size
    bright = Clip(np.full((n, s, s, 3), 250, np.uint8), (0, 1, 2, 3), "bright")
    dark = Clip(np.full((n, s, s, 3), 10, np.uint8), (0, 1, 2, 3), "dark")
    first, second = backend.infer(Batch(rows=(bright, dark)))
    assert first.decision == "block"
    screening = [lab.name for lab in first.labels if lab.stage == "screening"]
    assert screening == ["Exposed Female Genitalia"]
    assert first.labels[0].timestamps_ms == (0, 1, 2, 3)
    assert all(lab.stage == "llm" for lab in second.labels)
    assert (first.reason or "").startswith("cascade") is cascade
    assert backend.stats["llm_rows_skipped"] == int(cascade)
    backend.infer(Batch(rows=(bright, None)))
    assert backend.stats["llm_batches_skipped"] == int(cascade)
    assert inner.stats["batches"] == (1 if cascade else 2)
    if not cascade:  # the bright row's LLM labels were merged after its screening label
        alone = inner.infer(Batch(rows=(bright, None)))[0]
        assert first.labels[1:] == alone.labels
