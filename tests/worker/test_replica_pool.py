"""Replica threads: static batches, padding, and a bad clip that spoils none of its neighbours."""

from __future__ import annotations

import numpy as np
import pytest

from model.api import Backend, Clip, DeviceSlot, ModelIdentity, ModelOutput
from model.config import ModelConfig
from model.exceptions import RejectClip
from worker.replicas import ReplicaPool
from worker.exceptions import SettleWithError
from worker.settings import Settings


class RecordingBackend(Backend):
    """A backend that checks the batch contract and rejects clips whose frames are not uint8.

    Not a model: these tests are about the replica thread's batching, not about inference (the
    real backends run in tests/model and tests/e2e).
    """

    identity = ModelIdentity("recording", "1", "test", "none", True, "p")
    batches: list[tuple[int, int]] = []

    def __init__(self, config: ModelConfig, slot: DeviceSlot) -> None:
        self.config = config

    def load(self) -> None: ...
    def warm_up(self) -> None: ...
    def shutdown(self) -> None: ...

    def infer(self, batch):
        assert len(batch.rows) == self.config.batch_size  # static shape, always
        self.batches.append((len(batch.rows), batch.real_rows))
        for row in batch.rows:
            if row is not None and row.frames.dtype != np.uint8:
                raise RejectClip("frames must be uint8", ref=row.ref)
        return [None if row is None else ModelOutput((), "allow", text=row.ref)
                for row in batch.rows]


def clip(ref: str, dtype=np.uint8) -> Clip:
    return Clip(frames=np.zeros((2, 28, 28, 3), dtype=dtype), timestamps_ms=(0, 1), ref=ref)


@pytest.fixture()
def pool():
    RecordingBackend.batches = []
    settings = Settings(batch_size=4, batch_wait_ms=200, replicas=2)
    pool = ReplicaPool(settings, factory=RecordingBackend,
                       slots=[DeviceSlot(i, "cpu", "cpu", 1) for i in range(2)])
    pool.start()
    yield pool
    pool.stop()


def test_partial_batches_are_padded_and_padding_never_answers(pool):
    futures = [pool.submit(clip(f"c{i}")) for i in range(5)]
    results = [f.result(timeout=10) for f in futures]
    assert [r.output.text for r in results] == [f"c{i}" for i in range(5)]
    assert all(size == 4 for size, _ in RecordingBackend.batches)
    assert sum(real for _, real in RecordingBackend.batches) == 5
    assert all(r.run_ms > 0 and r.wait_ms >= 0 for r in results)


def test_a_rejected_clip_fails_alone(pool):
    futures = [pool.submit(clip("good-1")), pool.submit(clip("bad", np.float32)),
               pool.submit(clip("good-2"))]
    with pytest.raises(SettleWithError, match="model_error"):
        futures[1].result(timeout=10)
    assert futures[0].result(timeout=10).output.text == "good-1"
    assert futures[2].result(timeout=10).output.text == "good-2"
