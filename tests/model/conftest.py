"""Model-layer fixtures: one tiny synthetic checkpoint per test session, its model configuration."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model.api import Clip
from model.checkpoints import build_atomically, synthetic_path
from model.config import ModelConfig

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


FAKES = Path(__file__).resolve().parents[1] / "neuron_fakes"
FAKE_MODULES = ("torch_neuronx", "transformers_neuronx", "neuronxcc", "fake_nrt")


@pytest.fixture()
def neuron_fakes(monkeypatch, tmp_path):
    """The contract fakes of the Neuron SDK 2.25 importable in this process (and in the replica
    processes it spawns), on an instance of two NeuronCores of their own; afterwards this process
    gives its cores back (``nrt_close``) and forgets the fakes, so that later tests see no SDK."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-1")
    monkeypatch.setenv("MODFLEET_FAKE_NEURON_DIR", str(tmp_path / "neuron-devices"))
    importlib.invalidate_caches()
    yield FAKES
    if "fake_nrt" in sys.modules:
        sys.modules["fake_nrt"].release()
    for name in [n for n in sys.modules if n.split(".")[0] in FAKE_MODULES]:
        del sys.modules[name]
    importlib.invalidate_caches()
