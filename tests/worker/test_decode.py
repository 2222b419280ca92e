from dataclasses import replace

import av
import numpy as np
import pytest

from worker.decode import DecodeLimits, sample_frames
from worker.exceptions import SettleWithError
from tools.lab.sample_videos import VideoSpec, make_undecodable, write_video

LIMITS = DecodeLimits(frames=8, size=112, max_duration_s=3600, max_pixels=4096 * 2304)


@pytest.mark.parametrize("name, codec", [("nasa_13013.mp4", "h264"), ("h265_video.mp4", "hevc"),
                                         ("av1_video.mkv", "libdav1d"),
                                         ("bt2020_10bit.mp4", "hevc")])
def test_real_clips_sample_uniformly_to_one_shape(shared_media, name, codec):
    video = sample_frames(shared_media / name, LIMITS)
    assert video.frames.shape == (8, 112, 112, 3) and video.frames.dtype == np.uint8
    assert video.codec == codec
    assert list(video.timestamps_ms) == sorted(video.timestamps_ms)
    assert video.timestamps_ms[-1] <= video.duration_s * 1000
    assert video.frames.max() > 0  # real pixels, not the black letterbox only


def test_seeking_decodes_fewer_frames_than_the_whole_video(shared_media):
    path = shared_media / "nasa_13013.mp4"
    with av.open(str(path)) as container:
        total = sum(1 for _ in container.decode(video=0))
    video = sample_frames(path, LIMITS)
    assert video.frames_decoded < total  # keyframes only at 0 s and 8 s: little to skip
    # Uniform spread: sample i lies within half a spacing before its target (i + 0.5) * spacing.
    spacing = video.duration_s * 1000 / 8
    for i, t in enumerate(video.timestamps_ms):
        assert i * spacing - 1 <= t <= (i + 0.5) * spacing + 1


def test_a_keyframe_near_the_target_costs_one_decoded_frame(tmp_path):
    path = write_video(VideoSpec("gop.mp4", width=128, height=72, seconds=16, fps=10,
                                 keyframe_every_s=2.0), tmp_path)
    video = sample_frames(path, LIMITS)  # targets every 2 s, keyframes every 2 s
    assert video.frames_decoded == 8
    assert len(set(video.timestamps_ms)) == 8


def test_decoding_forward_through_a_long_gop_skips_non_reference_frames(tmp_path):
    # Keyframes 6 s apart, samples 1.5 s apart: most samples are decoded forward from the frame
    # in hand, through P-frames and the non-reference B-frames between them.
    path = write_video(VideoSpec("bframes.mp4", width=128, height=72, seconds=12, fps=30,
                                 keyframe_every_s=6.0, b_frames=3), tmp_path)
    every = sample_frames(path, replace(LIMITS, skip_nonreference=False))
    skipping = sample_frames(path, LIMITS)
    assert skipping.frames_decoded < 0.8 * every.frames_decoded
    # Every frame is decoded again from a guard before each window: the same frames are taken.
    assert skipping.timestamps_ms == every.timestamps_ms
    np.testing.assert_array_equal(skipping.frames, every.frames)


def test_skipping_never_moves_a_sample_on_a_short_low_rate_clip(tmp_path):
    # 5 fps with B-frames: one B-run is longer than the tolerance; skipping it would take a later
    # frame (and the same one twice). The guard (32 frames) keeps every frame decoded here.
    path = write_video(VideoSpec("short.mp4", width=64, height=64, seconds=1, fps=5,
                                 keyframe_every_s=10.0, b_frames=3), tmp_path)
    every = sample_frames(path, replace(LIMITS, skip_nonreference=False))
    skipping = sample_frames(path, LIMITS)
    assert skipping.timestamps_ms == every.timestamps_ms
    assert skipping.frames_decoded == every.frames_decoded


def test_rotation_is_applied_before_letterboxing(tmp_path):
    # A 96x160 portrait stream with a 90 degree display matrix shows as landscape.
    path = write_video(VideoSpec("r.mp4", width=96, height=160, rotation=90, seconds=1), tmp_path)
    frame = sample_frames(path, LIMITS).frames[0]
    rows = np.where(frame.sum(axis=(1, 2)) > 0)[0]
    cols = np.where(frame.sum(axis=(0, 2)) > 0)[0]
    assert cols[-1] - cols[0] > rows[-1] - rows[0]  # wider than tall: rotated


def test_odd_pixel_formats_become_rgb(tmp_path):
    for spec in (VideoSpec("ten.mp4", pix_fmt="yuv420p10le", seconds=1),
                 VideoSpec("vp9.webm", codec="libvpx-vp9", container="webm", seconds=1)):
        video = sample_frames(write_video(spec, tmp_path), LIMITS)
        assert video.frames.shape == (8, 112, 112, 3)


def test_limits_are_checked_from_headers(tmp_path):
    path = write_video(VideoSpec("long.mp4", width=64, height=64, seconds=4, fps=5), tmp_path)
    with pytest.raises(SettleWithError) as too_long:
        sample_frames(path, DecodeLimits(8, 112, max_duration_s=3, max_pixels=10**7))
    assert too_long.value.code == "too_long"
    with pytest.raises(SettleWithError) as too_big:
        sample_frames(path, DecodeLimits(8, 112, max_duration_s=60, max_pixels=64 * 63))
    assert too_big.value.code == "too_many_pixels"


def test_not_a_video_and_audio_only(tmp_path):
    text = tmp_path / "notes.mp4"
    text.write_text("hello")
    with pytest.raises(SettleWithError) as exc:
        sample_frames(text, LIMITS)
    assert exc.value.code == "not_a_video"
    audio = tmp_path / "tone.m4a"
    with av.open(str(audio), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 16000
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(SettleWithError, match="no video stream") as exc:
        sample_frames(audio, LIMITS)
    assert exc.value.code == "not_a_video"


def test_zeroed_payload_is_undecodable(tmp_path):
    with pytest.raises(SettleWithError) as exc:
        sample_frames(make_undecodable(tmp_path), LIMITS)
    assert exc.value.code == "undecodable"
