"""The paced backend: a stand-in accelerator that holds every batch for a set device time.

On an Inf2 host the model runs on NeuronCores and the host's CPUs only fetch, decode, preprocess
and publish.  This backend reproduces that split on any machine: ``infer`` does the host's share
of a device call (checking each clip's static shape and packing the batch into one contiguous
uint8 input tensor; the rescale and normalisation belong in the compiled graph, where uint8 input
is also a quarter of the bytes to move), then holds the batch for ``config.paced_batch_ms`` while
releasing the GIL, as a NeuronCore call does, whatever the batch's fill (compiled graphs run the
static shape).  Its labels are deterministic functions of frame
statistics, passed through the real policy, so verdicts look like a model's and identical frames
always get identical verdicts.  It never loads weights; its identity says backend "paced",
synthetic true.  It is for measuring whether the host keeps every replica busy (`modfleet bench`)
and for load and fault tests, never for moderation.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import structlog

from model.api import Backend, Batch, Clip, DeviceSlot, ModelIdentity, ModelOutput
from model.config import ModelConfig
from model.exceptions import RejectClip
from model.policy import Policy, load_policy
from model.synthetic import IMAGE_MEAN, IMAGE_STD

log = structlog.get_logger(__name__)

# CLIP's normalisation (Qwen2-VL's processor), applied to the statistics' sample.
MEAN = np.array(IMAGE_MEAN, np.float32) * 255
STD = np.array(IMAGE_STD, np.float32) * 255
# Fixed projection from five frame statistics to one value per category (seeded: deterministic).
_PROJECTION = np.random.default_rng(20261126).normal(size=(64, 5)).astype(np.float64)


class PacedBackend(Backend):
    """Pack the batch, then hold it ``paced_batch_ms`` without the GIL; labels from statistics."""

    backend_name = "paced"

    def __init__(self, config: ModelConfig, slot: DeviceSlot, policy: Policy | None = None) -> None:
        self.config, self.slot = config, slot
        self.policy = policy or load_policy(config.policy_file)
        self._device = threading.Event()  # never set: wait() is a GIL-free hold of the "device"
        self._identity: ModelIdentity | None = None
        self.last_hold = (0.0, 0.0)  # perf_counter interval of the last batch's device time
        self.stats = {"batches": 0, "rows": 0, "preprocess_cpu_s": 0.0, "device_s": 0.0}

    def load(self) -> None:
        self._identity = ModelIdentity(
            name="paced-stand-in", version=f"{self.config.paced_batch_ms:g}ms-per-batch",
            backend=self.backend_name, quantization=self.config.quantize, synthetic=True,
            policy_version=self.policy.version)
        log.info("paced device ready", replica=self.slot.index,
                 batch_ms=self.config.paced_batch_ms, batch_size=self.config.batch_size)

    def warm_up(self) -> None:
        self.infer(Batch(rows=(None,) * self.config.batch_size))

    def infer(self, batch: Batch) -> list[ModelOutput | None]:
        """One output per real row (``None`` for padding), after the batch's device time."""
        cpu_started = time.thread_time()
        tensor = _pack(batch, self.config)
        outputs = [self._output(row, tensor[i]) if row is not None else None
                   for i, row in enumerate(batch.rows)]
        self.stats["preprocess_cpu_s"] += time.thread_time() - cpu_started
        held = time.perf_counter()
        self._device.wait(self.config.paced_batch_ms / 1000)
        self.last_hold = (held, time.perf_counter())
        self.stats["device_s"] += self.last_hold[1] - held
        self.stats["batches"] += 1
        self.stats["rows"] += batch.real_rows
        return outputs

    def shutdown(self) -> None:
        """Nothing to free: no weights, no device memory."""

    @property
    def identity(self) -> ModelIdentity:
        if self._identity is None:
            raise RuntimeError("identity is known after load()")
        return self._identity

    def _output(self, clip: Clip, frames: np.ndarray) -> ModelOutput:
        confidences = confidences_from_frames(frames, len(self.policy.categories))
        scores = {c.name: value for c, value in zip(self.policy.categories, confidences)}
        labels = self.policy.labels_from_scores(scores, clip.timestamps_ms)
        return ModelOutput(labels=labels, decision=self.policy.decide(labels))


def _pack(batch: Batch, config: ModelConfig) -> np.ndarray:
    """The batch as one (B, N, S, S, 3) uint8 tensor, zeros for padding rows; refuses any clip
    of another shape or type, by name, as a compiled graph would."""
    expected = (config.frames_per_video, config.frame_size, config.frame_size, 3)
    tensor = np.zeros((len(batch.rows), *expected), np.uint8)
    for i, row in enumerate(batch.rows):
        if row is None:
            continue
        if row.frames.dtype != np.uint8 or row.frames.shape != expected:
            raise RejectClip(f"frames must be uint8 {expected}, got {row.frames.dtype} "
                             f"{row.frames.shape}", ref=row.ref)
        tensor[i] = row.frames
    return tensor


def confidences_from_frames(frames: np.ndarray, categories: int) -> list[float]:
    """0-100 per category from brightness, colour, contrast and motion; mostly low, like a model.

    The statistics (of every fourth pixel each way: cheap, and as deterministic) go through a
    fixed random projection and a sine, so nearby clips get unrelated scores; cubing skews them
    low, so most clips are allowed and a few are reviewed or blocked.
    """
    sample = (frames[:, ::4, ::4].astype(np.float32) - MEAN) / STD
    channel_means = sample.mean(axis=(0, 1, 2))
    contrast = float(sample.std())
    motion = float(np.abs(np.diff(sample, axis=0)).mean()) if len(sample) > 1 else 0.0
    stats = np.array([*channel_means, contrast, motion], np.float64)
    spread = np.abs(np.sin(_PROJECTION[:categories] @ stats * 12.9898) * 43758.5453) % 1.0
    return [round(float(100 * u ** 3), 2) for u in spread]
