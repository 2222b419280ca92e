"""Hostile media in the decoder: every mutant decodes or settles as an error verdict, never raises
anything the worker would take for a transient failure (and retry into the DLQ)."""

from __future__ import annotations

import asyncio
import collections
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tools.lab.chaos.mutants import KINDS, boxes, elementary_stream, kind_of, write_mutants
from tools.lab.sample_videos import VideoSpec, write_video
from worker import pipeline as process
from worker.decode import DecodeLimits, sample_frames
from worker.fetch import FetchedObject
from worker.exceptions import SettleWithError

LIMITS = DecodeLimits(frames=4, size=56, max_duration_s=10800, max_pixels=4096 * 2304)


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    directory = tmp_path_factory.mktemp("sources")
    return [write_video(VideoSpec("h264.mp4", width=96, height=64, seconds=2, fps=8), directory),
            write_video(VideoSpec("rot.mp4", width=64, height=96, seconds=1, fps=8, rotation=90),
                        directory)]


def test_every_mutant_kind_decodes_or_settles(sources, tmp_path):
    outcomes = collections.Counter()
    for path in write_mutants(sources, 4 * len(KINDS), seed=3, directory=tmp_path):
        try:
            sample_frames(path, LIMITS)
            outcomes[(kind_of(path.name), "ok")] += 1
        except SettleWithError as exc:
            outcomes[(kind_of(path.name), exc.code)] += 1
    assert {kind for kind, _ in outcomes} == set(KINDS)
    assert {code for _, code in outcomes} <= {"ok", "not_a_video", "undecodable", "too_long",
                                              "too_many_pixels"}


def test_a_bare_h264_stream_named_mp4_settles_instead_of_raising_eperm(sources, tmp_path):
    # PyAV raises PermissionError (EPERM) seeking in a raw H.264 stream; it used to be retried.
    bare = tmp_path / "bare.mp4"
    bare.write_bytes(elementary_stream(sources[0].read_bytes()))
    assert not boxes(bare.read_bytes())  # really no MP4 container left
    with pytest.raises(SettleWithError) as exc:
        sample_frames(bare, LIMITS)
    assert exc.value.code == "undecodable"


def test_a_decode_past_the_deadline_settles_as_decode_timeout(sources, monkeypatch):
    # FFmpeg cannot be made to hang on demand (3,000 mutants never did), so the decode itself is
    # replaced by one that blocks until released: what is under test is the deadline around it.
    release = threading.Event()
    monkeypatch.setattr(process, "sample_frames", lambda path, limits: release.wait(30))
    limits = DecodeLimits(4, 56, 3600, 10**7, deadline_s=0.5)
    with ThreadPoolExecutor(1) as pool:
        started = time.monotonic()
        with pytest.raises(SettleWithError) as exc:
            asyncio.run(process.decode(_spooled(sources[0]), _media(pool, limits, sources[0])))
        assert time.monotonic() - started < 5
        release.set()
    assert exc.value.code == "decode_timeout"


def test_a_decode_within_the_deadline_returns_the_frames(sources):
    with ThreadPoolExecutor(1) as pool:
        video = asyncio.run(process.decode(_spooled(sources[0]), _media(pool, LIMITS, sources[0])))
    assert video.frames.shape == (4, 56, 56, 3)


def _spooled(path):
    """The worker's view of an object fetched whole to ``path``."""
    return FetchedObject(path=path, etag=None, size_bytes=path.stat().st_size, version_id=None)


def _media(pool, limits, path):
    """The decode stage's inputs (no S3 client: these objects are already spooled)."""
    return process.Media(s3=None, decode_pool=pool, limits=limits, max_object_bytes=10**9,
                         spool_dir=path.parent)
