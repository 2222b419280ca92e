"""The vision-language families this layer runs, and accessors that work across transformers.

Two families:

- ``qwen2_vl`` / ``qwen2_5_vl``: Qwen2-VL and Qwen2.5-VL.  Multimodal RoPE (positions in time,
  height and width); torch backend only.
- ``llava_next_video``: LLaVA-NeXT-Video (a CLIP/SigLIP vision tower, an average pooler, a
  two-layer projector and a Llama decoder).  1-D RoPE, so its decoder is exactly what
  transformers-neuronx's ``LlamaForSampling`` computes; runs on the torch and the neuron backends.

The torch backend runs on transformers 5.x; the Neuron SDK's environment pins transformers 4.47
(transformers-neuronx 0.13 requires ``transformers<4.48``).  Module paths differ between the two
(5.x nests the parts under ``model.model``; 4.47 keeps them on the top-level model, and its
``language_model`` is a whole causal LM), so code reaches them through the functions here rather
than attribute paths.
"""

from __future__ import annotations

import json
from pathlib import Path

from model.exceptions import CheckpointUnusable

QWEN_ARCHES = ("qwen2_vl", "qwen2_5_vl")
LLAVA_ARCHES = ("llava_next_video",)
ARCHES = QWEN_ARCHES + LLAVA_ARCHES
# Families the neuron backend compiles: LLaVA-style models with a Llama decoder.
NEURON_ARCHES = LLAVA_ARCHES
# Decoders transformers-neuronx 0.13's LlamaForSampling computes exactly.  Mistral is Llama plus a
# sliding window: the same math while the window covers every position (checked at compile).
NEURON_TEXT_TYPES = ("llama", "mistral")


def checkpoint_arch(checkpoint: Path) -> str:
    """The ``model_type`` of a checkpoint directory's config.json."""
    try:
        raw = json.loads((Path(checkpoint) / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointUnusable(f"{checkpoint}: no readable config.json ({exc})") from exc
    arch = raw.get("model_type", "")
    if arch not in ARCHES:
        raise CheckpointUnusable(f"{checkpoint}: architecture {arch!r} is not supported; "
                                 f"supported: {', '.join(ARCHES)}")
    return arch


def is_llava(arch: str) -> bool:
    return arch in LLAVA_ARCHES


def video_token_id(config) -> int:
    """Id of the video placeholder token (``video_token_id`` in 5.x, ``video_token_index`` in
    4.x)."""
    for name in ("video_token_id", "video_token_index"):
        value = getattr(config, name, None)
        if value is not None:
            return int(value)
    raise CheckpointUnusable("the model config names no video token id")


def text_config(config):
    """The decoder's config: ``text_config`` where the VLM nests it, else the config itself."""
    return getattr(config, "text_config", None) or config


def _parts_owner(model, name: str):
    # 5.x: ForConditionalGeneration.model (LlavaNextVideoModel) holds the parts; 4.47: the top
    # level.
    inner = getattr(model, "model", None)
    if inner is not None and hasattr(inner, name):
        return inner
    if hasattr(model, name):
        return model
    raise CheckpointUnusable(f"{type(model).__name__} has no {name}")


def llava_vision_parts(model):
    """(vision_tower, vision_resampler, multi_modal_projector) of a LLaVA-NeXT-Video model."""
    owner = _parts_owner(model, "vision_tower")
    return owner.vision_tower, owner.vision_resampler, owner.multi_modal_projector


def decoder_and_head(model):
    """(decoder body with ``embed_tokens``/``layers``/``norm``, lm_head) of a VLM."""
    decoder = model.get_decoder()
    # 4.47's LLaVA get_decoder() already unwraps its causal LM; guard the other shape too.
    decoder = getattr(decoder, "model", decoder) if not hasattr(decoder, "layers") else decoder
    return decoder, model.get_output_embeddings()


def dtype_kwarg() -> str:
    """The ``from_pretrained``/``from_config`` dtype keyword: ``dtype`` from transformers 4.56,
    ``torch_dtype`` before (the Neuron environment's 4.47)."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def vlm_class(arch: str):
    """The transformers class of a family: LLaVA-NeXT-Video by name (4.47's
    ``AutoModelForImageTextToText`` does not map it), the Auto class otherwise."""
    import transformers

    if is_llava(arch):
        return transformers.LlavaNextVideoForConditionalGeneration
    return transformers.AutoModelForImageTextToText


def load_vlm(checkpoint: Path, dtype=None):
    """The vision-language model of a checkpoint directory, in eval mode."""
    kwargs = {} if dtype is None else {dtype_kwarg(): dtype}
    return vlm_class(checkpoint_arch(checkpoint)).from_pretrained(checkpoint, **kwargs).eval()
