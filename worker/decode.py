"""Sample N frames uniformly over a video with PyAV, by seeking rather than decoding every frame.

Runs in the decode thread pool: FFmpeg releases the GIL while it decodes.  Limits on duration and
pixels are checked from the container headers before any frame is decoded.  Every video comes out
the same shape, (N, S, S, 3) uint8 RGB, letterboxed, because compiled model graphs take one shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

import av
import numpy as np

from worker.exceptions import SettleWithError


@dataclass(frozen=True)
class DecodeLimits:
    frames: int
    size: int
    max_duration_s: float
    max_pixels: int
    deadline_s: float = 120.0  # wall time one video may take to decode (decode_timeout after)
    # Decode forward through a long GOP without its non-reference frames (see _sample).
    skip_nonreference: bool = True


@dataclass(frozen=True)
class SampledVideo:
    """The frames a model sees, with where they came from."""

    frames: np.ndarray  # (N, S, S, 3) uint8
    timestamps_ms: tuple[int, ...]
    duration_s: float
    width: int
    height: int
    codec: str
    frames_decoded: int  # how much decoding the sampling cost, for the decode benchmark


class ReadPlanner(Protocol):
    """What a source read over the network needs to know before the sampler seeks (ranged.py)."""

    def check_index(self, container: av.container.InputContainer,
                    stream: av.video.stream.VideoStream) -> None: ...

    def prefetch(self, stream: av.video.stream.VideoStream, targets: list[float]) -> None: ...


def sample_frames(path: str | Path | BinaryIO, limits: DecodeLimits,
                  reads: ReadPlanner | None = None) -> SampledVideo:
    """Decode ``limits.frames`` frames spread over the video; raise SettleWithError when it can't.

    ``path`` is a file name or a seekable binary file object (ranged reads); ``reads``, when
    given, checks the container's index before the sampler needs it and prefetches the byte ranges
    of the packets it will decode.

    Decoding a local file is deterministic: whatever the demuxer or decoder raises on it (an
    FFmpeg error such as EPERM while seeking, or PyAV's AttributeError on a stream header without
    a frame size) will be raised again on every try, so it settles as ``undecodable`` rather than
    coming back.  Only a MemoryError of our own process is left to propagate: it says more about
    the worker's state than about the file.
    """
    try:
        return _sample(path, limits, reads)
    except SettleWithError:
        raise
    except MemoryError as exc:
        if not isinstance(exc, av.error.FFmpegError):
            raise
        raise SettleWithError("undecodable", f"FFmpeg ran out of memory on it ({exc})") from None
    except Exception as exc:
        raise SettleWithError("undecodable", f"the decoder failed on this file "
                              f"({type(exc).__name__}: {_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    return str(getattr(exc, "strerror", None) or exc or type(exc).__name__)[:200]


def _sample(path: str | Path | BinaryIO, limits: DecodeLimits,
            reads: ReadPlanner | None) -> SampledVideo:
    source = path if hasattr(path, "read") else str(path)
    try:
        container = av.open(source, metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        raise SettleWithError("not_a_video", f"not a media container FFmpeg can read "
                              f"({_reason(exc)})") from None
    with container:
        if not container.streams.video:
            raise SettleWithError("not_a_video", "the file has no video stream")
        stream = container.streams.video[0]
        # Slice threading, not frame threading: a frame-threaded decoder refills its pipeline of
        # frames after every seek, so for a few frames per seek it decodes more and is slower
        # (measured on 720p H.264: 0.9 s against 1.2 s wall for 10 clips; see BENCHMARKS.md).
        # Parallelism across videos comes from the decode thread pool.
        stream.thread_type = "SLICE"
        _check_pixels(stream, limits)
        if reads is not None:
            reads.check_index(container, stream)
        duration = _duration_s(container, stream, limits)
        targets = [duration * (i + 0.5) / limits.frames for i in range(limits.frames)]
        if reads is not None:
            reads.prefetch(stream, targets)
        skipper = _ForwardSkip(stream) if limits.skip_nonreference else None
        frames, times, decoded = _seek_and_grab(container, stream, targets, limits.size, skipper)
    return SampledVideo(frames=np.stack(frames), timestamps_ms=tuple(int(t * 1000) for t in times),
                        duration_s=round(duration, 3), width=stream.width, height=stream.height,
                        codec=stream.codec_context.name, frames_decoded=decoded)


def _check_pixels(stream: av.video.stream.VideoStream, limits: DecodeLimits) -> None:
    # PyAV raises AttributeError for the size of a stream whose codec context never opened.
    if not getattr(stream, "width", 0) or not getattr(stream, "height", 0):
        raise SettleWithError("undecodable", "the video stream has no frame size in its header")
    if stream.width * stream.height > limits.max_pixels:
        raise SettleWithError("too_many_pixels", f"{stream.width}x{stream.height} is over the "
                              f"limit of {limits.max_pixels} pixels per frame")


def _duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                limits: DecodeLimits) -> float:
    if stream.duration and stream.time_base:
        duration = float(stream.duration * stream.time_base)
    elif container.duration:
        duration = container.duration / av.time_base
    else:
        duration = _duration_from_packets(container, stream)
    if duration > limits.max_duration_s:
        raise SettleWithError("too_long", f"{duration:.1f} s is over the limit of "
                              f"{limits.max_duration_s:.0f} s")
    return max(duration, 0.0)


def _duration_from_packets(container: av.container.InputContainer,
                           stream: av.video.stream.VideoStream) -> float:
    """No duration in the headers: demux (not decode) to the last timestamp, then rewind."""
    last = 0.0
    for packet in container.demux(stream):
        if packet.pts is not None and packet.time_base is not None:
            last = max(last, float((packet.pts + (packet.duration or 0)) * packet.time_base))
    container.seek(0)
    return last


class _ForwardSkip:
    """Skip non-reference frames while decoding forward to a sample that lies far past the frame
    in hand (a GOP longer than the tolerance), and decode everything again from a guard before
    the sample's window on.

    A non-reference frame (most B-frames) is displayed but never used to decode another, so
    leaving it out cannot change any later picture; and since the decoder works again on every
    frame from ``guard_s`` before the window on, the frame taken is the one a full forward decode
    takes.  The guard is 32 frames: more than the reordering H.264 and HEVC allow (16), counted
    twice because the switch is made on an output frame, which can lag the packets already
    decoded.  Keyframes are reference frames: a seek landing near its target costs one frame as
    before.  Measured on 720p H.264 with 10 s GOPs and 3 B-frames: 566 -> 281 frames decoded,
    0.31 -> 0.20 CPU s a clip (BENCHMARKS.md).
    """

    GUARD_FRAMES = 32

    def __init__(self, stream: av.video.stream.VideoStream) -> None:
        self.context = stream.codec_context
        rate = stream.average_rate or stream.guessed_rate
        self.guard_s = self.GUARD_FRAMES / float(rate) if rate else 2.0

    def start(self, from_s: float | None, earliest: float) -> None:
        """Before decoding forward from ``from_s`` (the keyframe a seek lands on, or the frame in
        hand; None when unknown) to ``earliest``."""
        far = from_s is not None and earliest - from_s > self.guard_s
        self.context.skip_frame = "NONREF" if far else "DEFAULT"

    def decoded(self, time_s: float | None, earliest: float) -> None:
        if time_s is None or time_s >= earliest - self.guard_s:
            self.context.skip_frame = "DEFAULT"


def _seek_and_grab(container: av.container.InputContainer, stream: av.video.stream.VideoStream,
                   targets: list[float], size: int, skipper: _ForwardSkip | None = None,
                   ) -> tuple[list[np.ndarray], list[float], int]:
    """One frame per target: the first frame within half a sample spacing before the target.

    That tolerance lets a seek stop at the keyframe it lands on (one decoded frame) whenever the
    keyframe is close enough to the target, instead of decoding on through the GOP to the exact
    time; the samples stay spread uniformly, each within half a spacing of its target.
    """
    tolerance = (targets[1] - targets[0]) / 2 if len(targets) > 1 else targets[0]
    frames: list[np.ndarray] = []
    times: list[float] = []
    decoded = 0
    keyframes = _keyframe_times(stream)
    frame_iter = None
    current = None
    for target in targets:
        earliest = target - tolerance
        if _must_seek(current, earliest, target, keyframes):
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
            frame_iter = container.decode(stream)
            start = _keyframe_before(keyframes, target)
        else:
            start = current.time if current is not None else None
        try:
            current, cost = _first_frame_at(frame_iter, earliest, current, skipper, start)
        except av.error.FFmpegError as exc:
            if not frames:
                raise SettleWithError("undecodable", f"FFmpeg could not decode ({_reason(exc)})"
                                      ) from None
            break  # a damaged tail: keep what was sampled, repeat the last frame below
        decoded += cost
        if current is None:
            break
        frames.append(letterbox(current, size))
        times.append(current.time if current.time is not None else target)
    if not frames:
        raise SettleWithError("undecodable", "no frame could be decoded")
    while len(frames) < len(targets):  # static shapes: pad a short or damaged video
        frames.append(frames[-1])
        times.append(times[-1])
    return frames, times, decoded


def _keyframe_times(stream: av.video.stream.VideoStream) -> list[float] | None:
    """Keyframe times from the container's index (MP4 has one; Matroska may not)."""
    entries = stream.index_entries
    if entries is None or len(entries) < 2:
        return None
    return sorted(float(e.timestamp * stream.time_base) for e in entries if e.is_keyframe)


