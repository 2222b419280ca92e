"""Where ../shared/media is absent, the generated stand-ins keep what the tests rely on."""

from __future__ import annotations

from pathlib import Path

from tools.lab.sample_videos import media_folder
from worker.decode import DecodeLimits, sample_frames

EXPECTED = {  # name: (codec as decoded, width x height, seconds)
    "nasa_13013.mp4": ("h264", (320, 180), 13.1),
    "h265_video.mp4": ("hevc", (128, 128), 1.0),
    "av1_video.mkv": ("libdav1d", (640, 360), 5.0),
    "bt2020_10bit.mp4": ("hevc", (320, 240), 2.0),
}


def test_stand_ins_have_the_real_clips_names_codecs_sizes_and_lengths(tmp_path):
    folder = media_folder(tmp_path / "no-such-folder", tmp_path)
    assert sorted(p.name for p in folder.iterdir() if p.is_file()) == sorted(EXPECTED)
    for name, (codec, size, seconds) in EXPECTED.items():
        video = sample_frames(Path(folder, name), DecodeLimits(4, 56, 3600.0, 10**8))
        assert (video.codec, (video.width, video.height), round(video.duration_s, 1)) == (
            codec, size, seconds), name
