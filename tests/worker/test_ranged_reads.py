"""Ranged reads against moto over HTTP: the same frames as a whole download, one version only.

The sizes are shrunk (4 KiB head, 8 KiB blocks) so that small test files exercise every path: the
head, misses, coalesced prefetches, the request budget and the fallback to the whole object.
"""

from __future__ import annotations

import asyncio
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest

from tools.lab.bench.corpus import CorpusSpec, encode_clip
from worker.aws import AsyncClients, boto3_client
from worker.decode import DecodeLimits, sample_frames
from worker.exceptions import RetryLater, SettleWithError
from worker.fetch import FetchedObject, open_object
from worker.pipeline import decode_fetched
from worker.ranged import RangedSizes, coalesce, parse_content_range
from worker.records import Job

LIMITS = DecodeLimits(frames=8, size=56, max_duration_s=3600, max_pixels=4096 * 2304)
SMALL = RangedSizes(head=4096, block=8192, slack=2048, gap=8192, cache=1 << 20)


def write_clip(path: Path, fmt: str, codec: str = "libx264", options: dict | None = None,
               seekable: bool = True, seconds: float = 4, fps: int = 15, seed: int = 0,
               gop_s: float = 1, b_frames: int = 0) -> Path:
    """A small moving clip; ``seekable=False`` writes through a pipe-like sink (no cues)."""
    class Sink:  # no seek(): the muxer cannot go back to write an index
        def __init__(self, file):
            self.file = file

        def write(self, data):
            return self.file.write(data)

    with path.open("wb") as file, av.open(file if seekable else Sink(file), mode="w", format=fmt,
                                          options=options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.gop_size = int(gop_s * fps)
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "bf": str(b_frames)}
        for i in range(int(seconds * fps)):
            img = np.zeros((120, 160, 3), np.uint8)
            img[..., 0] = (np.arange(160) * 2 + i * 5 + seed * 40) % 256
            img[(i * 3) % 100:(i * 3) % 100 + 20, 40:60] = 255
            frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


EDGE_CASES = {
    "moov-at-end.mp4": dict(fmt="mp4"),
    "faststart.mp4": dict(fmt="mp4", options={"movflags": "faststart"}),
    "fragmented.mp4": dict(fmt="mp4", options={"movflags": "frag_keyframe+empty_moov"}),
    "clip.webm": dict(fmt="webm", codec="libvpx-vp9"),
    "cues.mkv": dict(fmt="matroska"),
    "no-cues.mkv": dict(fmt="matroska", seekable=False),
    # Decoded forward from each keyframe, with the non-reference B-frames skipped.
    "long-gop-b-frames.mp4": dict(fmt="mp4", seconds=12, fps=30, gop_s=6, b_frames=2),
}


