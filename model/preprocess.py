"""Frames to the vision tower's input, without torchvision: Qwen2-VL's patches, LLaVA's frames.

Follows ``Qwen2VLVideoProcessor`` (transformers/models/qwen2_vl/video_processing_qwen2_vl.py:
rescale, normalize, ``patchify``) step for step; the processor itself needs torchvision, whose
PyPI wheels would pull a CUDA build of torch onto CPU machines.  Frames arrive letterboxed to a
square whose side is a multiple of ``patch_size * merge_size``, so Qwen's ``smart_resize`` is the
identity here and is checked rather than applied.  A test checks the output against transformers'
own Qwen2-VL image processor (its PIL backend), which treats an image as a two-frame clip.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from model.architectures import is_llava
from model.exceptions import CheckpointUnusable, RejectClip


@dataclass(frozen=True)
class VideoPreprocessor:
    """The numbers of a checkpoint's video processor config that the patchification needs."""

    patch_size: int
    temporal_patch_size: int
    merge_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale_factor: float = 1 / 255

    @classmethod
    def from_checkpoint(cls, checkpoint: Path) -> VideoPreprocessor:
        """Read ``video_preprocessor_config.json`` (or the older ``preprocessor_config.json``)."""
        raw = _processor_config(checkpoint)
        return cls(int(raw.get("patch_size", 14)), int(raw.get("temporal_patch_size", 2)),
                   int(raw.get("merge_size", 2)), *_normalisation(raw))

    def grid(self, frames: int, size: int) -> tuple[int, int, int]:
        """(t, h, w) patch grid of a clip of ``frames`` square frames of ``size`` pixels."""
        t = -(-frames // self.temporal_patch_size)
        return t, size // self.patch_size, size // self.patch_size

    def tokens_per_clip(self, frames: int, size: int) -> int:
        """How many ``<|video_pad|>`` tokens one clip becomes after the spatial merge."""
        t, h, w = self.grid(frames, size)
        return t * h * w // (self.merge_size ** 2)

    def model_kwargs(self, clips: list[np.ndarray]) -> dict:
        """The model's vision keyword arguments for a batch of clips."""
        pixels, grid = self(clips)
        return {"pixel_values_videos": pixels, "video_grid_thw": grid}

    def __call__(self, clips: list[np.ndarray]):
        """Stack clips of (N, S, S, 3) uint8 into (pixel_values_videos, video_grid_thw) tensors."""
        import torch

        patches, grids = [], []
        for clip in clips:
            flat, grid = self._patchify(torch.from_numpy(np.ascontiguousarray(clip)))
            patches.append(flat)
            grids.append(grid)
        return torch.cat(patches), torch.tensor(grids, dtype=torch.int64)

    def _patchify(self, frames):
        import torch

        n, height, width, channels = frames.shape
        factor = self.patch_size * self.merge_size
        if height != width or height % factor or channels != 3:
            raise RejectClip(f"frames must be (N, S, S, 3) with S a multiple of {factor}, "
                             f"got {tuple(frames.shape)}")
        video = _normalise(frames.permute(0, 3, 1, 2).float(), self)
        if pad := -n % self.temporal_patch_size:
            # Qwen repeats the last frame to fill the last temporal patch.
            video = torch.cat((video, video[-1:].expand(pad, -1, -1, -1)))
        t, gh, gw = self.grid(n, height)
        m, p, tp = self.merge_size, self.patch_size, self.temporal_patch_size
        patches = video.view(t, tp, 3, gh // m, m, p, gw // m, m, p)
        patches = patches.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
        return patches.reshape(t * gh * gw, 3 * tp * p * p), (t, gh, gw)


@dataclass(frozen=True)
class LlavaVideoPreprocessor:
    """LLaVA-NeXT-Video's video processing: each frame resized to the tower's input, normalised.

    Follows ``LlavaNextVideoVideoProcessor`` (resize, rescale, normalise with the CLIP mean and std;
    frames arrive square, so its centre crop is the identity).  The resize is bicubic with
    antialiasing, as the processor's PIL/torchvision paths do; both backends share this code, so
    they see the same pixels.  Each frame becomes ``(image_size / patch_size / pool_stride) ** 2``
    video tokens after the vision resampler (average pooling).
    """

    image_size: int
    patch_size: int
    pool_stride: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    rescale_factor: float = 1 / 255

    @classmethod
    def from_checkpoint(cls, checkpoint: Path) -> LlavaVideoPreprocessor:
        """Read the processor config and the model config (``vlm_config.json`` beside a split
        decoder checkpoint, else ``config.json``)."""
        model = _model_config(checkpoint)
        vision = model["vision_config"]
        return cls(int(vision["image_size"]), int(vision["patch_size"]),
                   int(model.get("spatial_pool_stride", 2)),
                   *_normalisation(_processor_config(checkpoint)))

    def tokens_per_clip(self, frames: int, size: int) -> int:
        """Video tokens of one clip: pooled patches per frame times frames (``size`` is resized)."""
        side = self.image_size // self.patch_size // self.pool_stride
        return frames * side * side

    def model_kwargs(self, clips: list[np.ndarray]) -> dict:
        """``pixel_values_videos`` of shape (clips, frames, 3, image_size, image_size)."""
        import torch

        return {"pixel_values_videos": torch.stack([self._frames(c) for c in clips])}

    def _frames(self, clip: np.ndarray):
        import torch
        import torch.nn.functional as F

        frames = torch.from_numpy(np.ascontiguousarray(clip))
        if frames.ndim != 4 or frames.shape[1] != frames.shape[2] or frames.shape[3] != 3:
            raise RejectClip(f"frames must be (N, S, S, 3), got {tuple(frames.shape)}")
        video = frames.permute(0, 3, 1, 2).float()
        if video.shape[-1] != self.image_size:
            video = F.interpolate(video, size=(self.image_size, self.image_size), mode="bicubic",
                                  align_corners=False, antialias=True).clamp(0, 255)
        return _normalise(video, self)


def load_preprocessor(checkpoint: Path):
    """The video preprocessor of a checkpoint's family."""
    if is_llava(_model_config(checkpoint).get("model_type", "")):
        return LlavaVideoPreprocessor.from_checkpoint(checkpoint)
    return VideoPreprocessor.from_checkpoint(checkpoint)


def _model_config(checkpoint: Path) -> dict:
    # A split decoder checkpoint keeps the VLM's config beside its own Llama config.json.
    checkpoint = Path(checkpoint)
    path = checkpoint / "vlm_config.json"
    return json.loads((path if path.is_file() else checkpoint / "config.json").read_text())


def _processor_config(checkpoint: Path) -> dict:
    for name in ("video_preprocessor_config.json", "preprocessor_config.json"):
        path = Path(checkpoint) / name
        if path.is_file():
            return json.loads(path.read_text())
    raise CheckpointUnusable(f"{checkpoint} has no video or image processor config")


def _normalisation(raw: dict) -> tuple:
    """(mean, std, rescale_factor) of a processor config, in the dataclasses' field order."""
    return tuple(raw["image_mean"]), tuple(raw["image_std"]), float(raw.get("rescale_factor",
                                                                            1 / 255))


def _normalise(video, pre):
    """(N, 3, H, W) float pixels in 0-255, rescaled and normalised with ``pre``'s numbers."""
    import torch

    mean = torch.tensor(pre.mean).view(1, 3, 1, 1)
    std = torch.tensor(pre.std).view(1, 3, 1, 1)
    return (video * pre.rescale_factor - mean) / std
