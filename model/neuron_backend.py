"""The Neuron backend: artifacts from `modfleet compile`, one process per replica's NeuronCores.

The Neuron runtime takes its NeuronCores per process (``NEURON_RT_VISIBLE_CORES``), and
transformers-neuronx places a model's ``tp_degree`` ranks on the first visible cores; so each
replica thread drives a child process started with its own core range, the documented way to run
several models side by side on one instance.  The child loads the traced vision tower and the
compiled decoder (never compiling), then answers batches over a pipe.

In the child: frames are patchified as in the torch backend, the vision tower turns them into
features, the features replace the ``<|video_pad|>`` embeddings, and the decoder runs with those
input embeddings (``forward(..., input_embeddings=...)``).  transformers-neuronx's Qwen2 decoder
uses 1-D rotary positions, so its outputs approximate Qwen2-VL's multimodal RoPE; the torch backend
is the reference.  Not run on Neuron hardware here.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from model import neuron_sdk
from model.api import Backend, Batch, DeviceSlot, ModelIdentity, ModelOutput
from model.exceptions import RetryBatch
from model.manifest import check_manifest, read_manifest
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

    def load(self) -> None:
        """Check SDK and manifest here (cheap, clear errors), then start the pinned child."""
        neuron_sdk.require("the neuron backend")
        self.manifest = read_manifest(Path(self.config.compiled_dir))
        check_manifest(self.manifest, self.config)
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, self.config, visible_cores(self.slot)),
            name=f"neuron-replica-{self.slot.index}", daemon=True)
        self._process.start()
        self._identity = self._call("load")

    def warm_up(self) -> None:
        self._call("infer", Batch(rows=(None,) * self.config.batch_size))

    def infer(self, batch: Batch) -> list[ModelOutput | None]:
        outputs = self._call("infer", batch)
        return [out if row is not None else None for row, out in zip(batch.rows, outputs)]

    def shutdown(self) -> None:
        if self._process is not None and self._process.is_alive():
            self._conn.send(("stop", None))
            self._process.join(30)

    @property
    def identity(self) -> ModelIdentity:
        if self._identity is None:
            raise RuntimeError("identity is known after load()")
        return self._identity

    def _call(self, op: str, payload=None):
        self._conn.send((op, payload))
        try:
            ok, value = self._conn.recv()
        except EOFError as exc:
            raise RetryBatch(f"neuron replica {self.slot.index} process died") from exc
        if not ok:
            raise value
        return value


def _serve(conn, config: ModelConfig, cores: str) -> None:
    """Child process: pin to ``cores`` before the runtime starts, load once, answer requests."""
    import os

    # Read by the Neuron runtime when it initialises in this process: the replica's core range.
    os.environ["NEURON_RT_VISIBLE_CORES"] = cores
    from model.neuron_runtime import NeuronRuntime

    runtime = NeuronRuntime(config)
    while True:
        op, payload = conn.recv()
        if op == "stop":
            return
        try:
            conn.send((True, runtime.load() if op == "load" else runtime.infer(payload)))
        except Exception as exc:  # sent back to the replica thread, which raises it
            conn.send((False, exc))
