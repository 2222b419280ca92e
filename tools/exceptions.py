"""Errors of the operator tools, named for what the operator must do.

- ``InvalidRequest``: fix the command line (a bad regex or duration, ``--native`` with a filter, no
  destination queue to be found).  Subclasses ``AbortStartup`` so the CLI prints it and exits 2.
- ``UnsupportedByEndpoint``: the endpoint refuses an operation (moto lacks StartMessageMoveTask);
  use the client-side path instead.  Also exits 2: nothing was changed.
- ``ScanLimitReached``: a scan cannot go on within SQS's limits (the held-message cap of a FIFO
  dead-letter queue); it stops, releases what it holds and reports, exit 1.
- ``AwsCallFailed``: an AWS call failed after the client's own retries; the command stops, reports
  what it did so far and exits 1.  Nothing is lost: every path sends before it deletes.
- ``TerraformUnavailable``: no terraform binary, or no provider mirror, where the message says it
  looked; install it or point ``MODFLEET_TERRAFORM`` / ``MODFLEET_TF_PLUGIN_DIR`` at it.  Exits 2.
- ``TerraformFailed``: a terraform command exited non-zero; its output is in the message.
"""

from __future__ import annotations

from worker.exceptions import AbortStartup, ModfleetError


class ToolError(ModfleetError):
    """Root of every error an operator tool raises on purpose."""


class InvalidRequest(ToolError, AbortStartup):
    """The command line asks for something impossible or ambiguous: change the flags."""


class UnsupportedByEndpoint(ToolError, AbortStartup):
    """The endpoint does not implement an operation: take the other path the message names."""


class AwsCallFailed(ToolError):
    """An AWS call failed after retries: investigate (permissions, throttling, the endpoint)."""


class TerraformUnavailable(ToolError, AbortStartup):
    """Terraform or its provider mirror is missing here: install it, or point the settings at it."""


class TerraformFailed(ToolError):
    """A terraform command exited non-zero: its output says why (a plan error, a failed test)."""

    def __init__(self, command: list[str], returncode: int, output: str) -> None:
        super().__init__(f"`{' '.join(command)}` exited {returncode}:\n{output[-4000:]}")
        self.command = command
        self.returncode = returncode
        self.output = output


class ScanLimitReached(ToolError):
    """A scan reached a limit it cannot work around: run again after the first run's changes."""
