"""Model-only throughput: the worker's own replica pool fed pre-decoded clips in full batches.

The denominator of the pipeline efficiency: the same model, batch size and replicas as the
end-to-end run, with nothing in front of the replicas but a queue that is never empty.
"""

from __future__ import annotations

import time
from concurrent.futures import wait
from dataclasses import dataclass

from model.api import Clip
from worker.replicas import ReplicaPool


@dataclass(frozen=True)
class ModelOnlyResult:
    videos: int
    seconds: float
    cpu_s: float  # process CPU time while the pool ran

    @property
    def videos_per_s(self) -> float:
        return self.videos / self.seconds


def measure_model_only(pool: ReplicaPool, clips: list[Clip], videos: int,
                       batch_size: int) -> ModelOnlyResult:
    """Submit ``videos`` clips (rounded up to full batches) at once; time until all are done."""
    count = -(-videos // batch_size) * batch_size
    started, started_cpu = time.perf_counter(), time.process_time()
    futures = [pool.submit(clips[i % len(clips)]) for i in range(count)]
    wait(futures)
    seconds, cpu_s = time.perf_counter() - started, time.process_time() - started_cpu
    for future in futures:
        future.result()  # a failed batch fails the benchmark rather than flattering it
    return ModelOnlyResult(count, seconds, cpu_s)
