"""Generate real, playable sample videos with PyAV: for the demo, the tests and the benchmark.

Generated, not downloaded: moving colour fields and shapes, encoded with libx264 (or another
encoder PyAV ships) at a chosen size, length, frame rate and keyframe interval.  Optional rotation
metadata and odd pixel formats exercise the decoder's edge cases.
"""

from __future__ import annotations

import os
from fractions import Fraction
import shutil
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from tools.ops.video_files import video_files


@dataclass(frozen=True)
class VideoSpec:
    name: str
    width: int = 320
    height: int = 240
    seconds: float = 2.0
    fps: int = 15
    keyframe_every_s: float = 1.0
    codec: str = "libx264"
    pix_fmt: str = "yuv420p"
    rotation: int = 0  # display-matrix rotation, degrees counter-clockwise
    container: str = "mp4"
    seed: int = 0
    b_frames: int = 0  # libx264 only: B-frames between reference frames (non-reference ones)
    # "gradient": colour ramps (clips of one size look alike to a perceptual hash); "blocks": a
    # seeded grid of random colours, so that clips of different seeds are different pictures
    # (the known-content and near-duplicate tests need that; PDQ distance about 128 between them).
    scene: str = "gradient"


# Fast settings, quiet logs: these clips are test and demo inputs, not deliverables.
ENCODER_OPTIONS = {"libx264": {"preset": "ultrafast", "tune": "zerolatency"},
                   "libx265": {"preset": "ultrafast", "x265-params": "log-level=error"},
                   # One encoder thread: SVT-AV1's thread pool once hung on this loaded 2-core box.
                   "libsvtav1": {"preset": "11", "svtav1-params": "lp=1:log-level=1"}}

DEMO_SPECS = (
    VideoSpec("street-scene.mp4", seed=1),
    VideoSpec("rotated-phone.mp4", width=240, height=320, rotation=90, seed=2),
    VideoSpec("long-take.mp4", seconds=6.0, keyframe_every_s=2.0, seed=3),
    VideoSpec("webcam 10-bit.mp4", pix_fmt="yuv420p10le", seed=4),
    VideoSpec("vp9-clip.webm", codec="libvpx-vp9", container="webm", seconds=1.5, seed=5),
)


def write_video(spec: VideoSpec, directory: Path) -> Path:
    """Encode one clip into ``directory`` and return its path."""
    try:
        return _encode(spec, directory)
    finally:
        _normal_scheduling()


def _encoder_options(spec: VideoSpec) -> dict[str, str]:
    options = dict(ENCODER_OPTIONS.get(spec.codec, {}))
    if spec.b_frames:
        if spec.codec != "libx264":
            raise ValueError(f"b_frames is a libx264 option here, not {spec.codec}'s")
        # zerolatency forbids B-frames; no pyramid keeps every B-frame a non-reference frame.
        options.pop("tune", None)
        options.update({"bf": str(spec.b_frames), "x264-params": "b-pyramid=none"})
    return options


def _normal_scheduling() -> None:
    """SVT-AV1, run as root, moves the calling thread to SCHED_FIFO and leaves it there; every
    process started from it afterwards would inherit real-time priority and could starve the
    machine (seen: terraform spinning for 20 minutes). Put the thread back."""
    if hasattr(os, "sched_setscheduler") and os.sched_getscheduler(0) != os.SCHED_OTHER:
        os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))


