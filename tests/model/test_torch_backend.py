import numpy as np
import pytest

from model.api import Backend, Batch, Clip
from model.devices import plan_slots
from model.exceptions import RejectClip
from model.registry import create_backend
from model.torch_backend import TorchBackend


@pytest.fixture()
def loaded(model_config):
    backend = create_backend(model_config, plan_slots(model_config)[0])
    backend.load()
    backend.warm_up()
    yield backend
    backend.shutdown()


def test_registry_builds_the_torch_backend(model_config):
    backend = create_backend(model_config, plan_slots(model_config)[0])
    assert isinstance(backend, TorchBackend) and isinstance(backend, Backend)
    with pytest.raises(RuntimeError, match="after load"):
        backend.identity


def test_identity_says_synthetic_with_policy_version(loaded):
    identity = loaded.identity
    assert identity.synthetic is True and identity.backend == "torch"
    assert identity.name == "synthetic-tiny-qwen2-vl" and identity.quantization == "none"
    assert identity.policy_version == loaded.policy.version


def test_score_mode_outputs_per_real_row_and_none_for_padding(loaded, make_clip):
    clip = make_clip(1)
    outputs = loaded.infer(Batch(rows=(clip, None)))
    assert outputs[1] is None
    out = outputs[0]
    assert out.decision in {"allow", "review", "block"} and out.tokens_generated == 0
    assert out.decision == loaded.policy.decide(out.labels)
    for label in out.labels:
        assert 0 <= label.confidence <= 100 and label.stage == "llm"
        assert label.timestamps_ms == clip.timestamps_ms
        assert label.confidence >= loaded.policy.category(label.name).review


def test_scores_depend_on_the_video_not_on_batch_neighbours(loaded, make_clip):
    a, b = make_clip(1), make_clip(2)
    alone = loaded.infer(Batch(rows=(a, None)))[0]
    beside_b = loaded.infer(Batch(rows=(b, a)))[1]
    assert beside_b.decision == alone.decision
    assert [(lab.name, pytest.approx(lab.confidence, abs=0.02)) for lab in beside_b.labels] == [
        (lab.name, lab.confidence) for lab in alone.labels]
    black = Clip(np.zeros_like(a.frames), a.timestamps_ms, "black")
    assert loaded.infer(Batch(rows=(black, None)))[0] != alone


def test_wrong_frame_shape_is_rejected_with_its_ref(loaded, make_clip):
    small = make_clip(3, frames=2)
    with pytest.raises(RejectClip) as info:
        loaded.infer(Batch(rows=(small, None)))
    assert info.value.ref == small.ref and "frames must be uint8" in str(info.value)
