"""`modfleet compile`: Neuron artifacts for a LLaVA-NeXT-Video checkpoint, written once, loaded
by workers.

Layout of ``--out`` (the worker's ``--compiled-dir``):

- ``vision.pt``: the video encoder (vision tower, average pooler, projector) traced with
  ``torch_neuronx.trace`` for one static batch (``batch_size`` clips of ``frames_per_video``
  frames), as aws-samples/llava-on-inf2 traces LLaVA's CLIP tower (compile/compile.py at c29d4c5).
- ``decoder-checkpoint/``: the language model split out as a plain ``LlamaForCausalLM`` checkpoint
  (the format transformers-neuronx loads weights from), with the tokenizer and processor configs.
- ``decoder/``: the decoder compiled by transformers-neuronx's ``LlamaForSampling`` (``tp_degree``,
  fixed ``batch_size``, ``n_positions``, ``context_length_estimate`` at the prompt's bucket,
  ``amp``, INT8 weights through ``QuantizationConfig``), saved with ``save()``; workers
  ``load()`` it.
- ``manifest.json``: shapes, buckets, batch, tp degree, quantization, the exact SDK versions, the
  source checkpoint's hash, and the files written.

Sources followed, aws-neuron/transformers-neuronx at 1ade6d74224a89fb6366ded52153e2f32781e20d
(the 0.13 line; SDK 2.25.0 ships 0.13.1216): ``src/transformers_neuronx/llama/model.py:32``
(``LlamaForSampling.__init__``), ``:279`` (``preprocess_and_embed``), ``:290`` (``forward`` with
``input_embeddings``); ``src/transformers_neuronx/module.py:396`` (``from_pretrained``);
``src/transformers_neuronx/base.py:39-89`` (``save``, ``load``, ``to_neuron``), ``:213``
(``context``: a prompt longer than every context bucket is prefilled one token per device call,
hence ``context_length_estimate``); ``src/transformers_neuronx/config.py`` (``NeuronConfig``,
``QuantizationConfig``).  torch-neuronx: ``torch_neuronx.trace`` as documented for 2.25.0
(aws-neuron/aws-neuron-sdk at e52d322, api-torch-neuronx-trace.rst:6).

Qwen2-VL and Qwen2.5-VL are refused here: transformers-neuronx 0.13 has no Qwen2 decoder (its
llama has no q/k/v bias), and their multimodal RoPE cannot be expressed with 1-D ``cache_ids``.
Run on Neuron hardware: not yet; in CI against contract fakes (tests/neuron_fakes).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import structlog

from model import neuron_sdk
from model.architectures import (NEURON_ARCHES, NEURON_TEXT_TYPES, QWEN_ARCHES, checkpoint_arch,
                                 decoder_and_head, llava_vision_parts, load_vlm, text_config)
from model.checkpoints import checkpoint_identity, resolve_checkpoint
from model.config import ModelConfig
from model.exceptions import CheckpointUnusable, UnsupportedOnNeuron
from model.manifest import Manifest, checkpoint_sha256, prompt_bucket, sequence_positions
from model.policy import load_policy
from model.preprocess import LlavaVideoPreprocessor
from model.prompts import build_generate_prompt, build_score_prompt

log = structlog.get_logger(__name__)
AMPS = ("bf16", "f32")
AMP_BYTES = {"bf16": 2, "f32": 4}
DEFAULT_AMP = "bf16"  # Inf2 runs bf16 matmuls natively; int8 weights are dequantized to it
DECODER_CLASS = "transformers_neuronx.LlamaForSampling"
COPIED = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
          "chat_template.jinja", "chat_template.json", "preprocessor_config.json",
          "video_preprocessor_config.json", "generation_config.json", "synthetic.json")


def refuse_unsupported(arch: str) -> None:
    """Raise UnsupportedOnNeuron, saying why and what to use, for a family the SDK cannot run."""
    if arch in NEURON_ARCHES:
        return
    why = ("transformers-neuronx 0.13 (the last release, Neuron SDK 2.25) has no Qwen2 decoder "
           "and its Llama has no q/k/v bias, and Qwen2-VL's multimodal RoPE (time/height/width "
           "positions) cannot be expressed with 1-D cache_ids"
           if arch in QWEN_ARCHES else "it is not a family the pinned Neuron SDK compiles")
    raise UnsupportedOnNeuron(
        f"{arch} cannot run on the neuron backend: {why}. Use a LLaVA-NeXT-Video checkpoint "
        f"(llava_next_video: CLIP/SigLIP tower + Llama decoder; for a synthetic one "
        f"--synthetic-arch llava_next_video) on Inf2, or run {arch} with --backend torch.")


def configured_arch(config: ModelConfig) -> str:
    """The architecture a configuration will load, without building a synthetic checkpoint."""
    if config.model_dir is not None:
        return checkpoint_arch(Path(config.model_dir).expanduser())
    return config.synthetic_arch


def compile_artifacts(config: ModelConfig, out: Path, amp: str = DEFAULT_AMP) -> Manifest:
    """Trace the video encoder, compile the decoder, write artifacts and manifest into ``out``."""
    arch = configured_arch(config)  # the checkpoint resolve_checkpoint returns is of this arch
    refuse_unsupported(arch)
    neuron_sdk.require("modfleet compile")
    if amp not in AMPS:
        raise CheckpointUnusable(f"amp must be one of {', '.join(AMPS)}, got {amp!r}")
    checkpoint, synthetic = resolve_checkpoint(config)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    policy = load_policy(config.policy_file)
    model, pre, prompt_tokens = _load_source(checkpoint, config, policy)
    n_positions, estimate = decoder_buckets(prompt_tokens, config)
    _trace_vision(model, pre, config, amp, out / "vision.pt")
    text_dir = split_decoder(model, checkpoint, out / "decoder-checkpoint", n_positions, amp)
    graphs = _compile_decoder(text_dir, config, n_positions, estimate, amp, out / "decoder")
    name, version = checkpoint_identity(checkpoint, synthetic)
    manifest = Manifest(
        arch=arch, model_name=name, model_version=version,
        checkpoint_sha256=checkpoint_sha256(checkpoint), synthetic=synthetic,
        batch_size=config.batch_size, frames_per_video=config.frames_per_video,
        frame_size=config.frame_size,
        video_tokens=pre.tokens_per_clip(config.frames_per_video, config.frame_size),
        prompt_tokens=prompt_tokens, n_positions=n_positions, context_length_estimate=estimate,
        tp_degree=config.tp_degree, quantize=config.quantize, amp=amp, mode=config.mode,
        max_new_tokens=config.max_new_tokens,
        policy_version=policy.version,
        decoder_class=DECODER_CLASS, sdk_release=neuron_sdk.SDK_RELEASE,
        sdk_versions=neuron_sdk.sdk_versions(),
        files={"vision": "vision.pt", "decoder": "decoder",
               "decoder_checkpoint": "decoder-checkpoint"},
        graphs=graphs,
        buckets={"context": [estimate], "token": [n_positions]})
    manifest.write(out)
    log.info("compiled", out=str(out), n_positions=n_positions, context_length_estimate=estimate,
             tp_degree=config.tp_degree, amp=amp)
    return manifest


def decoder_buckets(prompt_tokens: int, config: ModelConfig) -> tuple[int, int]:
    """(n_positions, context_length_estimate): one token-generation bucket and one context bucket,
    the only graphs a batch uses.

    transformers-neuronx compiles a token graph per ``n_positions`` bucket and a context graph per
    ``context_length_estimate`` bucket (llama/model.py:68-69 at 1ade6d7); an integer
    ``n_positions`` means every power of two from 128 up to it (bucket.py ``token_sizes``), so
    both are given as one-element lists.  Score mode reads every logit of the prompt's one context
    call and never generates: its context bucket is the prompt itself (no padding positions to
    bring back to the host, see ``score_d2h_bytes``) and its KV cache no longer.  The token graph
    is still compiled: TNx builds it for every model (llama/model.py:107-108).
    """
    if config.mode == "score":
        return prompt_tokens, prompt_tokens
    n_positions = sequence_positions(prompt_tokens, config.max_new_tokens)
    return n_positions, prompt_bucket(prompt_tokens, n_positions)


def score_d2h_bytes(manifest: Manifest, vocab_size: int) -> int:
    """Bytes a score-mode batch brings from the device: every position of the context bucket.

    With ``output_all_logits`` the context graph returns logits ``(vocab, bucket, batch)``
    (decoder.py:192-194 sets ``return_all_outputs``; layers/transformer.py:263-265 slices to the
    last token only without it, :283-288 the head) in the compute dtype (``hidden.dtype``,
    :243), the vocabulary padded to a multiple of ``tp_degree``.  TNx 0.13 has no way to return
    only some positions, so the bucket is cut to the prompt instead (``decoder_buckets``).
    """
    vocab = -(-vocab_size // manifest.tp_degree) * manifest.tp_degree
    return vocab * manifest.context_length_estimate * manifest.batch_size * AMP_BYTES[manifest.amp]


def _load_source(checkpoint: Path, config: ModelConfig, policy):
    import torch
    from transformers import AutoTokenizer

    model = load_vlm(checkpoint, torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint)
    pre = LlavaVideoPreprocessor.from_checkpoint(checkpoint)
    video_tokens = pre.tokens_per_clip(config.frames_per_video, config.frame_size)
    build = build_score_prompt if config.mode == "score" else build_generate_prompt
    return model, pre, len(build(tokenizer, policy, video_tokens).input_ids)


class VideoEncoder:
    """Factory of the traceable module: (clips, frames, 3, S, S) pixels in, (clips, video tokens,
    decoder hidden size) features out: LLaVA-NeXT-Video's ``get_video_features`` step for step,
    written against the parts so that it is the same on transformers 4.47 and 5.x."""

    @staticmethod
    def build(model):
        import torch

        tower, pooler, projector = llava_vision_parts(model)
        layer = model.config.vision_feature_layer
        strategy = model.config.vision_feature_select_strategy
        if not isinstance(layer, int) or strategy != "default":
            raise CheckpointUnusable("only a single vision_feature_layer with the 'default' "
                                     f"select strategy is supported, got {layer!r}/{strategy!r}")

        class _Encoder(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.tower, self.pooler, self.projector = tower, pooler, projector

            def forward(self, pixel_values_videos):
                clips, frames = pixel_values_videos.shape[:2]
                pixels = pixel_values_videos.flatten(0, 1)
                hidden = self.tower(pixels, output_hidden_states=True).hidden_states[layer]
                features = self.projector(self.pooler(hidden[:, 1:]))  # CLS dropped: 'default'
                return features.reshape(clips, -1, features.shape[-1])

        return _Encoder().eval()


def _trace_vision(model, pre: LlavaVideoPreprocessor, config: ModelConfig, amp: str,
                  path: Path) -> None:
    import numpy as np
    import torch

    torch_neuronx = neuron_sdk.import_module("torch_neuronx")
    n, s = config.frames_per_video, config.frame_size
    pixels = pre.model_kwargs([np.zeros((n, s, s, 3), np.uint8)] * config.batch_size)
    # The compiler's own default (matmult to bf16) is announced to change to none (2.25 notes):
    # say which one the decoder's amp needs.
    cast = (["--auto-cast", "matmult", "--auto-cast-type", "bf16"] if amp == "bf16"
            else ["--auto-cast", "none"])
    traced = torch_neuronx.trace(VideoEncoder.build(model), pixels["pixel_values_videos"],
                                 compiler_args=cast)
    torch.jit.save(traced, str(path))


def split_decoder(model, checkpoint: Path, out: Path, n_positions: int,
                  amp: str = "f32") -> Path:
    """Save the language model as a ``LlamaForCausalLM`` checkpoint (plus tokenizer, processor),
    its weights in the compute dtype ``amp`` (half the bytes to write and to read at every boot for
    bf16; the decoder casts them to ``amp`` anyway).

    config.json is written field by field, so that transformers 4.47 (the SDK's, which reads
    ``rope_theta`` at the top level) and 5.x load it alike.
    """
    import torch

    dtype = {"bf16": torch.bfloat16, "f32": torch.float32}[amp]
    from safetensors.torch import save_file

    text = text_config(model.config)
    if text.model_type not in NEURON_TEXT_TYPES:
        raise UnsupportedOnNeuron(f"decoder {text.model_type!r}: LlamaForSampling runs llama "
                                  f"(and window-free mistral) decoders only")
    window = getattr(text, "sliding_window", None)
    if window is not None and window < n_positions:
        raise UnsupportedOnNeuron(f"mistral sliding window {window} < n_positions {n_positions}: "
                                  f"LlamaForSampling has no sliding window")
    decoder, head = decoder_and_head(model)
    out.mkdir(parents=True, exist_ok=True)
    weights = {f"model.{k}": v.to(dtype).contiguous() for k, v in decoder.state_dict().items()}
    weights["lm_head.weight"] = head.weight.detach().to(dtype).contiguous()
    save_file(weights, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = {**_llama_config(text), "torch_dtype": str(dtype).removeprefix("torch.")}
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in COPIED:
        if (checkpoint / name).is_file():
            shutil.copy(checkpoint / name, out / name)
    (out / "vlm_config.json").write_text((checkpoint / "config.json").read_text())
    return out


def _llama_config(text) -> dict:
    rope = getattr(text, "rope_parameters", None) or {}
    theta = getattr(text, "rope_theta", None) or rope.get("rope_theta", 10000.0)
    scaling = getattr(text, "rope_scaling", None)
    if scaling and scaling.get("rope_type", scaling.get("type")) not in (None, "default"):
        raise UnsupportedOnNeuron(f"rope scaling {scaling!r} is not supported here")
    return {"architectures": ["LlamaForCausalLM"], "model_type": "llama",
            "vocab_size": text.vocab_size, "hidden_size": text.hidden_size,
            "intermediate_size": text.intermediate_size,
            "num_hidden_layers": text.num_hidden_layers,
            "num_attention_heads": text.num_attention_heads,
            "num_key_value_heads": getattr(text, "num_key_value_heads", None)
            or text.num_attention_heads,
            "hidden_act": text.hidden_act, "max_position_embeddings": text.max_position_embeddings,
            "rms_norm_eps": text.rms_norm_eps, "rope_theta": float(theta),
            "attention_bias": False, "mlp_bias": False, "tie_word_embeddings": False,
            "bos_token_id": text.bos_token_id, "eos_token_id": text.eos_token_id,
            "pad_token_id": getattr(text, "pad_token_id", None), "torch_dtype": "float32"}


def decoder_kwargs(config: ModelConfig, n_positions: int, estimate: int, amp: str,
                   mode: str) -> dict:
    """Keyword arguments of ``LlamaForSampling.from_pretrained``, the same at compile and load."""
    import os

    tnx = neuron_sdk.import_module("transformers_neuronx")
    # INT8 weights are quantized from the checkpoint at every load: TNx saves them quantized only
    # as presharded weights (save(sharded_weights=True)), which need on_device_embedding
    # (base.py:42-43; developer guide libraries/transformers-neuronx/transformers-neuronx-
    # developer-guide.rst:460-461 at aws-neuron-sdk e52d322c); and with the embedding on the
    # device the video features could not replace the <video> embeddings on the host.
    quant = (tnx.QuantizationConfig(quant_dtype="s8", dequant_dtype=amp)
             if config.quantize == "int8" else None)
    # Score mode reads logits at the checklist positions of the prefill, not only the last one.
    # compilation_worker_count bounds the neuronx-cc processes; unset, TNx starts one per graph
    # at once (base.py:55-64, :88).
    neuron_config = tnx.NeuronConfig(quant=quant, output_all_logits=(mode == "score"),
                                     compilation_worker_count=max(1, (os.cpu_count() or 2) // 2))
    return {"batch_size": config.batch_size, "tp_degree": config.tp_degree,
            "n_positions": [n_positions], "context_length_estimate": [estimate], "amp": amp,
            "neuron_config": neuron_config}


def decoder_class():
    """transformers-neuronx's Llama decoder class."""
    return neuron_sdk.import_module("transformers_neuronx").LlamaForSampling


def _compile_decoder(text_dir: Path, config: ModelConfig, n_positions: int, estimate: int,
                     amp: str, out: Path) -> list[str]:
    kwargs = decoder_kwargs(config, n_positions, estimate, amp, config.mode)
    decoder = decoder_class().from_pretrained(str(text_dir), **kwargs)
    decoder.to_neuron()  # compiles (no artifacts loaded yet), then loads onto the cores
    out.mkdir(parents=True, exist_ok=True)
    decoder.save(str(out))
    return sorted(p.name for p in out.iterdir() if p.is_file())
