"""Model errors become worker outcomes in one place, the replica thread; the pipeline passes on
what the replica decided."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from model.api import Backend, DeviceSlot, ModelIdentity
from model.config import ModelConfig
from model.exceptions import RejectClip, RetryBatch
from worker import pipeline
from worker.decode import SampledVideo
from worker.exceptions import RetryLater, SettleWithError
from worker.records import Job
from worker.replicas import ReplicaPool, worker_error
from worker.settings import Settings


class FailingBackend(Backend):
    """Fails every batch with ``error`` (set per test): these tests are about what a failure
    becomes, not about inference."""

    identity = ModelIdentity("failing", "1", "test", "none", True, "p")
    error: Exception = RuntimeError("unset")

    def __init__(self, config: ModelConfig, slot: DeviceSlot) -> None: ...
    def load(self) -> None: ...
    def warm_up(self) -> None: ...
    def shutdown(self) -> None: ...

    def infer(self, batch):
        raise self.error


VIDEO = SampledVideo(frames=np.zeros((2, 28, 28, 3), np.uint8), timestamps_ms=(0, 500),
                     duration_s=1.0, width=28, height=28, codec="h264", frames_decoded=2)


@pytest.mark.parametrize("error, outcome, says", [
    (RejectClip("frames must be uint8", ref="k.mp4"), SettleWithError, "model_error"),
    (RetryBatch("out of device memory"), RetryLater, "transient device failure"),
    (RuntimeError("NRT_FAILURE"), RetryLater, "model replica failed"),
])
def test_a_failed_batch_reaches_the_pipeline_as_the_replicas_outcome(error, outcome, says):
    FailingBackend.error = error
    pool = ReplicaPool(Settings(batch_size=1, batch_wait_ms=0), factory=FailingBackend,
                       slots=[DeviceSlot(0, "cpu", "cpu", 1)])
    pool.start()
    try:
        with pytest.raises(outcome) as raised:
            asyncio.run(pipeline.infer(Job("b", "k.mp4"), VIDEO, pool))
    finally:
        pool.stop(timeout=5)
    assert says in str(raised.value)
    assert type(raised.value) is type(worker_error(error))
