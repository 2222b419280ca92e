"""The Neuron backend: artifacts from `modfleet compile`, one process per replica's NeuronCores.

The Neuron runtime takes its NeuronCores per process (``NEURON_RT_VISIBLE_CORES``), and
transformers-neuronx places a model's ``tp_degree`` ranks on the first visible cores; so each
replica thread drives a child process started with its own core range, the documented way to run
several models side by side on one instance.  The child loads the traced vision tower and the
compiled decoder (never compiling), then answers batches over a pipe.

In the child: frames are prepared as in the torch backend, the traced video encoder turns them
into features, the features replace the ``<video>`` embeddings, and the decoder runs with those
input embeddings (``forward(..., input_embeddings=...)``).  Everything that can be checked without
the device is checked here, in the replica thread, before the child starts: the model family, the
manifest against the settings, the installed SDK versions against the compiled ones, and that
every compiled file is on disk; each failure is a clear start-up error (exit code 2).  Run in CI
against contract fakes of the SDK (tests/neuron_fakes), not on Neuron hardware.
"""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

from model import neuron_sdk
from model.api import Backend, Batch, DeviceSlot, ModelIdentity, ModelOutput
from model.exceptions import BackendLost
from model.compile import configured_arch, refuse_unsupported
from model.manifest import check_files, check_manifest, check_versions, read_manifest
import structlog
from model.config import ModelConfig

log = structlog.get_logger(__name__)


def visible_cores(slot: DeviceSlot) -> str:
    """``NEURON_RT_VISIBLE_CORES`` for a slot: a contiguous range such as ``4-5``."""
    first, last = slot.neuron_cores[0], slot.neuron_cores[-1]
    return str(first) if first == last else f"{first}-{last}"


class NeuronBackend(Backend):
    """A proxy in the replica thread; the model lives in a child pinned to the slot's cores."""

    backend_name = "neuron"

    def __init__(self, config: ModelConfig, slot: DeviceSlot) -> None:
        self.config, self.slot = config, slot
        self.manifest = None
        self._conn = None
        self._process = None
        self._identity: ModelIdentity | None = None
        # The replica process's counters (NeuronRuntime.stats), as of its last batch.
        self.stats: dict = {}

    def load(self) -> None:
        """Check SDK and manifest here (cheap, clear errors), then start the pinned child."""
        neuron_sdk.require("the neuron backend")
        root = Path(self.config.compiled_dir)
        self.manifest = read_manifest(root)
        refuse_unsupported(self.manifest.arch)
        if self.config.model_dir is not None:  # a checkpoint named explicitly must fit too
            refuse_unsupported(configured_arch(self.config))
        check_manifest(self.manifest, self.config)
        check_versions(self.manifest, neuron_sdk.sdk_versions())
        check_files(self.manifest, root)
        cores = visible_cores(self.slot)
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, self.config, cores, host_threads(self.config)),
            name=f"neuron-replica-{self.slot.index}", daemon=True)
        self._process.start()
        log.info("neuron replica process started", replica=self.slot.index,
                 pid=self._process.pid, cores=cores)
        self._identity = self._call("load")

    def warm_up(self) -> None:
        _, self.stats = self._call("infer", Batch(rows=(None,) * self.config.batch_size))

    def infer(self, batch: Batch) -> list[ModelOutput | None]:
        outputs, self.stats = self._call("infer", batch)
        return [out if row is not None else None for row, out in zip(batch.rows, outputs)]

    def shutdown(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._conn.send(("stop", None))
            self._process.join(30)

    @property
    def pid(self) -> int | None:
        """The replica process's id, once ``load()`` started it."""
        return None if self._process is None else self._process.pid

    @property
    def identity(self) -> ModelIdentity:
        if self._identity is None:
            raise RuntimeError("identity is known after load()")
        return self._identity

    def _call(self, op: str, payload=None):
        try:
            self._conn.send((op, payload))
            ok, value = self._conn.recv()
        except (EOFError, OSError) as exc:  # the pipe's other end closed: the process is gone
            # Not RetryBatch: every later batch would fail the same way, and the messages would
            # be retried into the dead-letter queue while the worker looked alive.
            self._process.join(5)
            raise BackendLost(f"neuron replica {self.slot.index} process (pid "
                              f"{self._process.pid}) died, exit code {self._process.exitcode}"
                              ) from exc
        if not ok:
            raise value
        return value


def host_threads(config: ModelConfig) -> int:
    """CPU threads for each replica process's host work (frame preparation, embeddings, logits):
    its share of the cores the decode pool leaves.  The transformers-neuronx developer guide asks
    to limit them when several models share an instance (aws-neuron-sdk e52d322c libraries/
    transformers-neuronx/transformers-neuronx-developer-guide.rst:714-721, OMP_NUM_THREADS)."""
    return max(1, ((os.cpu_count() or 1) - config.reserved_cpu_cores) // config.replicas)


def _serve(conn, config: ModelConfig, cores: str, threads: int) -> None:
    """Child process: pin to ``cores`` before the runtime starts, load once, answer requests."""
    # Read by the Neuron runtime when it initialises in this process: the replica's core range.
    os.environ["NEURON_RT_VISIBLE_CORES"] = cores
    os.environ["OMP_NUM_THREADS"] = str(threads)  # before torch starts its OpenMP pool
    import torch

    torch.set_num_threads(threads)
    from model.neuron_runtime import NeuronRuntime

    runtime = NeuronRuntime(config)
    while True:
        op, payload = conn.recv()
        if op == "stop":
            return
        try:
            reply = runtime.load() if op == "load" else (runtime.infer(payload),
                                                          dict(runtime.stats))
            conn.send((True, reply))
        except Exception as exc:  # sent back to the replica thread, which raises it
            conn.send((False, exc))
