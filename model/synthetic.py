"""Synthetic checkpoints: real architectures at chosen sizes, random weights from a fixed seed.

No trained weights can be downloaded where tests and benchmarks run, so this writes a checkpoint
directory shaped exactly like a downloaded one: ``config.json`` of
``Qwen2VLForConditionalGeneration`` (or Qwen2.5-VL, or ``LlavaNextVideoForConditionalGeneration``),
``model.safetensors``, a byte-level BPE tokenizer trained here with the ``tokenizers`` library (the
family's special tokens included), the chat template, and the image and video processor configs.
``synthetic.json`` marks it as synthetic so every verdict and benchmark made with it says so.

The LLaVA-NeXT-Video checkpoints have a CLIP vision tower and a Llama decoder (the family the
neuron backend compiles).  Their tokenizer is byte-level BPE, not Llama's SentencePiece: the ids
differ from a downloaded checkpoint's, the architecture and the token flow do not.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from model.architectures import ARCHES, is_llava
from model.exceptions import CheckpointUnusable
from model.policy import load_policy

# Bump when the builder's output changes, so caches keyed on it rebuild.
BUILDER_VERSION = 1
MARKER = "synthetic.json"

# Qwen2-VL's own special tokens, in its order, so ids and the chat template behave alike.
SPECIAL_TOKENS = (
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>",
)

# Qwen2-VL-Instruct's chat template (video and image placeholders, system default).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n{% if message['content'] is string %}"
    "{{ message['content'] }}<|im_end|>\n{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}"
    "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}"
    "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# LLaVA-NeXT-Video's special tokens (Llama's three, its pad, the image and video placeholders).
LLAVA_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>", "<pad>", "<image>", "<video>")

# Modelled on llava-hf/LLaVA-NeXT-Video-7B-hf's chat template ("USER: <video>\n... ASSISTANT:"),
# extended to accept a plain-string content (the system prompt).
LLAVA_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif content['type'] == 'video' %}{{ '<video>\n' }}{% endif %}{% endfor %}"
    "{% for content in message['content'] %}{% if content['type'] == 'text' %}"
    "{{ content['text'] + ' ' }}{% endif %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

# OpenAI CLIP normalisation, as Qwen2-VL's processor config ships it.
IMAGE_MEAN = [0.48145466, 0.4578275, 0.40821073]
IMAGE_STD = [0.26862954, 0.26130258, 0.27577711]
LOGIT_SPREAD = 1.5  # wanted standard deviation of a yes-minus-no logit difference


@dataclass(frozen=True)
class Preset:
    """Sizes of one synthetic checkpoint (vision tower and language model)."""

    vision_depth: int
    vision_embed_dim: int
    vision_heads: int
    hidden_size: int
    layers: int
    heads: int
    kv_heads: int
    intermediate_size: int
    vocab_size: int  # 0: the tokenizer's size; Qwen pads the embedding beyond it (151936)
    dtype: str


PRESETS = {
    # Runs a batch in well under a second on one CPU core: for tests.
    "tiny": Preset(2, 32, 2, 64, 2, 4, 2, 128, 0, "float32"),
    # Large enough that batching and quantization show on a CPU, small enough to bench on two cores.
    "small": Preset(4, 128, 4, 256, 4, 8, 4, 768, 0, "float32"),
    # Shaped like Qwen2-VL-2B (~2.4B parameters, untied head): for GPU benchmarks; generated,
    # never committed.
    "base": Preset(32, 1280, 16, 1536, 28, 12, 2, 8960, 151936, "bfloat16"),
}


@dataclass(frozen=True)
class LlavaPreset:
    """Sizes of one synthetic LLaVA-NeXT-Video checkpoint (CLIP tower, Llama decoder)."""

    vision_depth: int
    vision_hidden: int
    vision_heads: int
    image_size: int  # the tower's input side; frames are resized to it
    hidden_size: int
    layers: int
    heads: int
    kv_heads: int
    intermediate_size: int
    vocab_size: int  # 0: the tokenizer's size
    dtype: str


LLAVA_PRESETS = {
    # 56-pixel frames: 4x4 patches pooled to 2x2, 4 video tokens a frame.  For tests.
    "tiny": LlavaPreset(2, 32, 2, 56, 64, 2, 4, 2, 128, 0, "float32"),
    # 112-pixel frames: 16 tokens a frame.  CPU benchmarks.
    "small": LlavaPreset(4, 128, 4, 112, 256, 4, 8, 4, 768, 0, "float32"),
    # Shaped like LLaVA-NeXT-Video-7B (CLIP ViT-L/14-336, a Vicuna-7B decoder): ~7B parameters,
    # generated for accelerator benchmarks, never committed.
    "base": LlavaPreset(24, 1024, 16, 336, 4096, 32, 32, 32, 11008, 32064, "bfloat16"),
}


def build_checkpoint(out: Path, preset: str = "tiny", arch: str = "qwen2_vl", seed: int = 0,
                     policy_path: Path | None = None) -> Path:
    """Write a synthetic checkpoint of ``arch`` at ``preset`` size into ``out`` (made if absent)."""
    if preset not in PRESETS:
        raise CheckpointUnusable(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if arch not in ARCHES:
        raise CheckpointUnusable(
            f"unknown architecture {arch!r}; choose one of {', '.join(ARCHES)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    llava = is_llava(arch)
    sizes = LLAVA_PRESETS[preset] if llava else PRESETS[preset]
    tokenizer = _save_tokenizer(out, _corpus(policy_path), llava)
    config = _llava_config(sizes, tokenizer) if llava else _config(sizes, arch, tokenizer)
    _save_model(out, sizes, config, tokenizer, seed)
    if llava:
        _save_llava_processor_configs(out, sizes)
    else:
        _save_processor_configs(out)
    marker = {"synthetic": True, "preset": preset, "arch": arch, "seed": seed,
              "builder_version": BUILDER_VERSION, "sizes": asdict(sizes),
              "note": "random weights: outputs carry no meaning; for tests and benchmarks only"}
    (out / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return out


def is_synthetic(checkpoint: Path) -> bool:
    """True when ``checkpoint`` was written by this builder."""
    return (Path(checkpoint) / MARKER).is_file()


# ---- tokenizer -----------------------------------------------------------------------------------

def _corpus(policy_path: Path | None) -> list[str]:
    """Text the BPE merges are learned from: the policy's prompts, categories and answer words."""
    policy = load_policy(policy_path)
    names = [c.name for c in policy.categories]
    lines = [policy.score_system, policy.score_preamble, policy.generate_system,
             policy.generate_instruction.format(categories=", ".join(names)),
             "Reason: the video shows people talking in a room. None of the categories applies.",
             "Reason: a person holds a weapon and there is blood.", "None", "confidence 0 100"]
    lines += [policy.score_line.format(category=n) for n in names]
    lines += [f"{n}: {v}" for n in names for v in range(0, 101, 5)]
    # Answer words as whole tokens, with and without a leading space, as a real vocabulary has them.
    answers = (policy.positive_word, policy.negative_word)
    lines += [f" {w} {w.capitalize()} {w}" for w in answers] * 50
    return lines * 4


