"""The Neuron path without the SDK: errors, manifests, core ranges, the weight split."""

import json

import numpy as np
import pytest
import torch

from model import neuron_sdk
from model.checkpoints import synthetic_path
from model.compile import VisionTower, _split_decoder
from model.devices import plan_slots
from model.exceptions import ManifestMismatch, SdkMissing
from model.manifest import (
    Manifest,
    check_manifest,
    checkpoint_sha256,
    read_manifest,
    sequence_positions,
)
from model.neuron_backend import NeuronBackend, visible_cores
from model.preprocess import VideoPreprocessor
from tools.cli import main
from model.config import ModelConfig

without_sdk = pytest.mark.skipif(not neuron_sdk.missing(),
                                 reason="the Neuron SDK is installed here")


def _manifest(**changes) -> Manifest:
    fields = dict(arch="qwen2_vl", model_name="m", checkpoint_sha256="sha256:00", synthetic=True,
                  batch_size=4, frames_per_video=8, frame_size=224, video_tokens=256,
                  n_positions=512, tp_degree=2, quantize="int8", amp="bf16", mode="score",
                  max_new_tokens=48, policy_version="2026-11")
    return Manifest(**{**fields, **changes})


@without_sdk
def test_compile_without_sdk_names_the_package_and_index(tmp_path, capsys):
    assert main(["compile", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "torch-neuronx" in err and neuron_sdk.NEURON_INDEX in err
    assert not (tmp_path / "out").exists()


@without_sdk
def test_neuron_backend_refuses_to_load_without_sdk(tmp_path):
    settings = ModelConfig(backend="neuron", compiled_dir=tmp_path, tp_degree=1)
    backend = NeuronBackend(settings, plan_slots(settings, neuron_cores=lambda: 2)[0])
    with pytest.raises(SdkMissing, match=r"pip.repos.neuron.amazonaws.com"):
        backend.load()


def test_neuron_backend_refuses_a_manifest_for_other_settings(tmp_path, monkeypatch):
    # As if the SDK were installed: the manifest check comes before any Neuron call.
    monkeypatch.setattr(neuron_sdk, "missing", lambda: [])
    _manifest(batch_size=8, tp_degree=4).write(tmp_path)
    settings = ModelConfig(backend="neuron", compiled_dir=tmp_path, batch_size=4, tp_degree=2,
                        quantize="int8")
    backend = NeuronBackend(settings, plan_slots(settings, neuron_cores=lambda: 2)[0])
    with pytest.raises(ManifestMismatch, match=r"batch-size: compiled 8, worker has 4.*tp-degree"):
        backend.load()


def test_manifest_round_trip_and_checks(tmp_path):
    manifest = _manifest()
    manifest.write(tmp_path)
    assert read_manifest(tmp_path) == manifest
    settings = ModelConfig(backend="neuron", compiled_dir=tmp_path, batch_size=4, tp_degree=2,
                        quantize="int8")
    check_manifest(manifest, settings, prompt_tokens=400)
    with pytest.raises(ManifestMismatch, match="exceeds the compiled n_positions 512"):
        check_manifest(manifest, settings, prompt_tokens=480)
    with pytest.raises(ManifestMismatch, match="quantize: compiled 'int8', worker has 'none'"):
        check_manifest(manifest, settings.with_changes(quantize="none"))
    with pytest.raises(ManifestMismatch, match="max-new-tokens"):
        check_manifest(manifest, settings.with_changes(mode="generate", max_new_tokens=64))
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ManifestMismatch, match="format"):
        read_manifest(tmp_path)
    with pytest.raises(ManifestMismatch, match="modfleet compile"):
        read_manifest(tmp_path / "missing")


def test_replicas_get_their_core_ranges_as_runtime_settings(tmp_path):
    settings = ModelConfig(backend="neuron", compiled_dir=tmp_path, replicas=3, tp_degree=2)
    slots = plan_slots(settings, neuron_cores=lambda: 12)
    assert [visible_cores(s) for s in slots] == ["0-1", "2-3", "4-5"]
    single = plan_slots(settings.with_changes(tp_degree=1), neuron_cores=lambda: 12)
    assert [visible_cores(s) for s in single] == ["0", "1", "2"]
    assert sequence_positions(300, 48) == 384


def test_checkpoint_hash_covers_contents(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"a")
    before = checkpoint_sha256(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"b")
    assert checkpoint_sha256(tmp_path) != before


def test_decoder_split_keeps_the_language_model_exactly(model_cache, tmp_path):
    from transformers import AutoModelForCausalLM, AutoModelForImageTextToText

    source = synthetic_path(model_cache, "tiny")
    vlm = AutoModelForImageTextToText.from_pretrained(source).eval()
    text_dir = _split_decoder(vlm, source, tmp_path / "decoder-checkpoint")
    assert json.loads((text_dir / "config.json").read_text())["rope_theta"] == 1000000.0
    causal = AutoModelForCausalLM.from_pretrained(text_dir).eval()
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    with torch.no_grad():
        # Text-only positions are the same in all three M-RoPE sections, so 1-D RoPE matches.
        assert torch.allclose(causal(ids).logits, vlm(input_ids=ids).logits, atol=1e-5)
    assert (text_dir / "tokenizer.json").is_file() and (text_dir / "synthetic.json").is_file()


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_vision_tower_traces_for_a_fixed_grid(model_cache):
    # torch.jit.trace has the tracing semantics torch_neuronx.trace builds on.
    source = synthetic_path(model_cache, "tiny")
    from transformers import AutoModelForImageTextToText

    vlm = AutoModelForImageTextToText.from_pretrained(source).eval()
    pre = VideoPreprocessor.from_checkpoint(source)
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 56, 56, 3), dtype=np.uint8)
    pixels, grid = pre(list(frames))
    tower = VisionTower.build(vlm.model.visual)
    with torch.no_grad():
        traced = torch.jit.trace(tower, (pixels, grid), check_trace=False)
        other, _ = pre(list(frames[::-1]))
        assert torch.allclose(traced(other, grid), tower(other, grid))
        assert traced(other, grid).shape == (2 * pre.tokens_per_clip(4, 56), 64)
