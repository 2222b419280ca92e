"""`modfleet compile`: Neuron artifacts for a Qwen2-VL checkpoint, written once, loaded by workers.

Layout of ``--out`` (the worker's ``--compiled-dir``):

- ``vision.pt``: the vision tower traced with ``torch_neuronx.trace`` for one static batch
  (``batch_size`` clips of ``frames_per_video`` frames of ``frame_size`` pixels).  Qwen2-VL's
  vision forward derives rotary positions and attention windows from ``grid_thw``; tracing bakes
  them in, which is right because every batch has the same grid.
- ``decoder-checkpoint/``: the language model split out as a plain Qwen2 causal-LM checkpoint (the
  format transformers-neuronx loads weights from), with the tokenizer and processor configs.
- ``decoder/``: the decoder compiled by transformers-neuronx (``tp_degree``, fixed ``batch_size``,
  ``n_positions``, ``amp``, INT8 weights through its ``QuantizationConfig``), saved with
  ``model.save()``; workers call ``model.load()`` and never compile.
- ``manifest.json``: shapes, batch, tp degree, quantization, SDK versions, source checkpoint hash.

Sources followed (aws-neuron/transformers-neuronx): ``src/transformers_neuronx/base.py``
(``NeuronModelBase.save/load/to_neuron``), ``src/transformers_neuronx/module.py``
(``PretrainedModel.from_pretrained`` loads safetensors from a directory),
``src/transformers_neuronx/config.py`` (``NeuronConfig``, ``QuantizationConfig(quant_dtype='s8')``,
``output_all_logits``), ``src/transformers_neuronx/llama/model.py`` and the Qwen2 model of pull
request #101 (``src/transformers_neuronx/qwen2/model.py``: ``Qwen2ForSampling(config, n_positions,
batch_size, amp, tp_degree, neuron_config)``, ``preprocess_and_embed``, ``forward(input_ids,
cache_ids, start_ids, last_token_id, input_embeddings)``); torch-neuronx's ``torch_neuronx.trace``
API reference.  Nothing here has run on Neuron hardware.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from model import neuron_sdk
from model.checkpoints import resolve_checkpoint
from model.manifest import Manifest, checkpoint_sha256, sequence_positions
from model.policy import load_policy
from model.preprocess import VideoPreprocessor
from model.prompts import build_generate_prompt, build_score_prompt
import structlog
from model.config import ModelConfig

log = structlog.get_logger(__name__)
AMP = "bf16"  # Inf2 runs bf16 matmuls natively; int8 weights are dequantized to it


def compile_artifacts(config: ModelConfig, out: Path) -> Manifest:
    """Trace the vision tower, compile the decoder, write artifacts and manifest into ``out``."""
    neuron_sdk.require("modfleet compile")
    checkpoint, synthetic = resolve_checkpoint(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model, tokenizer, pre, prompt_tokens = _load_source(checkpoint, config)
    video_tokens = pre.tokens_per_clip(config.frames_per_video, config.frame_size)
    n_positions = sequence_positions(prompt_tokens, config.max_new_tokens)
    _trace_vision(model, pre, config, out / "vision.pt")
    text_dir = _split_decoder(model, checkpoint, out / "decoder-checkpoint")
    _compile_decoder(text_dir, config, n_positions, out / "decoder")
    manifest = Manifest(
        arch=model.config.model_type, model_name=checkpoint.name,
        checkpoint_sha256=checkpoint_sha256(checkpoint), synthetic=synthetic,
        batch_size=config.batch_size, frames_per_video=config.frames_per_video,
        frame_size=config.frame_size, video_tokens=video_tokens, n_positions=n_positions,
        tp_degree=config.tp_degree, quantize=config.quantize, amp=AMP, mode=config.mode,
        max_new_tokens=config.max_new_tokens,
        policy_version=load_policy(config.policy_file).version,
        sdk_versions=neuron_sdk.sdk_versions(),
        files={"vision": "vision.pt", "decoder": "decoder",
               "decoder_checkpoint": "decoder-checkpoint"})
    manifest.write(out)
    log.info("compiled", out=str(out), n_positions=n_positions, tp_degree=config.tp_degree)
    return manifest


def _load_source(checkpoint: Path, config: ModelConfig):
    import torch
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    # torch_dtype, not dtype: the Neuron SDK's environment pins a transformers 4.x.
    model = AutoModelForImageTextToText.from_pretrained(checkpoint, torch_dtype=torch.float32)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    pre = VideoPreprocessor.from_checkpoint(checkpoint)
    policy = load_policy(config.policy_file)
    video_tokens = pre.tokens_per_clip(config.frames_per_video, config.frame_size)
    longest = max(len(build_score_prompt(tokenizer, policy, video_tokens).input_ids),
                  len(build_generate_prompt(tokenizer, policy, video_tokens).input_ids))
    return model, tokenizer, pre, longest


class VisionTower:
    """Factory of the traceable module: pixel patches and a fixed grid in, merged features out."""

    @staticmethod
    def build(visual):
        import torch

        class _Vision(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.visual = visual

            def forward(self, pixel_values, grid_thw):
                out = self.visual(pixel_values, grid_thw=grid_thw)
                # transformers 5 returns a model output; the merged features are what the LLM takes.
                return getattr(out, "pooler_output", out)

        return _Vision().eval()


def _trace_vision(model, pre: VideoPreprocessor, config: ModelConfig, path: Path) -> None:
    import numpy as np
    import torch

    torch_neuronx = neuron_sdk.import_module("torch_neuronx")
    n, s = config.frames_per_video, config.frame_size
    pixels, grid = pre([np.zeros((n, s, s, 3), np.uint8)] * config.batch_size)
    tower = VisionTower.build(model.model.visual)
    traced = torch_neuronx.trace(tower, (pixels, grid),
                                 compiler_args=["--auto-cast", "matmult", "--auto-cast-type", AMP])
    torch.jit.save(traced, str(path))


def _split_decoder(model, checkpoint: Path, out: Path) -> Path:
    """Save the language model as a Qwen2ForCausalLM checkpoint (plus tokenizer, processor)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    text = model.config.text_config.to_dict()
    # transformers-neuronx's Qwen2 uses 1-D rotary positions: M-RoPE sections are dropped here.
    theta = (text.pop("rope_parameters", None) or {}).get("rope_theta", text.get("rope_theta"))
    text.pop("rope_scaling", None)
    text["rope_parameters"] = {"rope_type": "default", "rope_theta": theta or 1000000.0}
    text.update(model_type="qwen2", architectures=["Qwen2ForCausalLM"],
                tie_word_embeddings=model.config.tie_word_embeddings)
    config = Qwen2Config(**{k: v for k, v in text.items() if not k.startswith("_")})
    causal = Qwen2ForCausalLM(config)
    causal.model.load_state_dict(model.model.language_model.state_dict())
    causal.lm_head.load_state_dict(model.lm_head.state_dict())
    causal.save_pretrained(out)
    # transformers 4.x (the SDK's) reads rope_theta at the top level of config.json.
    saved = json.loads((out / "config.json").read_text())
    saved["rope_theta"] = text["rope_parameters"]["rope_theta"]
    (out / "config.json").write_text(json.dumps(saved, indent=2) + "\n")
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja",
                 "chat_template.json", "preprocessor_config.json", "video_preprocessor_config.json",
                 "generation_config.json", "synthetic.json", "special_tokens_map.json"):
        if (checkpoint / name).is_file():
            shutil.copy(checkpoint / name, out / name)
    (out / "vlm_config.json").write_text((checkpoint / "config.json").read_text())
    return out