def _save_tokenizer(out: Path, corpus: list[str], llava: bool = False):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    specials = LLAVA_SPECIAL_TOKENS if llava else SPECIAL_TOKENS
    tok = Tokenizer(models.BPE(unk_token="<unk>" if llava else None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024, special_tokens=list(specials), show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus, trainer=trainer)
    if llava:
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
            pad_token="<pad>", additional_special_tokens=["<image>", "<video>"],
            model_max_length=4096)
        fast.chat_template = LLAVA_CHAT_TEMPLATE
    else:
        fast = PreTrainedTokenizerFast(
            tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
            additional_special_tokens=list(SPECIAL_TOKENS[1:]), model_max_length=32768)
        fast.chat_template = CHAT_TEMPLATE
    fast.padding_side = "left"
    fast.save_pretrained(out)
    return fast


# ---- model ---------------------------------------------------------------------------------------

def _config(preset: Preset, arch: str, tokenizer):
    from transformers import AutoConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    head_dim = preset.hidden_size // preset.heads
    # Multimodal RoPE splits each head's rotary half into (temporal, height, width) sections.
    quarter = head_dim // 8
    mrope = [head_dim // 2 - 2 * (3 * quarter // 2), 3 * quarter // 2, 3 * quarter // 2]
    vision = {"depth": preset.vision_depth, "embed_dim": preset.vision_embed_dim,
              "num_heads": preset.vision_heads, "hidden_size": preset.hidden_size,
              "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
    if arch == "qwen2_5_vl":
        vision = {"depth": preset.vision_depth, "hidden_size": preset.vision_embed_dim,
                  "num_heads": preset.vision_heads, "out_hidden_size": preset.hidden_size,
                  "intermediate_size": 4 * preset.vision_embed_dim, "patch_size": 14,
                  "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
                  "fullatt_block_indexes": list(range(preset.vision_depth - 1,
                                                      preset.vision_depth, 1))}
    text = {"vocab_size": preset.vocab_size or len(tokenizer), "hidden_size": preset.hidden_size,
            "intermediate_size": preset.intermediate_size, "num_hidden_layers": preset.layers,
            "num_attention_heads": preset.heads, "num_key_value_heads": preset.kv_heads,
            "max_position_embeddings": 32768, "rope_theta": 1000000.0,
            "rope_scaling": {"type": "mrope", "mrope_section": mrope},
            "bos_token_id": ids["<|endoftext|>"], "eos_token_id": ids["<|im_end|>"],
            "pad_token_id": ids["<|endoftext|>"]}
    return AutoConfig.for_model(
        arch, text_config=text, vision_config=vision,
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"], tie_word_embeddings=False)


def _llava_config(preset: LlavaPreset, tokenizer):
    from transformers import AutoConfig

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in LLAVA_SPECIAL_TOKENS}
    vision = {"model_type": "clip_vision_model", "hidden_size": preset.vision_hidden,
              "intermediate_size": 4 * preset.vision_hidden,
              "num_hidden_layers": preset.vision_depth,
              "num_attention_heads": preset.vision_heads, "image_size": preset.image_size,
              "patch_size": 14, "projection_dim": preset.vision_hidden, "hidden_act": "quick_gelu"}
    text = {"model_type": "llama", "vocab_size": preset.vocab_size or len(tokenizer),
            "hidden_size": preset.hidden_size, "intermediate_size": preset.intermediate_size,
            "num_hidden_layers": preset.layers, "num_attention_heads": preset.heads,
            "num_key_value_heads": preset.kv_heads, "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu",
            "bos_token_id": ids["<s>"], "eos_token_id": ids["</s>"],
            "pad_token_id": ids["<pad>"], "tie_word_embeddings": False}
    side = preset.image_size // 14 // 2
    # video_seq_length/image_seq_length: transformers 4.47 takes the processor's token expansion
    # as given only when at least this many placeholders are present (its "legacy" path otherwise).
    return AutoConfig.for_model(
        "llava_next_video", text_config=text, vision_config=vision,
        image_token_index=ids["<image>"], video_token_index=ids["<video>"],
        vision_feature_layer=-2, vision_feature_select_strategy="default",
        spatial_pool_mode="average", spatial_pool_stride=2, image_seq_length=side * side * 4,
        video_seq_length=side * side, projector_hidden_act="gelu", tie_word_embeddings=False,
        image_grid_pinpoints=[[preset.image_size, preset.image_size]],
        bos_token_id=ids["<s>"], eos_token_id=ids["</s>"], pad_token_id=ids["<pad>"])


def _save_model(out: Path, preset, config, tokenizer, seed: int) -> None:
    import torch
    from transformers import GenerationConfig
    from transformers.utils import logging as hf_logging

    from model.architectures import decoder_and_head, vlm_class

    hf_logging.disable_progress_bar()
    torch.manual_seed(seed)
    dtype = getattr(torch, preset.dtype)
    model = _from_config(vlm_class(config.model_type), config, dtype)
    _, head = decoder_and_head(model)
    with torch.no_grad():
        # At the usual 0.02 init every logit is ~0 and every score ~50; a hotter head spreads the
        # scores over 0-100 so thresholds, decisions and quantization drift are exercised.
        head.weight.mul_(LOGIT_SPREAD / (0.02 * (2 * preset.hidden_size) ** 0.5))
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
        pad_token_id=config.pad_token_id, do_sample=False)
    model.save_pretrained(out)


def _save_processor_configs(out: Path) -> None:
    common = {"do_resize": True, "do_rescale": True, "rescale_factor": 1 / 255,
              "do_normalize": True, "image_mean": IMAGE_MEAN, "image_std": IMAGE_STD,
              "do_convert_rgb": True, "min_pixels": 3136, "max_pixels": 12845056,
              "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
              "processor_class": "Qwen2VLProcessor"}
    (out / "preprocessor_config.json").write_text(json.dumps(
        {"image_processor_type": "Qwen2VLImageProcessor", **common}, indent=2) + "\n")
    (out / "video_preprocessor_config.json").write_text(json.dumps(
        {"video_processor_type": "Qwen2VLVideoProcessor", **common}, indent=2) + "\n")
    (out / "chat_template.json").write_text(json.dumps({"chat_template": CHAT_TEMPLATE}) + "\n")


def _from_config(auto_class, config, dtype):
    from model.architectures import dtype_kwarg

    if hasattr(auto_class, "from_config"):  # an Auto class
        return auto_class.from_config(config, **{dtype_kwarg(): dtype})
    return auto_class._from_config(config, **{dtype_kwarg(): dtype})


def _save_llava_processor_configs(out: Path, preset: LlavaPreset) -> None:
    size = preset.image_size
    common = {"do_resize": True, "size": {"shortest_edge": size}, "do_center_crop": True,
              "crop_size": {"height": size, "width": size}, "do_rescale": True,
              "rescale_factor": 1 / 255, "do_normalize": True, "image_mean": IMAGE_MEAN,
              "image_std": IMAGE_STD, "do_convert_rgb": True, "resample": 3,
              "processor_class": "LlavaNextVideoProcessor"}
    (out / "preprocessor_config.json").write_text(json.dumps(
        {"image_processor_type": "LlavaNextImageProcessor",
         "image_grid_pinpoints": [[size, size]], **common}, indent=2) + "\n")
    (out / "video_preprocessor_config.json").write_text(json.dumps(
        {"video_processor_type": "LlavaNextVideoVideoProcessor", **common}, indent=2) + "\n")
    (out / "chat_template.json").write_text(
        json.dumps({"chat_template": LLAVA_CHAT_TEMPLATE}) + "\n")

