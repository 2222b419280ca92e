"""The paced backend: a real registry backend that holds each batch for its device time."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from model.api import Batch, Clip, DeviceSlot
from model.config import ModelConfig
from model.exceptions import ConfigInvalid, RejectClip
from model.registry import create_backend

CONFIG = ModelConfig(backend="paced", batch_size=2, frames_per_video=4, frame_size=56,
                     paced_batch_ms=200)
SLOT = DeviceSlot(index=0, kind="cpu", device="cpu", cpu_threads=1)


def clip(seed: int, ref: str = "") -> Clip:
    frames = np.random.default_rng(seed).integers(0, 256, (4, 56, 56, 3), dtype=np.uint8)
    return Clip(frames, (0, 100, 200, 300), ref or f"clip-{seed}")


def loaded(config: ModelConfig = CONFIG):
    backend = create_backend(config, SLOT)
    backend.load()
    backend.warm_up()
    return backend


def test_identity_says_paced_and_synthetic():
    identity = loaded().identity
    assert identity.backend == "paced" and identity.synthetic is True
    assert identity.version == "200ms-per-batch"


def test_outputs_are_deterministic_and_padding_rows_are_none():
    first = loaded().infer(Batch(rows=(clip(1), None)))
    again = loaded().infer(Batch(rows=(clip(1), None)))
    assert first == again and first[1] is None
    assert first[0].decision in ("allow", "review", "block")


def test_labels_vary_with_the_frames_and_go_through_the_policy():
    backend = loaded(CONFIG.with_changes(paced_batch_ms=0))
    outputs = [backend.infer(Batch(rows=(clip(seed), None)))[0] for seed in range(40)]
    decisions = {out.decision for out in outputs}
    assert "allow" in decisions and len(decisions) >= 2  # mostly allowed, not all the same
    for out in outputs:
        for label in out.labels:
            assert 0 <= label.confidence <= 100 and label.timestamps_ms == (0, 100, 200, 300)


def test_a_batch_is_held_for_its_device_time_without_the_gil():
    backends = [loaded(CONFIG.with_changes(paced_batch_ms=2000)) for _ in range(2)]
    barrier = threading.Barrier(2)

    def infer(backend, i):
        barrier.wait()
        backend.infer(Batch(rows=(clip(i), clip(i + 1))))

    threads = [threading.Thread(target=infer, args=(b, i)) for i, b in enumerate(backends)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Two replicas hold their batches at the same time: the device waits overlap, which they
    # could not if a hold kept the GIL.
    (start_a, end_a), (start_b, end_b) = (b.last_hold for b in backends)
    assert max(start_a, start_b) < min(end_a, end_b)
    assert all(end - start >= 2.0 for start, end in (b.last_hold for b in backends))
    assert all(b.stats["batches"] == 2 for b in backends)


def test_a_clip_of_the_wrong_shape_is_rejected_by_name():
    bad = Clip(np.zeros((4, 28, 28, 3), np.uint8), (0, 0, 0, 0), "bad.mp4")
    with pytest.raises(RejectClip) as rejected:
        loaded().infer(Batch(rows=(bad, None)))
    assert rejected.value.ref == "bad.mp4"


def test_the_device_time_is_validated():
    with pytest.raises(ConfigInvalid, match="paced-batch-ms"):
        ModelConfig(backend="paced", paced_batch_ms=-1)
