"""Frame sampling as the worker does it, against decoding every frame, on the same files.

``decode_every_frame`` is what a first version typically does and what the naive worker uses:
decode the whole stream and keep N frames spread over it.  It is written to be kind to itself: it
converts only the N kept frames to RGB, not every frame, so the comparison measures decoding alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import av
import numpy as np

from worker.decode import DecodeLimits, SampledVideo, letterbox, sample_frames


@dataclass(frozen=True)
class FullDecode:
    """N frames picked after decoding the whole stream, and how many frames that cost."""

    frames: np.ndarray  # (N, S, S, 3) uint8
    frames_decoded: int


@dataclass(frozen=True)
class DecodeComparison:
    """Seconds and frames decoded for the whole corpus, both ways."""

    videos: int
    sampled_s: float
    every_frame_s: float
    sampled_cpu_s: float  # process CPU time, FFmpeg's own threads included
    every_frame_cpu_s: float
    sampled_frames_decoded: int
    every_frame_frames_decoded: int

    @property
    def speedup(self) -> float:
        return self.every_frame_s / self.sampled_s


def decode_every_frame(path: str | Path, frames: int, size: int) -> FullDecode:
    """Decode every frame of ``path``; keep ``frames`` of them, evenly spread, letterboxed."""
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        total = stream.frames
        if total <= 0:  # no frame count in the header: keep them all, pick afterwards
            decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
            picks = [decoded[i * len(decoded) // frames] for i in range(frames)]
            return FullDecode(np.stack([_fit(p, size) for p in picks]), len(decoded))
        wanted = {min(total - 1, int(total * (i + 0.5) / frames)) for i in range(frames)}
        kept, count = [], 0
        for count, frame in enumerate(container.decode(stream), start=1):
            if count - 1 in wanted:
                kept.append(_fit(frame.to_ndarray(format="rgb24"), size))
    while len(kept) < frames:  # the header over-counted: repeat the last frame
        kept.append(kept[-1])
    return FullDecode(np.stack(kept), count)


def compare_decoding(paths: Sequence[Path], limits: DecodeLimits,
                     advance: Callable[[float], None] = lambda n: None
                     ) -> tuple[DecodeComparison, list[SampledVideo]]:
    """Time both ways over ``paths``; also return the sampled videos (the model-only input)."""
    sampled, every_frames = [], 0
    wall, cpu = [0.0, 0.0], [0.0, 0.0]  # [sampled, every frame]
    for path in paths:
        with _clock(wall, cpu, 0):
            sampled.append(sample_frames(path, limits))
        with _clock(wall, cpu, 1):
            every_frames += decode_every_frame(path, limits.frames, limits.size).frames_decoded
        advance(1)
    comparison = DecodeComparison(len(paths), wall[0], wall[1], cpu[0], cpu[1],
                                  sum(v.frames_decoded for v in sampled), every_frames)
    return comparison, sampled


@contextmanager
def _clock(wall: list[float], cpu: list[float], slot: int) -> Iterator[None]:
    started, started_cpu = time.perf_counter(), time.process_time()
    yield
    wall[slot] += time.perf_counter() - started
    cpu[slot] += time.process_time() - started_cpu


def _fit(rgb: np.ndarray, size: int) -> np.ndarray:
    """Letterbox an RGB array into a size x size square (nearest-neighbour, as a first version)."""
    height, width = rgb.shape[:2]
    scale = size / max(height, width)
    rows = (np.arange(max(2, round(height * scale))) / scale).astype(int).clip(0, height - 1)
    cols = (np.arange(max(2, round(width * scale))) / scale).astype(int).clip(0, width - 1)
    small = rgb[rows][:, cols]
    canvas = np.zeros((size, size, 3), np.uint8)
    top, left = (size - small.shape[0]) // 2, (size - small.shape[1]) // 2
    canvas[top:top + small.shape[0], left:left + small.shape[1]] = small
    return canvas


def sample_keyframes(path: str | Path, limits: DecodeLimits) -> int:
    """Experimental: take the keyframe at or before each target instead of the exact frame.

    Not what the worker does; measured beside it because it bounds the decoding cost at one frame
    per sample (the ``keyframe_speedup`` figure).  Frame threading, as first measured.  Returns the
    frames decoded.
    """
    return _one_keyframe_per_sample(path, limits, "AUTO")


def decode_floor(path: str | Path, limits: DecodeLimits) -> int:
    """The floor of sampling: open, then per sample seek to the keyframe before the target and
    decode that one frame and letterbox it; slice threading, as the worker's sampler.

    Nothing cheaper returns N frames spread over the video: every sample needs at least one
    decoded picture, and a keyframe is the only one that decodes alone.  Returns frames decoded.
    """
    return _one_keyframe_per_sample(path, limits, "SLICE")


def _one_keyframe_per_sample(path: str | Path, limits: DecodeLimits, thread_type: str) -> int:
    # The worker's own letterbox keeps the comparison about decoding, not about resizing.
    with av.open(str(path), metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_type = thread_type
        duration = float(stream.duration * stream.time_base) if stream.duration else (
            (container.duration or 0) / av.time_base)
        for i in range(limits.frames):
            target = duration * (i + 0.5) / limits.frames
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
            frame = next(container.decode(stream), None)
            if frame is not None:
                letterbox(frame, limits.size)
    return limits.frames


def floor_cpu_s(paths: Sequence[Path], limits: DecodeLimits) -> dict[str, float]:
    """Process CPU seconds of ``decode_floor`` and of the worker's sampler, per file name."""
    floors, sampled = {}, {}
    for path in paths:
        for out, run in ((floors, decode_floor), (sampled, sample_frames)):
            started = time.process_time()
            run(path, limits)
            out[path.name] = time.process_time() - started
    return {"floor": floors, "sampled": sampled}


def skip_nonreference_cpu_s(path: Path, limits: DecodeLimits) -> dict[str, float | int]:
    """The worker's sampler on ``path`` with and without skipping non-reference frames while it
    decodes forward: process CPU seconds (best of three) and frames decoded, each way."""
    result: dict[str, float | int] = {}
    for name, skip in (("skipping", True), ("decoding_all", False)):
        each = replace(limits, skip_nonreference=skip)
        best = float("inf")
        for _ in range(3):
            started = time.process_time()
            video = sample_frames(path, each)
            best = min(best, time.process_time() - started)
        result[f"{name}_cpu_s"] = round(best, 4)
        result[f"{name}_frames_decoded"] = video.frames_decoded
    result["speedup"] = round(result["decoding_all_cpu_s"] / result["skipping_cpu_s"], 3)
    return result
