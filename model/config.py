"""The model layer's own configuration: one frozen object, validated when it is built.

The worker projects its settings onto a ``ModelConfig`` in one place; tests, benchmarks and the
compile command build one directly.  Nothing here knows of queues, settings objects or the CLI.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from model.architectures import ARCHES
from model.exceptions import ConfigInvalid

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "modfleet"
BACKENDS = ("torch", "neuron", "paced")
QUANTIZATIONS = ("none", "int8")
MODES = ("score", "generate")
PRESETS = ("tiny", "small", "base")


@dataclass(frozen=True)
class ModelConfig:
    """What a backend needs to load and run: checkpoint, device plan, static shapes, techniques."""

    backend: str = "torch"
    model_dir: Path | None = None
    synthetic_preset: str = "tiny"
    synthetic_arch: str = "qwen2_vl"
    compiled_dir: Path | None = None
    device: str = "cpu"
    batch_size: int = 4
    replicas: int = 1
    tp_degree: int = 2
    quantize: str = "none"
    mode: str = "score"
    ngram_size: int = 3
    max_new_tokens: int = 48
    policy_file: Path | None = None
    screening: bool = False
    cascade: bool = False
    cache_dir: Path = DEFAULT_CACHE_DIR
    frames_per_video: int = 8
    frame_size: int = 224
    # CPU cores left to the host's other work (decoding) when CPU replicas split the rest.
    reserved_cpu_cores: int = 2
    # The paced backend's device time per batch (a stand-in accelerator; see paced_backend.py).
    paced_batch_ms: float = 50.0

    def __post_init__(self) -> None:
        for problem in problems(self):
            raise ConfigInvalid(problem)

    def with_changes(self, **changes: Any) -> ModelConfig:
        """A validated copy with some fields replaced."""
        return dataclasses.replace(self, **changes)


def problems(c: ModelConfig) -> Iterable[str]:
    """Every way ``c`` is out of its limits, as messages naming the flag and the limit."""
    ranges = {"frames_per_video": (1, 64), "batch_size": (1, 64), "replicas": (1, 64),
              "tp_degree": (1, 32), "frame_size": (28, 4096), "ngram_size": (0, 16),
              "max_new_tokens": (1, 4096), "reserved_cpu_cores": (0, 1024)}
    for name, (low, high) in ranges.items():
        value = getattr(c, name)
        if not low <= value <= high:
            yield f"{name.replace('_', '-')} must be between {low} and {high}, got {value}"
    for name, choices in (("backend", BACKENDS), ("quantize", QUANTIZATIONS), ("mode", MODES),
                          ("synthetic_preset", PRESETS), ("synthetic_arch", ARCHES)):
        if getattr(c, name) not in choices:
            yield f"{name.replace('_', '-')} must be one of {', '.join(choices)}"
    if not 0 <= c.paced_batch_ms <= 600_000:
        yield f"paced-batch-ms must be between 0 and 600000, got {c.paced_batch_ms}"
    if c.cascade and not c.screening:
        yield "cascade needs screening: the cascade skips the LLM on a decisive screening result"
    if c.backend == "neuron" and c.compiled_dir is None:
        yield "the neuron backend needs --compiled-dir (artifacts written by `modfleet compile`)"
    if c.frame_size % 28:
        yield f"frame-size must be a multiple of 28 (vision patch 14 x merge 2), got {c.frame_size}"
