"""The Neuron path without the SDK: refusals, errors, manifests, pins, core ranges, the weight split
and the traced video encoder, on the LLaVA-NeXT-Video family (transformers 4.47 and 5.x)."""

import configparser
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from model import neuron_sdk
from model.architectures import load_vlm
from model.compile import VideoEncoder, split_decoder
from model.config import ModelConfig
from model.devices import plan_slots, visible_neuron_cores
from model.exceptions import ManifestMismatch, SdkMissing, UnsupportedOnNeuron
from model.manifest import (
    Manifest,
    check_files,
    check_manifest,
    check_versions,
    checkpoint_sha256,
    prompt_bucket,
    read_manifest,
    sequence_positions,
)
from model.neuron_backend import NeuronBackend, visible_cores
from model.preprocess import LlavaVideoPreprocessor

ROOT = Path(__file__).resolve().parents[2]
without_sdk = pytest.mark.skipif(not neuron_sdk.missing(),
                                 reason="the Neuron SDK is installed here")


def _manifest(**changes) -> Manifest:
    fields = dict(arch="llava_next_video", model_name="m", model_version="v",
                  checkpoint_sha256="sha256:00", synthetic=True, batch_size=4, frames_per_video=8,
                  frame_size=224, video_tokens=256, prompt_tokens=400, n_positions=512,
                  context_length_estimate=512, tp_degree=2, quantize="int8", amp="bf16",
                  mode="score", max_new_tokens=48, policy_version="2026-11",
                  decoder_class="transformers_neuronx.LlamaForSampling", sdk_release="2.25.0",
                  sdk_versions=dict(neuron_sdk.PINNED),
                  files={"vision": "vision.pt", "decoder": "decoder",
                         "decoder_checkpoint": "decoder-checkpoint"},
                  graphs=["context-512x4.neff"])
    return Manifest(**{**fields, **changes})


def test_neuron_backend_refuses_qwen_artifacts_and_checkpoints(tmp_path, monkeypatch):
    monkeypatch.setattr(neuron_sdk, "missing", lambda: [])
    _manifest(arch="qwen2_vl").write(tmp_path)
    config = ModelConfig(backend="neuron", compiled_dir=tmp_path, batch_size=4, tp_degree=2,
                         quantize="int8", frames_per_video=8, frame_size=224)
    backend = NeuronBackend(config, plan_slots(config, neuron_cores=lambda: 2)[0])
    with pytest.raises(UnsupportedOnNeuron, match="no Qwen2 decoder"):
        backend.load()


def test_versions_differing_from_the_manifest_are_named(tmp_path):
    manifest = _manifest()
    check_versions(manifest, dict(neuron_sdk.PINNED))
    drifted = {**neuron_sdk.PINNED, "transformers-neuronx": "0.13.1315"}
    with pytest.raises(ManifestMismatch, match=r"transformers-neuronx: compiled with 0\.13\.1216, "
                                               r"installed 0\.13\.1315"):
        check_versions(manifest, drifted)
    with pytest.raises(ManifestMismatch, match=r"decoder/context-512x4\.neff"):
        check_files(manifest, tmp_path)


def test_neuron_extra_pins_exactly_what_the_manifest_checks():
    from packaging.requirements import Requirement

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    extra = [Requirement(line) for line in cfg["options.extras_require"]["neuron"].splitlines()
             if line.strip() and not line.strip().startswith("#")]
    assert all(len(r.specifier) == 1 and next(iter(r.specifier)).operator == "=="
               for r in extra), [str(r) for r in extra]
    assert {r.name: next(iter(r.specifier)).version for r in extra} == neuron_sdk.PINNED
    base = [Requirement(line) for line in cfg["options"]["install_requires"].splitlines()
            if line.strip() and not line.strip().startswith("#")]
    transformers = next(r for r in base if r.name == "transformers")
    assert transformers.specifier.contains(neuron_sdk.PINNED["transformers"])


def test_no_deprecated_core_placement_name_remains():
    sources = [p for d in ("model", "worker", "tools") for p in (ROOT / d).rglob("*.py")]
    assert not [p for p in sources if re.search(r"experimental\.neuron_cores_context",
                                                p.read_text())]