@pytest.fixture(scope="module")
def edge_cases(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("edge")
    return {name: write_clip(folder / name, **kwargs) for name, kwargs in EDGE_CASES.items()}


@pytest.fixture(scope="module")
def corpus_clip(tmp_path_factory) -> Path:
    """A clip of the bench corpus's kind, long enough that sampling skips most of its bytes."""
    path = tmp_path_factory.mktemp("corpus") / "clip.mp4"
    return encode_clip(CorpusSpec(320, 240, 16.0, 15, 2.0, 1), 0, path)


def fetch_and_sample(stack, key: str, *, job_size: int | None = None, ranged_min_bytes: int = 0,
                     between=None, bucket: str | None = None):
    """open_object then decode_fetched, as the pipeline does; ``between`` runs after the first
    read.  Returns (SampledVideo or the exception, FetchedObject)."""
    async def run():
        async with AsyncClients(stack.region, stack.endpoint_url) as aws:
            with tempfile.TemporaryDirectory() as spool, ThreadPoolExecutor(1) as pool:
                job = Job(bucket or stack.bucket, key, size=job_size)
                fetched: FetchedObject = await open_object(aws.s3, job, 10**9, Path(spool),
                                                           ranged_min_bytes, SMALL)
                if between is not None:
                    between()
                try:
                    return await asyncio.get_running_loop().run_in_executor(
                        pool, decode_fetched, fetched, LIMITS, Path(spool)), fetched
                except (RetryLater, SettleWithError) as exc:
                    return exc, fetched
                finally:
                    fetched.discard()

    return asyncio.run(run())


def assert_same_as_whole(stack, path: Path):
    boto3_client("s3", stack.region, stack.endpoint_url).upload_file(str(path), stack.bucket,
                                                                     path.name)
    ranged, fetched = fetch_and_sample(stack, path.name)
    whole = sample_frames(path, LIMITS)
    assert not isinstance(ranged, Exception), ranged
    assert np.array_equal(ranged.frames, whole.frames), path.name
    assert ranged.timestamps_ms == whole.timestamps_ms
    assert fetched.remote is not None and fetched.size_bytes == path.stat().st_size
    return fetched.counts


@pytest.mark.parametrize("name", sorted(EDGE_CASES))
def test_edge_cases_give_bit_identical_frames(stack, edge_cases, name):
    counts = assert_same_as_whole(stack, edge_cases[name])
    size = edge_cases[name].stat().st_size
    if name == "no-cues.mkv":  # no duration, no index: read whole, no byte twice
        assert counts.requests <= 3 and counts.bytes == size


@pytest.mark.parametrize("name", ["nasa_13013.mp4", "h265_video.mp4", "av1_video.mkv",
                                  "bt2020_10bit.mp4"])
def test_real_clips_give_bit_identical_frames(stack, shared_media, name):
    assert_same_as_whole(stack, shared_media / name)


def test_a_corpus_clip_is_sampled_from_a_fraction_of_its_bytes(stack, corpus_clip):
    counts = assert_same_as_whole(stack, corpus_clip)
    assert counts.bytes < 0.5 * corpus_clip.stat().st_size
    assert 2 <= counts.requests <= SMALL.max_requests


def test_objects_up_to_the_threshold_take_one_get(stack, edge_cases):
    path = edge_cases["moov-at-end.mp4"]
    boto3_client("s3", stack.region, stack.endpoint_url).upload_file(str(path), stack.bucket, "k")
    size = path.stat().st_size
    video, fetched = fetch_and_sample(stack, "k", job_size=size, ranged_min_bytes=size)
    assert fetched.remote is None and fetched.counts.requests == 1 and fetched.counts.bytes == size
    assert np.array_equal(video.frames, sample_frames(path, LIMITS).frames)
    # Size unknown (a direct job): the first ranged GET finds it small; one more GET completes it.
    video, fetched = fetch_and_sample(stack, "k", ranged_min_bytes=size)
    assert fetched.remote is None and fetched.counts.requests == 2 and fetched.counts.bytes == size


def test_missing_and_too_large_objects_settle_before_ranged_reads(stack, edge_cases):
    with pytest.raises(SettleWithError) as missing:
        fetch_and_sample(stack, "never-uploaded.mp4")
    assert missing.value.code == "object_missing"
    path = edge_cases["moov-at-end.mp4"]
    boto3_client("s3", stack.region, stack.endpoint_url).upload_file(str(path), stack.bucket, "k")

    async def too_large():
        async with AsyncClients(stack.region, stack.endpoint_url) as aws:
            await open_object(aws.s3, Job(stack.bucket, "k"), 1000, Path("."), 0, SMALL)
    with pytest.raises(SettleWithError) as large:
        asyncio.run(too_large())
    assert large.value.code == "too_large"


def _overwrite(stack, bucket: str, key: str, path: Path):
    return lambda: boto3_client("s3", stack.region, stack.endpoint_url).upload_file(
        str(path), bucket, key)


def test_an_overwrite_on_a_versioned_bucket_still_yields_the_first_version(stack, tmp_path,
                                                                           corpus_clip):
    other = write_clip(tmp_path / "other.mp4", "mp4", seconds=16, seed=3)
    boto3_client("s3", stack.region, stack.endpoint_url).upload_file(str(corpus_clip),
                                                                     stack.bucket, "v.mp4")
    video, fetched = fetch_and_sample(stack, "v.mp4",
                                      between=_overwrite(stack, stack.bucket, "v.mp4", other))
    assert fetched.remote is not None and fetched.version_id  # pinned by VersionId
    assert np.array_equal(video.frames, sample_frames(corpus_clip, LIMITS).frames)


def test_an_overwrite_on_an_unversioned_bucket_is_a_retry_never_a_mix(stack, tmp_path,
                                                                      corpus_clip):
    s3 = boto3_client("s3", stack.region, stack.endpoint_url)
    bucket = f"{stack.bucket}-plain"
    s3.create_bucket(Bucket=bucket)  # no versioning: reads are pinned by IfMatch on the ETag
    s3.upload_file(str(corpus_clip), bucket, "p.mp4")
    other = write_clip(tmp_path / "other.mp4", "mp4", seconds=16, seed=3)
    outcome, fetched = fetch_and_sample(stack, "p.mp4", bucket=bucket,
                                        between=_overwrite(stack, bucket, "p.mp4", other))
    assert fetched.version_id is None
    assert isinstance(outcome, RetryLater), outcome
    assert "changed while it was being read" in str(outcome)
    # Unchanged, the same bucket reads fine: the retry sees one version throughout.
    again, _ = fetch_and_sample(stack, "p.mp4", bucket=bucket)
    assert np.array_equal(again.frames, sample_frames(other, LIMITS).frames)


def test_ranges_are_coalesced_and_content_range_parsed():
    assert coalesce([(50, 60), (0, 10), (12, 20), (100, 100)], gap=5) == [(0, 20), (50, 60)]
    assert parse_content_range("bytes 0-4095/672981") == (0, 4095, 672981)
