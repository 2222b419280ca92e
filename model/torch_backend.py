"""The torch backend: a Hugging Face vision-language checkpoint on CPU or CUDA.

Lifecycle (the worker's replica thread drives it): ``load`` resolves the checkpoint (building the
synthetic one on first use), loads it onto the slot's device, optionally quantizes it, and builds
the prompts once; ``warm_up`` runs one all-padding batch of the static shape; ``infer`` runs one
batch; ``shutdown`` frees the model.  Score mode is one prefill pass; generate mode decodes free
text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model.api import Backend, Batch, Clip, DeviceSlot, ModelIdentity, ModelOutput
from model.checkpoints import checkpoint_identity, resolve_checkpoint
from model.exceptions import CheckpointUnusable, RejectClip, RetryBatch
from model.policy import Policy, load_policy
from model.architectures import decoder_and_head, load_vlm, video_token_id
from model.preprocess import load_preprocessor
from model.prompts import build_generate_prompt, build_score_prompt
from model.scoring import confidences_from_logits, output_from_confidences
import structlog
from model.config import ModelConfig

log = structlog.get_logger(__name__)


class TorchBackend(Backend):
    """Backend for Qwen2-VL and LLaVA-NeXT-Video checkpoints through transformers, on
    ``slot.device``."""

    backend_name = "torch"

    def __init__(self, config: ModelConfig, slot: DeviceSlot, policy: Policy | None = None) -> None:
        self.config = config
        self.slot = slot
        self.policy = policy or load_policy(config.policy_file)
        self.model = None
        self.checkpoint: Path | None = None
        self.synthetic = False
        self._identity: ModelIdentity | None = None
        self.last_tokens: list[list[int]] = []  # generate mode: each row's tokens, last batch
        self.stats = {"batches": 0, "rows": 0, "tokens_generated": 0, "tokens_saved": 0,
                      "loops_stopped": 0}

    # ---- lifecycle -------------------------------------------------------------------------------

    def load(self) -> None:
        """Load the checkpoint onto the slot's device and build the static prompts."""
        import torch

        if self.slot.kind == "cpu":
            torch.set_num_threads(max(1, self.slot.cpu_threads))
        self.checkpoint, self.synthetic = resolve_checkpoint(self.config)
        self.model, self.tokenizer = self._load_model(self.checkpoint)
        # What forward() takes differs between transformers versions; asked once, not per batch.
        self._logits_by_index = _keeps_logits_by_index(self.model)
        self._mm_token_types = _takes_mm_token_types(self.model)
        self.preprocessor = load_preprocessor(self.checkpoint)
        video_tokens = self.preprocessor.tokens_per_clip(self.config.frames_per_video,
                                                         self.config.frame_size)
        self.score_prompt = build_score_prompt(self.tokenizer, self.policy, video_tokens)
        self.generate_prompt = build_generate_prompt(self.tokenizer, self.policy, video_tokens)
        self._identity = self._make_identity()
        log.info("model loaded", replica=self.slot.index, device=self.slot.device,
                 checkpoint=str(self.checkpoint), synthetic=self.synthetic,
                 quantize=self.config.quantize, mode=self.config.mode)

    def warm_up(self) -> None:
        """Run one batch of the static shape (all padding) so first real batches are not slow."""
        self._run(Batch(rows=(None,) * self.config.batch_size))

    def infer(self, batch: Batch) -> list[ModelOutput | None]:
        """One ``ModelOutput`` per real row, ``None`` for padding rows."""
        if self.model is None:
            raise RuntimeError("infer() before load()")
        outputs = self._run(batch)
        return [out if row is not None else None for row, out in zip(batch.rows, outputs)]

    def shutdown(self) -> None:
        """Drop the model and free device memory."""
        self.model = None
        if self.slot.kind == "cuda":
            import torch

            torch.cuda.empty_cache()

    @property
    def identity(self) -> ModelIdentity:
        if self._identity is None:
            raise RuntimeError("identity is known after load()")
        return self._identity

    # ---- loading ---------------------------------------------------------------------------------

    def _load_model(self, checkpoint: Path):
        import torch
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        dtype = torch.float32 if self.slot.kind == "cpu" else torch.bfloat16
        try:
            tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            model = load_vlm(checkpoint, dtype)
        except (OSError, ValueError, KeyError) as exc:
            raise CheckpointUnusable(f"cannot load {checkpoint}: {exc}") from exc
        if self.config.quantize == "int8":
            from model.quantize import quantize_int8

            # On CUDA each linear layer is quantized as it moves to the GPU, so the GPU never
            # holds the full-precision copy of the quantized layers.
            model = quantize_int8(model, self.slot.kind, device=self.slot.device)
        model.to(self.slot.device)
        return model, tokenizer

    def _make_identity(self) -> ModelIdentity:
        name, version = checkpoint_identity(self.checkpoint, self.synthetic)
        return ModelIdentity(name=name, version=version, backend=self.backend_name,
                             quantization=self.config.quantize, synthetic=self.synthetic,
                             policy_version=self.policy.version)

    # ---- inference -------------------------------------------------------------------------------

    def _run(self, batch: Batch) -> list[ModelOutput]:
        clips = [row if row is not None else self._zero_clip() for row in batch.rows]
        vision = self.preprocessor.model_kwargs([_checked_frames(c, self.config) for c in clips])
        try:
            outputs = (self._score(clips, vision) if self.config.mode == "score"
                       else self._generate(clips, vision, [row is not None for row in batch.rows]))
        except RuntimeError as exc:
            if "out of memory" in str(exc).lower():
                raise RetryBatch(f"device out of memory on {self.slot.device}: {exc}") from exc
            raise
        if batch.real_rows:  # the warm-up batch is all padding and does not count
            self.stats["batches"] += 1
            self.stats["rows"] += batch.real_rows
        return outputs

    def model_inputs(self, ids: tuple[int, ...], rows: int, vision: dict) -> dict:
        """The model's keyword arguments for ``rows`` copies of one prompt and the clips' pixels."""
        import torch

        input_ids = torch.tensor([ids] * rows, dtype=torch.long, device=self.slot.device)
        inputs = {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
                  "pixel_values_videos": vision["pixel_values_videos"].to(self.slot.device,
                                                                          self.model.dtype)}
        if "video_grid_thw" in vision:
            inputs["video_grid_thw"] = vision["video_grid_thw"].to(self.slot.device)
            if self._mm_token_types:
                # What the processor returns beside input_ids (transformers 5): 2 marks video
                # tokens, for M-RoPE positions.
                video = video_token_id(self.model.config)
                inputs["mm_token_type_ids"] = (input_ids == video).long() * 2
        return inputs

    def category_scores(self, batch: Batch) -> list[dict[str, float] | None]:
        """Raw per-category confidences (0-100) per real row, before thresholds (for benchmarks)."""
        clips = [row if row is not None else self._zero_clip() for row in batch.rows]
        vision = self.preprocessor.model_kwargs([_checked_frames(c, self.config) for c in clips])
        table = self._score_table(clips, vision)
        names = [c.name for c in self.policy.categories]
        return [dict(zip(names, row)) if clip is not None else None
                for clip, row in zip(batch.rows, table)]

    def _score(self, clips: list[Clip], vision: dict) -> list[ModelOutput]:
        table = self._score_table(clips, vision)
        return [output_from_confidences(self.policy, clip, row) for clip, row in zip(clips, table)]

    def _score_table(self, clips: list[Clip], vision: dict) -> list[list[float]]:
        import torch

        prompt = self.score_prompt
        inputs = self.model_inputs(prompt.input_ids, len(clips), vision)
        positions = torch.tensor(prompt.read_positions, device=self.slot.device)
        with torch.inference_mode():
            if self._logits_by_index:
                # Only the checklist positions need logits: a 152k-token vocabulary makes others
                # costly.
                logits = self.model(**inputs, logits_to_keep=positions, use_cache=False).logits
            else:  # transformers 4.47 keeps only the last N positions: read the hidden states
                hidden = self.model(**inputs, use_cache=False,
                                    output_hidden_states=True).hidden_states[-1]
                _, head = decoder_and_head(self.model)
                logits = head(hidden[:, positions])
        return confidences_from_logits(logits, prompt)

    def _generate(self, clips: list[Clip], vision: dict, real: list[bool]) -> list[ModelOutput]:
        from model.generation import generate_outputs

        return generate_outputs(self, clips, vision, real)

    def _zero_clip(self) -> Clip:
        n, s = self.config.frames_per_video, self.config.frame_size
        return Clip(frames=np.zeros((n, s, s, 3), np.uint8), timestamps_ms=(0,) * n, ref="padding")


def _checked_frames(clip: Clip, config: ModelConfig) -> np.ndarray:
    """The clip's frames, if they have the static shape every row of a batch must share."""
    want = (config.frames_per_video, config.frame_size, config.frame_size, 3)
    frames = clip.frames
    if not isinstance(frames, np.ndarray) or frames.shape != want or frames.dtype != np.uint8:
        got = getattr(frames, "shape", None), getattr(frames, "dtype", None)
        raise RejectClip(f"clip {clip.ref!r}: frames must be uint8 {want}, got {got}", ref=clip.ref)
    return frames


def _keeps_logits_by_index(model) -> bool:
    """Whether ``forward`` takes ``logits_to_keep`` (transformers >= 4.50; 4.47 has
    ``num_logits_to_keep``, an int only)."""
    import inspect

    return "logits_to_keep" in inspect.signature(model.forward).parameters


def _takes_mm_token_types(model) -> bool:
    import inspect

    params = inspect.signature(model.forward).parameters
    return "mm_token_type_ids" in params or any(
        p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
