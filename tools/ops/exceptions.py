"""Errors of the operator tools, named for what the operator must do.

- ``InvalidRequest``: fix the command line (a bad regex or duration, ``--native`` with a filter, no
  destination queue to be found).  Subclasses ``AbortStartup`` so the CLI prints it and exits 2.
- ``UnsupportedByEndpoint``: the endpoint refuses an operation (moto lacks StartMessageMoveTask);
  use the client-side path instead.  Also exits 2: nothing was changed.
- ``ScanLimitReached``: a scan cannot go on within SQS's limits (the held-message cap of a FIFO
  dead-letter queue); it stops, releases what it holds and reports, exit 1.
- ``AwsCallFailed``: an AWS call failed after the client's own retries; the command stops, reports
  what it did so far and exits 1.  Nothing is lost: every path sends before it deletes.
- ``LabNotInstalled``: a lab command (demo, local-stack, bench, chaos) run where only what ships is
  installed (an instance's wheel); run it from a clone of the repository.  Exits 2.

The lab's own errors (Terraform runs) are in ``tools/lab/exceptions.py``.
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


class LabNotInstalled(ToolError, AbortStartup):
    """The command needs the lab (tools/lab), which ships only in a source checkout: run it there."""


class ScanLimitReached(ToolError):
    """A scan reached a limit it cannot work around: run again after the first run's changes."""