def _encode(spec: VideoSpec, directory: Path) -> Path:
    path = directory / spec.name
    rng = np.random.default_rng(spec.seed)
    base = rng.integers(0, 255, size=3)
    with av.open(str(path), mode="w", format=spec.container) as container:
        stream = container.add_stream(spec.codec, rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, spec.pix_fmt
        stream.gop_size = max(1, int(spec.keyframe_every_s * spec.fps))
        stream.options = _encoder_options(spec)
        if spec.rotation:
            stream.set_display_rotation(spec.rotation)
        for index in range(int(spec.seconds * spec.fps)):
            frame = av.VideoFrame.from_ndarray(_picture(spec, base, index), format="rgb24")
            frame = frame.reformat(format=spec.pix_fmt)
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def write_demo_set(directory: Path) -> list[Path]:
    """The demo's handful of clips, plus one file that is not a video at all."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [write_video(spec, directory) for spec in DEMO_SPECS]
    not_video = directory / "meeting-notes.mp4"
    not_video.write_text("This upload has a video suffix but is a text file.\n")
    return paths + [not_video]


def _picture(spec: VideoSpec, base: np.ndarray, index: int) -> np.ndarray:
    if spec.scene == "blocks":
        return _blocks(spec, index)
    y, x = np.mgrid[0:spec.height, 0:spec.width]
    phase = index / max(spec.fps, 1)
    img = np.empty((spec.height, spec.width, 3), dtype=np.uint8)
    img[..., 0] = (base[0] + x * 255 // spec.width + index * 3) % 256
    img[..., 1] = (base[1] + y * 255 // spec.height) % 256
    img[..., 2] = (base[2] + (x + y) // 4 + int(40 * np.sin(phase))) % 256
    cx = int((0.5 + 0.4 * np.sin(phase)) * spec.width)
    cy = int((0.5 + 0.4 * np.cos(phase)) * spec.height)
    img[max(0, cy - 12):cy + 12, max(0, cx - 12):cx + 12] = (255, 255, 255)
    return img


def make_undecodable(tmp_path: Path) -> Path:
    """A valid MP4 container whose H.264 payload has been zeroed: opens, but no frame decodes."""
    path = write_video(VideoSpec("broken.mp4", width=64, height=64, seconds=1), tmp_path)
    data = bytearray(path.read_bytes())
    start = data.index(b"mdat") + 4
    with av.open(str(path)) as container:
        payload = sum(p.size for p in container.demux(video=0) if p.size)
    data[start:start + payload] = bytes(payload)
    path.write_bytes(bytes(data))
    return path


# Where ../shared/media is absent, generated clips of the same names stand in for the real ones,
# with the properties the tests rely on: codec, container, bit depth, size, length, keyframes.
REAL_CLIP_STAND_INS = (
    VideoSpec("nasa_13013.mp4", width=320, height=180, seconds=13.1, fps=10,
              keyframe_every_s=8.0, seed=11),
    VideoSpec("h265_video.mp4", width=128, height=128, seconds=1.0, fps=25, codec="libx265",
              seed=12),
    VideoSpec("av1_video.mkv", width=640, height=360, seconds=5.0, fps=10, codec="libsvtav1",
              container="matroska", seed=13),
    VideoSpec("bt2020_10bit.mp4", width=320, height=240, seconds=2.0, fps=15, codec="libx265",
              pix_fmt="yuv420p10le", seed=14),
)


def media_folder(source: Path, target: Path) -> Path:
    """``target`` filled with the videos of ``source``, or with REAL_CLIP_STAND_INS."""
    if source.is_dir():
        for path in video_files(source):
            shutil.copy(path, target / path.name)
    else:
        for spec in REAL_CLIP_STAND_INS:
            write_video(spec, target)
    return target


def _blocks(spec: VideoSpec, index: int) -> np.ndarray:
    """A 6 x 8 grid of the seed's random colours, drifting slowly, with a moving white square."""
    grid = np.random.default_rng(spec.seed).integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
    rows = (np.arange(spec.height) * 6 // spec.height)
    cols = ((np.arange(spec.width) + index) * 8 // spec.width) % 8
    img = grid[rows][:, cols].copy()
    phase = index / max(spec.fps, 1)
    cx = int((0.5 + 0.3 * np.sin(phase)) * spec.width)
    cy = int((0.5 + 0.3 * np.cos(phase)) * spec.height)
    half = max(2, spec.height // 16)
    img[max(0, cy - half):cy + half, max(0, cx - half):cx + half] = (255, 255, 255)
    return img


def transcode(source: Path, target: Path, width: int, height: int, crf: int = 30,
              codec: str = "libx264") -> Path:
    """A re-encode of ``source``: every frame decoded, scaled to ``width`` x ``height`` and encoded
    again (another resolution and bitrate of the same pictures, as a re-upload would be)."""
    try:
        with av.open(str(source)) as src, av.open(str(target), mode="w") as dst:
            video = src.streams.video[0]
            rate = video.average_rate or Fraction(15)
            stream = dst.add_stream(codec, rate=rate)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.options = {**ENCODER_OPTIONS.get(codec, {}), "crf": str(crf)}
            for index, frame in enumerate(src.decode(video)):
                scaled = frame.reformat(width=width, height=height, format="yuv420p")
                scaled.pts, scaled.time_base = index, 1 / Fraction(rate)  # the source's clock
                dst.mux(stream.encode(scaled))
            dst.mux(stream.encode(None))
    finally:
        _normal_scheduling()
    return target
