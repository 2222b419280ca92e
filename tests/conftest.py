"""Shared fixtures: one embedded AWS server per test session, a fresh stack per test, media."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import pytest

from tools.embedded_aws import EmbeddedAws, StackInfo, provision
from tools.sample_videos import VideoSpec, write_video
from tools.video_files import video_files

ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = ROOT.parent / "shared" / "media"
_stack_names = itertools.count()
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


@pytest.fixture(scope="session")
def embedded_aws():
    with EmbeddedAws() as aws:
        yield aws


@pytest.fixture()
def stack(embedded_aws) -> StackInfo:
    """A freshly provisioned stack (own bucket, queues, topic) on the shared moto server."""
    return provision(embedded_aws.endpoint_url, name=f"t{next(_stack_names)}")


@pytest.fixture(scope="session")
def shared_media(tmp_path_factory) -> Path:
    """Copies of the real sample videos in ../shared/media (read-only there); generated stand-ins
    of the same names where that folder is absent, so every test runs on any clone."""
    return media_folder(SHARED_MEDIA, tmp_path_factory.mktemp("media"))


def media_folder(source: Path, target: Path) -> Path:
    """``target`` filled with the videos of ``source``, or with REAL_CLIP_STAND_INS."""
    if source.is_dir():
        for path in video_files(source):
            shutil.copy(path, target / path.name)
    else:
        for spec in REAL_CLIP_STAND_INS:
            write_video(spec, target)
    return target
