"""Errors of the model package, named for what the caller must do.

The model layer has its own root; the worker translates these at the one seam where model errors
reach it (its replica threads):

- ``FixModelSetup``: the configuration, checkpoint, compiled artifacts, SDK or device plan is
  wrong; stop before taking work.
  - ``ConfigInvalid``: a ``ModelConfig`` value is outside its limits; the message names it.
  - ``CheckpointUnusable``: the model directory is missing or not a checkpoint this layer can run.
  - ``ManifestMismatch``: compiled Neuron artifacts were built for other settings; recompile.
  - ``SdkMissing``: an optional package (Neuron SDK, NudeNet, torchao) is not installed.
  - ``UnsupportedOnNeuron``: the model family cannot run on the pinned Neuron SDK (Qwen2-VL).
  - ``DevicesUnavailable``: the replicas do not fit the devices of this machine.
  - ``PolicyInvalid``: the policy file is malformed.
- ``RetryBatch``: a transient device failure (out of memory, a runtime hiccup); the batch may
  succeed if tried again.
- ``BackendLost``: the backend can serve no more batches (a Neuron replica's process died); the
  replica must stop, and the worker with it, for its supervisor to restart it.
- ``RejectClip``: this input can never be run (wrong frame shape or dtype); ``ref`` names the clip.
"""

from __future__ import annotations


class ModelError(Exception):
    """Root of every error the model layer raises on purpose."""


class FixModelSetup(ModelError):
    """The model layer cannot start as configured; the message says what to fix."""


class ConfigInvalid(FixModelSetup):
    """A model configuration value is outside its limits."""


class CheckpointUnusable(FixModelSetup):
    """The checkpoint directory is missing, incomplete, or of an unsupported architecture."""


class ManifestMismatch(FixModelSetup):
    """Compiled artifacts do not match the model configuration; run `modfleet compile` again."""


class SdkMissing(FixModelSetup):
    """An optional package is not installed; the message names it and where to get it."""

    def __init__(self, package: str, purpose: str, hint: str = "") -> None:
        hint = hint or f"pip install {package}"
        super().__init__(f"{purpose} needs the {package!r} package, which is not installed: {hint}")
        self.package = package


class UnsupportedOnNeuron(FixModelSetup):
    """The checkpoint's family cannot run on the neuron backend; the message says why and what to
    use instead."""


class DevicesUnavailable(FixModelSetup):
    """The requested replicas do not fit the devices this machine has."""


class PolicyInvalid(FixModelSetup):
    """The moderation policy file is malformed; the message names the field."""


class RetryBatch(ModelError):
    """A transient device failure: the batch may succeed if tried again."""


class BackendLost(ModelError):
    """The backend cannot serve any more batches (its device process is gone); retrying the batch
    on it cannot succeed, so the replica must stop."""


class RejectClip(ModelError):
    """This clip can never run through the model; ``ref`` names it (empty: the whole batch)."""

    def __init__(self, message: str, ref: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.ref = ref