def decoder_kwargs(config: ModelConfig, n_positions: int, mode: str) -> dict:
    """Arguments of ``Qwen2ForSampling.from_pretrained``, the same at compile and at load."""
    tnx = neuron_sdk.import_module("transformers_neuronx")
    quant = (tnx.QuantizationConfig(quant_dtype="s8", dequant_dtype=AMP)
             if config.quantize == "int8" else None)
    # Score mode reads logits at the checklist positions of the prefill, not only the last one.
    neuron_config = tnx.NeuronConfig(quant=quant, output_all_logits=(mode == "score"))
    return {"batch_size": config.batch_size, "tp_degree": config.tp_degree,
            "n_positions": n_positions, "amp": AMP, "neuron_config": neuron_config}


def decoder_class():
    """transformers-neuronx's Qwen2 decoder; a clear error where the installed build lacks it."""
    try:
        return neuron_sdk.import_module("transformers_neuronx.qwen2.model").Qwen2ForSampling
    except ImportError as exc:
        from model.exceptions import SdkMissing

        raise SdkMissing("transformers-neuronx", "the Qwen2 decoder (transformers_neuronx.qwen2)",
                         "install a transformers-neuronx build that includes the qwen2 module "
                         f"(aws-neuron/transformers-neuronx pull request #101) from "
                         f"{neuron_sdk.NEURON_INDEX}") from exc


def _compile_decoder(text_dir: Path, config: ModelConfig, n_positions: int, out: Path) -> None:
    kwargs = decoder_kwargs(config, n_positions, config.mode)
    decoder = decoder_class().from_pretrained(str(text_dir), **kwargs)
    decoder.to_neuron()  # compiles (no artifacts loaded yet), then loads onto the cores
    out.mkdir(parents=True, exist_ok=True)
    decoder.save(str(out))