def test_runtime_core_setting_splits_into_replica_ranges(tmp_path):
    assert visible_neuron_cores({"NEURON_RT_VISIBLE_CORES": "4-7"}, tmp_path) == (4, 4)
    assert visible_neuron_cores({}, tmp_path) == (0, 0)
    assert prompt_bucket(121, 256) == 128 and prompt_bucket(300, 384) == 384


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
                           quantize="int8", frames_per_video=8, frame_size=224)
    backend = NeuronBackend(settings, plan_slots(settings, neuron_cores=lambda: 2)[0])
    with pytest.raises(ManifestMismatch, match=r"batch-size: compiled 8, worker has 4.*tp-degree"):
        backend.load()


def test_manifest_round_trip_and_checks(tmp_path):
    manifest = _manifest()
    manifest.write(tmp_path)
    assert read_manifest(tmp_path) == manifest
    settings = ModelConfig(backend="neuron", compiled_dir=tmp_path, batch_size=4, tp_degree=2,
                           quantize="int8", frames_per_video=8, frame_size=224)
    check_manifest(manifest, settings, prompt_tokens=400)
    with pytest.raises(ManifestMismatch, match="exceeds the compiled n_positions 512"):
        check_manifest(manifest, settings, prompt_tokens=520)
    check_manifest(manifest, settings, prompt_tokens=480)  # score mode generates nothing
    with pytest.raises(ManifestMismatch, match=r"prompt 480 \+ 48 new tokens exceeds the "
                                               r"compiled n_positions 512"):
        check_manifest(manifest.__class__(**{**manifest.__dict__, "mode": "generate"}),
                       settings.with_changes(mode="generate"), prompt_tokens=480)
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


def test_decoder_split_keeps_the_language_model_exactly(llava_checkpoint, tmp_path):
    from transformers import AutoModelForCausalLM

    vlm = load_vlm(llava_checkpoint)
    text_dir = split_decoder(vlm, llava_checkpoint, tmp_path / "decoder-checkpoint", 256)
    config = json.loads((text_dir / "config.json").read_text())
    assert config["model_type"] == "llama" and config["rope_theta"] == 10000.0
    causal = AutoModelForCausalLM.from_pretrained(text_dir).eval()
    ids = torch.tensor([[5, 17, 42, 99, 3]])
    with torch.no_grad():
        assert torch.allclose(causal(ids).logits, vlm(input_ids=ids).logits, atol=1e-5)
    assert (text_dir / "tokenizer.json").is_file() and (text_dir / "synthetic.json").is_file()
    assert LlavaVideoPreprocessor.from_checkpoint(text_dir) == \
        LlavaVideoPreprocessor.from_checkpoint(llava_checkpoint)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_video_encoder_traces_and_matches_the_model(llava_checkpoint):
    # torch.jit.trace has the tracing semantics torch_neuronx.trace builds on.
    vlm = load_vlm(llava_checkpoint)
    pre = LlavaVideoPreprocessor.from_checkpoint(llava_checkpoint)
    frames = np.random.default_rng(0).integers(0, 256, (2, 4, 28, 28, 3), dtype=np.uint8)
    pixels = pre.model_kwargs(list(frames))["pixel_values_videos"]
    assert pixels.shape == (2, 4, 3, 56, 56)  # 28-pixel frames resized to the tower's 56
    encoder = VideoEncoder.build(vlm)
    with torch.no_grad():
        traced = torch.jit.trace(encoder, pixels, check_trace=False)
        other = pre.model_kwargs(list(frames[::-1]))["pixel_values_videos"]
        assert torch.allclose(traced(other), encoder(other))
        assert traced(other).shape == (2, pre.tokens_per_clip(4, 28), 64)
        # The same features the model splices in itself: get_video_features (on the top-level
        # model in 4.47, on .model in 5.x).
        owner = vlm.model if hasattr(getattr(vlm, "model", None), "get_video_features") else vlm
        reference = owner.get_video_features(
            other, vision_feature_layer=vlm.config.vision_feature_layer,
            vision_feature_select_strategy=vlm.config.vision_feature_select_strategy)
        reference = getattr(reference, "pooler_output", reference)
        if isinstance(reference, tuple):  # 4.47: one (frames, tokens, hidden) tensor per clip
            reference = torch.cat(reference)
        assert torch.allclose(traced(other).flatten(0, 1), reference.reshape(-1, 64), atol=1e-5)
