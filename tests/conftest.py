"""Shared fixtures: one embedded AWS server per test session, a fresh stack per test, media, and the
tiny synthetic checkpoints and clips the model, bench and worker tests run on."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from model.api import Clip
from model.checkpoints import build_atomically, synthetic_path
from model.config import ModelConfig
from tools.lab.embedded_aws import EmbeddedAws, StackInfo, provision
from tools.lab.sample_videos import media_folder

ROOT = Path(__file__).resolve().parents[1]
SHARED_MEDIA = ROOT.parent / "shared" / "media"
_stack_names = itertools.count()


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


# Small static shapes keep every model test on the tiny preset well under a second per batch.
FRAMES, SIZE = 4, 56


def _transformers_version() -> tuple[int, int]:
    import transformers

    major, minor = transformers.__version__.split(".")[:2]
    return int(major), int(minor)


def transformers_major() -> int:
    return _transformers_version()[0]


# The Neuron SDK's environment (`make test-neuron-env`) pins transformers 4.47, where only the
# LLaVA-NeXT-Video family is meant to run; Qwen2-VL runs on the torch backend with 5.x.
QWEN_NEEDS_5 = "Qwen2-VL runs on transformers 5.x; this environment pins the Neuron SDK's 4.47"


@pytest.fixture(scope="session")
def llava_checkpoint(tmp_path_factory) -> Path:
    """The tiny synthetic LLaVA-NeXT-Video checkpoint, built once for the session."""
    path = tmp_path_factory.mktemp("llava") / "tiny-llava_next_video"
    return build_atomically(path, "tiny", "llava_next_video")


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    """A cache directory holding the tiny synthetic checkpoint, built once for the session."""
    if _transformers_version() < (5, 0):
        pytest.skip(QWEN_NEEDS_5)
    cache = tmp_path_factory.mktemp("model-cache")
    build_atomically(synthetic_path(cache, "tiny"), "tiny", "qwen2_vl")
    return cache


@pytest.fixture()
def model_config(model_cache) -> ModelConfig:
    """The model configuration of a one-replica CPU torch backend on the tiny checkpoint."""
    return ModelConfig(cache_dir=model_cache, frames_per_video=FRAMES, frame_size=SIZE,
                       batch_size=2, max_new_tokens=12)


@pytest.fixture()
def make_clip():
    """Factory of clips of random frames (from a seed), one timestamp per frame, 500 ms apart."""
    def make(seed: int, frames: int = FRAMES, size: int = SIZE) -> Clip:
        rng = np.random.default_rng(seed)
        pixels = rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8)
        return Clip(frames=pixels, timestamps_ms=tuple(500 * i for i in range(frames)),
                    ref=f"clip-{seed}")
    return make
