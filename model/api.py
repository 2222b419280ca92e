"""The contract between the worker and the model layer: what goes into a replica, what comes out.

The worker hands a replica a ``Batch`` of exactly ``batch_size`` rows (static shapes: compiled
Neuron graphs cannot take any other); padding rows are ``None`` and never reach a verdict.  A
backend returns one ``ModelOutput`` per row, ``None`` for padding rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Clip:
    """One video's sampled frames: ``frames`` is (N, S, S, 3) uint8 RGB, letterboxed to S x S."""

    frames: np.ndarray
    timestamps_ms: tuple[int, ...]
    ref: str = ""


@dataclass(frozen=True)
class Batch:
    """Exactly ``batch_size`` rows; ``None`` rows are padding."""

    rows: tuple[Clip | None, ...]

    @property
    def real_rows(self) -> int:
        return sum(row is not None for row in self.rows)


@dataclass(frozen=True)
class Label:
    """One moderation label, shaped like Amazon Rekognition's ModerationLabel; confidence 0-100."""

    name: str
    parent_name: str
    taxonomy_level: int
    confidence: float
    timestamps_ms: tuple[int, ...]
    stage: str  # "llm" or "screening"


@dataclass(frozen=True)
class ModelOutput:
    """A backend's answer for one clip, after the policy turned scores into labels and a decision."""

    labels: tuple[Label, ...]
    decision: str  # "allow" | "review" | "block"
    reason: str | None = None  # why review, when the policy could not decide (e.g. unparseable)
    text: str | None = None  # generated text in generate mode
    tokens_generated: int = 0


@dataclass(frozen=True)
class ModelIdentity:
    """What produced a verdict; copied into the verdict's ``model`` object."""

    name: str
    version: str
    backend: str
    quantization: str
    synthetic: bool
    policy_version: str


@dataclass(frozen=True)
class DeviceSlot:
    """The device a replica owns: a NeuronCore range, one GPU, or a share of the CPU threads."""

    index: int
    kind: str  # "cpu" | "cuda" | "neuron"
    device: str  # torch device string, or "neuron"
    cpu_threads: int = 0
    neuron_cores: tuple[int, ...] = ()


class Backend(ABC):
    """Lifecycle: load -> warm_up (one dummy batch) -> infer(batch)* -> shutdown."""

    identity: ModelIdentity

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def warm_up(self) -> None: ...

    @abstractmethod
    def infer(self, batch: Batch) -> list[ModelOutput | None]: ...

    @abstractmethod
    def shutdown(self) -> None: ...
