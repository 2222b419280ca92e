"""Errors of the model package, named for what the caller must do.

They branch from the worker's errors so the pipeline settles them without knowing the model layer:

- ``FixModelSetup`` (an ``AbortStartup``): the checkpoint, the compiled artifacts, the SDK or the
  device plan is wrong; stop before taking work.
  - ``CheckpointUnusable``: the model directory is missing or not a checkpoint this layer can run.
  - ``ManifestMismatch``: compiled Neuron artifacts were built for other settings; recompile.
  - ``SdkMissing``: an optional package (Neuron SDK, NudeNet, torchao) is not installed.
  - ``DevicesUnavailable``: the replicas do not fit the devices of this machine.
- ``RetryBatch`` (a ``RetryLater``): a transient device failure (out of memory, a runtime hiccup);
  release the batch's messages so they come back.
- ``RejectClip`` (a ``SettleWithError`` with code ``model_error``): this input can never be run
  (wrong frame shape or dtype); settle it with an error verdict.
- ``PolicyInvalid`` (a ``FixModelSetup``): the policy file is malformed.
"""

from __future__ import annotations

from worker.exceptions import AbortStartup, RetryLater, SettleWithError


class FixModelSetup(AbortStartup):
    """The model layer cannot start as configured; the message says what to fix."""


class CheckpointUnusable(FixModelSetup):
    """The checkpoint directory is missing, incomplete, or of an unsupported architecture."""


class ManifestMismatch(FixModelSetup):
    """Compiled artifacts do not match the worker's settings; run `modfleet compile` again."""


class SdkMissing(FixModelSetup):
    """An optional package is not installed; the message names it and where to get it."""

    def __init__(self, package: str, purpose: str, hint: str = "") -> None:
        hint = hint or f"pip install {package}"
        super().__init__(f"{purpose} needs the {package!r} package, which is not installed: {hint}")
        self.package = package


class DevicesUnavailable(FixModelSetup):
    """The requested replicas do not fit the devices this machine has."""


class PolicyInvalid(FixModelSetup):
    """The moderation policy file is malformed; the message names the field."""


class RetryBatch(RetryLater):
    """A transient device failure: release the batch's messages so they come back."""


class RejectClip(SettleWithError):
    """This clip can never run through the model: settle it with a ``model_error`` verdict."""

    def __init__(self, message: str, ref: str = "") -> None:
        super().__init__("model_error", message)
        self.ref = ref