def _must_seek(current, earliest: float, target: float, keyframes: list[float] | None) -> bool:
    """Seek unless decoding forward from the current frame is no more work than a seek would be."""
    if current is None or current.time is None:
        return True
    if current.time >= earliest:
        return False  # the frame in hand already serves this target
    if keyframes is None:
        return earliest - current.time > 1.0  # no index: a guess at a typical GOP
    nearest = max((k for k in keyframes if k <= target), default=0.0)
    return nearest > current.time


def _keyframe_before(keyframes: list[float] | None, target: float) -> float | None:
    """Where a backward seek to ``target`` lands, from the index; None without one."""
    if keyframes is None:
        return None
    return max((k for k in keyframes if k <= target), default=None)


def _first_frame_at(frame_iter, earliest: float, previous, skipper: _ForwardSkip | None = None,
                    start: float | None = None):
    """The first frame at or after ``earliest``, decoding forward (or the last one there is)."""
    if previous is not None and (previous.time or 0) >= earliest:
        return previous, 0
    if skipper is not None:
        skipper.start(start, earliest)
    cost = 0
    last = None
    for frame in frame_iter:
        cost += 1
        last = frame
        if frame.time is None or frame.time >= earliest:
            break
        if skipper is not None:
            skipper.decoded(frame.time, earliest)
    if skipper is not None:
        skipper.decoded(None, earliest)  # back to every frame for whatever comes next
    return last, cost


def letterbox(frame: av.VideoFrame, size: int) -> np.ndarray:
    """Scale to fit a size x size square, keeping the aspect ratio (after rotation), pad black."""
    rotation = (frame.rotation or 0) % 360
    width, height = (frame.height, frame.width) if rotation in (90, 270) else (frame.width,
                                                                               frame.height)
    scale = size / max(width, height)
    out_w, out_h = max(2, round(width * scale)), max(2, round(height * scale))
    scaled_w, scaled_h = (out_h, out_w) if rotation in (90, 270) else (out_w, out_h)
    rgb = frame.reformat(width=scaled_w, height=scaled_h, format="rgb24").to_ndarray()
    if rotation:
        # The display matrix rotates counter-clockwise by `rotation` degrees.
        rgb = np.rot90(rgb, k=rotation // 90)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - rgb.shape[0]) // 2, (size - rgb.shape[1]) // 2
    canvas[top:top + rgb.shape[0], left:left + rgb.shape[1]] = rgb
    return canvas
