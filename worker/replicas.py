"""Model replicas: one long-lived thread per device slot, fed static batches from a shared queue.

The queue itself has no size limit: its depth is bounded upstream, by the poller's in-flight limit
(a blocking put here would stall the asyncio loop that submits).

Each replica owns one slot (a NeuronCore range, a GPU, or a share of the CPU threads), loads and
warms up its backend once, then loops: take the first clip, wait up to ``batch_wait_ms`` for the
batch to fill, pad the rest with ``None`` rows (compiled graphs take one shape), infer, and resolve
each clip's future.  The asyncio side awaits those futures; padding rows never reach a verdict.

A replica whose loop ends with an exception (``BackendLost`` or a ``BaseException`` out of its
backend, or a failure of the loop itself) is dead: its batch in hand and every queued clip fail
with ``ReplicaDied``, later submissions fail at once, and the pool's watchers are told, so the
worker stops and exits for its supervisor to restart it rather than leave clips waiting for the
processing deadline.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass

from model.api import Backend, Batch, Clip, DeviceSlot, ModelIdentity, ModelOutput
from model.config import ModelConfig
from model.exceptions import BackendLost, RejectClip, RetryBatch
from worker.exceptions import (AbortStartup, ModfleetError, ReplicaDied, RetryLater,
                               SettleWithError)
from worker.logs import get_logger
from worker.settings import Settings, model_config

log = get_logger(__name__)
BackendFactory = Callable[[ModelConfig, DeviceSlot], Backend]
_STOP = object()


@dataclass(frozen=True)
class BatchReport:
    """What one inference call did, for metrics: which replica, how full, how long."""

    replica: int
    real_rows: int
    batch_size: int
    seconds: float


@dataclass(frozen=True)
class Inference:
    """A clip's model output and where its time went: waiting for a batch, then the batch's run."""

    output: ModelOutput
    wait_ms: float
    run_ms: float


@dataclass(eq=False)  # compared by identity: a clip's frames are an array
class _Request:
    clip: Clip
    future: Future
    queued_at: float


class Replica(threading.Thread):
    """One backend on one device slot; ``run()`` loops until it takes the stop sentinel."""

    def __init__(self, settings: Settings, slot: DeviceSlot, factory: BackendFactory,
                 requests: queue.Queue, on_batch: Callable[[BatchReport], None],
                 on_death: Callable[[Replica, BaseException], None]) -> None:
        super().__init__(name=f"replica-{slot.index}", daemon=True)
        self.settings, self.slot, self.requests, self.on_batch = settings, slot, requests, on_batch
        self.on_death = on_death
        self.backend = factory(model_config(settings), slot)
        self.ready = threading.Event()
        self.failure: BaseException | None = None
        self.in_hand: list[_Request] = []

    def run(self) -> None:
        try:
            self.backend.load()
            self.backend.warm_up()
        except BaseException as exc:  # reported to start(), which aborts the worker
            self.failure = exc
            self.ready.set()
            return
        self.ready.set()
        try:
            self._serve()
        except BaseException as exc:  # not a failed batch (those fail their clips): a dead loop
            self.failure = exc
            self.on_death(self, exc)  # first: its clips must not wait for the log line
            log.error("replica died", replica=self.slot.index, error=repr(exc), exc_info=exc)
        finally:
            self.backend.shutdown()

    def _serve(self) -> None:
        while (batch := self._collect()) is not None:
            self.in_hand = batch
            self._infer(batch)
            self.in_hand = []

    def _collect(self) -> list[_Request] | None:
        first = self.requests.get()
        if first is _STOP:
            return None
        batch = [first]
        deadline = time.monotonic() + self.settings.batch_wait_ms / 1000
        while len(batch) < self.settings.batch_size:
            try:
                item = self.requests.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if item is _STOP:
                self.requests.put(_STOP)  # leave it for this loop's next turn
                break
            batch.append(item)
        return batch

    def _infer(self, batch: list[_Request]) -> None:
        rows = tuple(r.clip for r in batch) + (None,) * (self.settings.batch_size - len(batch))
        started = time.perf_counter()
        try:
            outputs = self.backend.infer(Batch(rows=rows))
        except RejectClip as exc:
            rejected = [r for r in batch if exc.ref == r.clip.ref]
            for request in rejected or batch:
                request.future.set_exception(worker_error(exc))
            if rejected and len(rejected) < len(batch):  # the rest of the batch is fine
                self._infer([r for r in batch if r not in rejected])
            return
        except BackendLost:  # no batch can run on it any more: the replica dies (see run())
            raise
        except Exception as exc:  # RetryBatch, or any fault of the device or runtime
            for request in batch:
                request.future.set_exception(worker_error(exc))
            return
        run_s = time.perf_counter() - started
        self.on_batch(BatchReport(self.slot.index, len(batch), self.settings.batch_size, run_s))
        for request, output in zip(batch, outputs):
            wait_ms = (started - request.queued_at) * 1000
            request.future.set_result(Inference(output, wait_ms, run_s * 1000))


class ReplicaPool:
    """``start()`` loads every replica; ``submit(clip)`` returns a Future of its Inference."""

    def __init__(self, settings: Settings, factory: BackendFactory | None = None,
                 slots: list[DeviceSlot] | None = None,
                 on_batch: Callable[[BatchReport], None] = lambda report: None) -> None:
        if factory is None or slots is None:
            from model.devices import plan_slots
            from model.registry import create_backend

            factory = factory or create_backend
            slots = slots if slots is not None else plan_slots(model_config(settings))
        self.requests: queue.Queue = queue.Queue()
        self.replicas = [Replica(settings, slot, factory, self.requests, on_batch, self._died)
                         for slot in slots]
        self.death: ReplicaDied | None = None
        self._watchers: list[Callable[[ReplicaDied], None]] = []

    @property
    def identity(self) -> ModelIdentity:
        return self.replicas[0].backend.identity

    def start(self) -> None:
        """Start the replicas one after another, each loaded and warm; abort if one fails.

        One at a time: transformers' lazy module imports are not thread-safe, and loading weights
        is bound by disk and memory bandwidth, which parallel loads would only share.
        """
        for replica in self.replicas:
            replica.start()
            replica.ready.wait()
            if replica.failure is not None:
                self.stop()
                raise AbortStartup(f"replica {replica.slot.index} failed to load: "
                                   f"{replica.failure}") from replica.failure
        log.info("replicas ready", replicas=len(self.replicas),
                 slots=[r.slot.device for r in self.replicas])

    def submit(self, clip: Clip) -> Future:
        """The clip's future Inference; it fails with ReplicaDied once a replica has died."""
        future: Future = Future()
        if self.death is not None:
            future.set_exception(self.death)
            return future
        self.requests.put(_Request(clip, future, time.perf_counter()))
        if self.death is not None:  # it died between the check and the put: none may wait
            self._fail_queued(self.death)
        return future

    @contextlib.contextmanager
    def watching(self, on_death: Callable[[ReplicaDied], None]) -> Iterator[None]:
        """Within this block, ``on_death`` is called (from the dying thread) when a replica dies."""
        self._watchers.append(on_death)
        try:
            if self.death is not None:
                on_death(self.death)
            yield
        finally:
            self._watchers.remove(on_death)

    def _died(self, replica: Replica, exc: BaseException) -> None:
        death = ReplicaDied(f"replica {replica.slot.index} died: {exc!r}")
        death.__cause__ = exc
        self.death = death
        for on_death in list(self._watchers):  # first: stop receiving before clips fail
            on_death(death)
        _fail(replica.in_hand, death)
        self._fail_queued(death)

    def _fail_queued(self, death: ReplicaDied) -> None:
        stops = 0
        while True:
            try:
                item = self.requests.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stops += 1
            else:
                _fail([item], death)
        for _ in range(stops):  # stop() put them there for the live replicas
            self.requests.put(_STOP)

    def stop(self, timeout: float = 30.0) -> None:
        """Let queued clips finish, then stop every replica thread."""
        for _ in self.replicas:
            self.requests.put(_STOP)
        deadline = time.monotonic() + timeout
        for replica in self.replicas:
            if replica.is_alive():
                replica.join(max(0.0, deadline - time.monotonic()))


def worker_error(exc: Exception) -> ModfleetError:
    """What a failed batch means for its clips' messages: the one place where the model layer's
    errors become worker outcomes (a ``FixModelSetup`` while loading is ``start()``'s abort).

    ``RejectClip``: the clip can never run, it settles with a ``model_error`` verdict.
    ``RetryBatch`` or any other fault of the device or runtime: the message comes back later.
    (``BackendLost`` never gets here: ``_infer`` re-raises it, and the replica dies.)
    """
    if isinstance(exc, RejectClip):
        return SettleWithError("model_error", exc.message)
    reason = "transient device failure" if isinstance(exc, RetryBatch) else "failed"
    return RetryLater(f"model replica {reason}: {exc}")


def _fail(requests: list[_Request], error: BaseException) -> None:
    for request in requests:
        with contextlib.suppress(InvalidStateError):  # resolved or cancelled meanwhile
            request.future.set_exception(error)
