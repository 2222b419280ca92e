"""Errors of the lab (never shipped): the real Terraform CLI run on a copy of infra/.

- ``TerraformUnavailable``: no terraform binary, or no provider mirror, where the message says it
  looked; install it or point ``MODFLEET_TERRAFORM`` / ``MODFLEET_TF_PLUGIN_DIR`` at it.  Exits 2.
- ``TerraformFailed``: a terraform command exited non-zero; its output is in the message.
"""

from __future__ import annotations

from tools.ops.exceptions import ToolError
from worker.exceptions import AbortStartup


class TerraformUnavailable(ToolError, AbortStartup):
    """Terraform or its provider mirror is missing here: install it, or point the settings at it."""


class TerraformFailed(ToolError):
    """A terraform command exited non-zero: its output says why (a plan error, a failed test)."""

    def __init__(self, command: list[str], returncode: int, output: str) -> None:
        super().__init__(f"`{' '.join(command)}` exited {returncode}:\n{output[-4000:]}")
        self.command = command
        self.returncode = returncode
        self.output = output
