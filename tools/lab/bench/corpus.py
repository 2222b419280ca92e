"""The benchmark corpus: generated clips of a realistic shape, cached by spec, plus real clips.

Encoding 720p clips costs minutes on two cores, so each clip is written once into
``<cache_dir>/bench-corpus/<spec key>/`` and reused by later runs.  The frames are cheap to make
(a scrolling gradient and a moving square, built in YUV so no colour conversion runs per frame) but
encoded with libx264 at the spec's size, rate and keyframe interval, which is what decoding cost
depends on.  Real clips from ``../shared/media`` join the corpus when that folder exists.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import av
import numpy as np

from tools.ops.video_files import video_files

CORPUS_VERSION = 1  # bump when the generator's output changes, so caches are rebuilt


def _cache_key(fields: dict) -> str:
    """The cache folder's name for a spec's fields: changing it orphans every cached encode."""
    raw = json.dumps({**fields, "v": CORPUS_VERSION}, sort_keys=True)
    return hashlib.sha256(raw.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class CorpusSpec:
    """Shape of the generated clips; ``distinct`` clips are encoded and reused round-robin."""

    width: int = 1280
    height: int = 720
    seconds: float = 30.0
    fps: int = 30
    keyframe_every_s: float = 2.0
    distinct: int = 6
    b_frames: int = 0  # non-reference B-frames between reference frames (0: P-frames only)

    @property
    def key(self) -> str:
        fields = asdict(self)
        if not self.b_frames:  # the key of every spec cached before B-frames existed
            del fields["b_frames"]
        return _cache_key(fields)

    def describe(self) -> str:
        b_frames = f", {self.b_frames} B-frames between references" if self.b_frames else ""
        return (f"{self.width}x{self.height}, {self.seconds:g} s at {self.fps} fps, H.264, "
                f"a keyframe every {self.keyframe_every_s:g} s{b_frames}")


@dataclass(frozen=True)
class CorpusVideo:
    """One file of the corpus and where it came from."""

    path: Path
    origin: str  # "generated" or "shared-media"
    size_bytes: int


def build_corpus(spec: CorpusSpec, cache_dir: Path, shared_media: Path | None = None,
                 on_encoded: Callable[[Path], None] = lambda path: None) -> list[CorpusVideo]:
    """The generated clips (encoding only those not cached yet), then any real clips."""
    folder = Path(cache_dir).expanduser() / "bench-corpus" / spec.key
    folder.mkdir(parents=True, exist_ok=True)
    videos = []
    for index in range(spec.distinct):
        path = folder / f"clip-{index:03d}.mp4"
        if not path.is_file():
            _encode_atomically(spec, index, path)
            on_encoded(path)
        videos.append(CorpusVideo(path, "generated", path.stat().st_size))
    if shared_media is not None and shared_media.is_dir():
        videos += [CorpusVideo(p, "shared-media", p.stat().st_size)
                   for p in video_files(shared_media)]
    return videos


def _encode_atomically(spec: CorpusSpec, index: int, path: Path) -> None:
    # Write beside the target and rename: a run killed mid-encode must not leave a cached stub.
    handle, scratch = tempfile.mkstemp(prefix=".clip-", suffix=".mp4", dir=path.parent)
    os.close(handle)
    try:
        encode_clip(spec, index, Path(scratch))
        os.replace(scratch, path)
    finally:
        Path(scratch).unlink(missing_ok=True)


def encode_clip(spec: CorpusSpec, seed: int, path: Path) -> Path:
    """Encode one synthetic clip of ``spec`` (H.264, yuv420p) to ``path``."""
    rng = np.random.default_rng(seed)
    luma = _texture(spec.width, spec.height, rng)
    chroma = rng.integers(64, 192, size=2, dtype=np.uint8)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "yuv420p"
        stream.gop_size = max(1, round(spec.keyframe_every_s * spec.fps))
        # No scene-cut keyframes: the keyframe interval is the spec's, as on a real upload.
        stream.options = {"preset": "ultrafast", "sc_threshold": "0"}
        if spec.b_frames:  # no pyramid: every B-frame is a non-reference frame
            stream.options |= {"bf": str(spec.b_frames), "x264-params": "b-pyramid=none"}
        for index in range(round(spec.seconds * spec.fps)):
            frame = av.VideoFrame.from_ndarray(_yuv_frame(spec, luma, chroma, index),
                                               format="yuv420p")
            frame.pts = index
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _texture(width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:2 * width]
    phase = rng.uniform(0, 2 * np.pi)
    wave = 96 + 64 * np.sin(x / 37.0 + phase) * np.cos(y / 23.0) + rng.normal(0, 8, x.shape)
    return np.clip(wave, 0, 255).astype(np.uint8)


def _yuv_frame(spec: CorpusSpec, luma: np.ndarray, chroma: np.ndarray, index: int) -> np.ndarray:
    """One yuv420p frame as PyAV wants it: Y rows, then U and V packed as half-height rows."""
    w, h = spec.width, spec.height
    shift = (index * 4) % w
    y_plane = luma[:, shift:shift + w].copy()
    t = index / spec.fps
    cx, cy = int((0.5 + 0.4 * np.sin(t)) * w), int((0.5 + 0.4 * np.cos(t)) * h)
    half = max(4, h // 20)
    y_plane[max(0, cy - half):cy + half, max(0, cx - half):cx + half] = 235
    u = np.full((h // 2, w // 2), chroma[0], np.uint8)
    v = np.full((h // 2, w // 2), (int(chroma[1]) + index) % 256, np.uint8)
    return np.concatenate([y_plane, u.reshape(h // 4, w), v.reshape(h // 4, w)])


def long_gop_spec(corpus: CorpusSpec) -> CorpusSpec:
    """A clip of the corpus's frame size and rate, at least 30 s long, with a keyframe every 10 s
    and 3 B-frames between references: most samples are decoded forward from a keyframe, far
    enough (more than the sampler's 32-frame guard) for skipping non-reference frames to pay."""
    return replace(corpus, seconds=max(30.0, corpus.seconds), keyframe_every_s=10.0, distinct=1,
                   b_frames=3)


@dataclass(frozen=True)
class LongClipSpec:
    """One long clip for the ranged-read measurement: a ``segment_s`` clip of the corpus's kind
    (scrolling texture, a keyframe every ``keyframe_every_s``), encoded once and repeated by
    stream copy to ``seconds``, so that ten minutes of 720p cost one short encode."""

    width: int = 1280
    height: int = 720
    seconds: float = 600.0
    fps: int = 15
    keyframe_every_s: float = 10.0
    segment_s: float = 20.0

    @property
    def key(self) -> str:
        return _cache_key(asdict(self))

    def describe(self) -> str:
        return (f"{self.width}x{self.height}, {self.seconds:g} s at {self.fps} fps, H.264, a "
                f"keyframe every {self.keyframe_every_s:g} s ({self.segment_s:g} s encoded, "
                "repeated by stream copy)")


def build_long_clip(spec: LongClipSpec, cache_dir: Path) -> Path:
    """The long clip, built once and cached under ``<cache_dir>/bench-long/``."""
    path = Path(cache_dir).expanduser() / "bench-long" / f"long-{spec.key}.mp4"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, scratch = tempfile.mkstemp(prefix=".long-", suffix=".mp4", dir=path.parent)
    os.close(handle)
    segment = Path(scratch).with_suffix(".segment.mp4")
    try:
        encode_clip(CorpusSpec(spec.width, spec.height, spec.segment_s, spec.fps,
                               spec.keyframe_every_s, 1), 0, segment)
        _repeat(segment, Path(scratch), max(1, round(spec.seconds / spec.segment_s)))
        os.replace(scratch, path)
    finally:
        Path(scratch).unlink(missing_ok=True)
        segment.unlink(missing_ok=True)
    return path


def _repeat(segment: Path, path: Path, times: int) -> None:
    """Concatenate ``times`` copies of ``segment`` by stream copy (timestamps shifted)."""
    with av.open(str(segment)) as source:
        packets = [p for p in source.demux(source.streams.video[0]) if p.size]
        stream_in = source.streams.video[0]
        span = max(p.pts + (p.duration or 0) for p in packets)
        with av.open(str(path), mode="w", format="mp4") as container:
            stream = container.add_stream_from_template(stream_in)
            for copy in range(times):
                for packet in packets:
                    out = av.Packet(bytes(packet))
                    out.pts, out.dts = packet.pts + copy * span, packet.dts + copy * span
                    out.duration, out.time_base = packet.duration, packet.time_base
                    out.is_keyframe = packet.is_keyframe
                    out.stream = stream
                    container.mux(out)
