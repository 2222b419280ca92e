import json
import threading

import pytest

from model.checkpoints import resolve_checkpoint, synthetic_path
from model.exceptions import CheckpointUnusable
from model.synthetic import SPECIAL_TOKENS, build_checkpoint
from model.config import ModelConfig


def test_tiny_checkpoint_loads_with_auto_classes_like_a_downloaded_one(model_cache):
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoTokenizer

    path = synthetic_path(model_cache, "tiny")
    config = AutoConfig.from_pretrained(path)
    assert config.model_type == "qwen2_vl"
    assert config.architectures == ["Qwen2VLForConditionalGeneration"]
    tokenizer = AutoTokenizer.from_pretrained(path)
    for token in SPECIAL_TOKENS:
        assert tokenizer.convert_tokens_to_ids(token) != tokenizer.unk_token_id
    assert config.video_token_id == tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert len(tokenizer.encode(" yes", add_special_tokens=False)) == 1
    model = AutoModelForImageTextToText.from_pretrained(path)
    assert type(model).__name__ == "Qwen2VLForConditionalGeneration"
    assert (path / "model.safetensors").is_file()
    assert json.loads((path / "synthetic.json").read_text())["synthetic"] is True
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "hi"}]}],
        tokenize=False, add_generation_prompt=True)
    assert "<|vision_start|><|video_pad|><|vision_end|>hi<|im_end|>" in text


def test_resolve_prefers_the_model_dir_and_checks_it(tmp_path, model_cache):
    real = synthetic_path(model_cache, "tiny")
    assert resolve_checkpoint(ModelConfig(model_dir=real)) == (real, True)
    with pytest.raises(CheckpointUnusable, match="no config.json"):
        resolve_checkpoint(ModelConfig(model_dir=tmp_path))


def test_racing_builders_leave_one_complete_checkpoint(tmp_path):
    # LLaVA-NeXT-Video: the family that builds under both transformers 4.47 and 5.x.
    settings = ModelConfig(cache_dir=tmp_path, synthetic_arch="llava_next_video")
    results, errors = [], []

    def resolve():
        try:
            results.append(resolve_checkpoint(settings))
        except Exception as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=resolve) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1 and results[0][1] is True
    leftovers = [p.name for p in (tmp_path / "synthetic").iterdir()]
    assert leftovers == [results[0][0].name]  # the scratch directories were removed


def _transformers_major() -> int:
    import transformers

    return int(transformers.__version__.split(".")[0])


@pytest.mark.skipif(_transformers_major() < 5, reason="Qwen2-VL runs on transformers 5.x; this "
                    "environment pins the Neuron SDK's 4.47")
def test_qwen2_5_vl_checkpoint_runs_through_the_torch_backend(tmp_path, make_clip):
    from model.api import Batch
    from model.devices import plan_slots
    from model.registry import create_backend

    path = tmp_path / "qwen2_5_vl"
    build_checkpoint(path, "tiny", "qwen2_5_vl")
    settings = ModelConfig(model_dir=path, frames_per_video=4, frame_size=56, batch_size=2)
    backend = create_backend(settings, plan_slots(settings)[0])
    backend.load()
    assert type(backend.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert backend.identity.name == "synthetic-tiny-qwen2-5-vl" and backend.identity.synthetic
    out, pad = backend.infer(Batch(rows=(make_clip(1), None)))
    assert pad is None and out.decision == backend.policy.decide(out.labels)
