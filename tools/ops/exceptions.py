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

Every command exits by one table (README "Exit codes", ``ExitCode``); the CLI maps what escapes a
command onto it once (``tools.ops.cli.exit_code_for``): ``AbortStartup`` and its kin 2, an AWS
call that failed for a cause no retry cures (unknown queue, refused credentials) 2, any other AWS
failure or ``AwsUnavailable`` 3, Ctrl-C (``KeyboardInterrupt``) 130, SIGTERM (``Terminated``) 143.
A command that handles an interrupt itself (to release what it holds and print its account) catches
``INTERRUPTS`` and returns ``interrupt_exit_code(exc)``.
"""

from __future__ import annotations

import enum
import signal

from worker.exceptions import AbortStartup, ModfleetError


class ExitCode(enum.IntEnum):
    """The one exit-code table of every modfleet command (README "Exit codes")."""

    DONE = 0  # everything asked for was done
    DONE_IN_PART = 1  # some items failed or were left; the report says which
    FIX_INPUT = 2  # fix the input or the settings: nothing (more) was done
    UNAVAILABLE = 3  # a service could not be reached or kept failing after retries
    INTERRUPTED = 128 + signal.SIGINT  # 130, Ctrl-C
    TERMINATED = 128 + signal.SIGTERM  # 143, SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived (the CLI's handler raises it, as Python raises KeyboardInterrupt on SIGINT);
    a BaseException so that ``except Exception`` in a command does not swallow it."""


INTERRUPTS = (KeyboardInterrupt, Terminated)


def interrupt_exit_code(exc: BaseException) -> int:
    """130 for Ctrl-C, 143 for SIGTERM."""
    return ExitCode.TERMINATED if isinstance(exc, Terminated) else ExitCode.INTERRUPTED


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
