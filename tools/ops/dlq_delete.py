"""`dlq delete`: delete the dead letters the filters select, and account for each.

A scan (tools/ops/dlq_scan.py) whose action is DeleteMessageBatch; ``--dry-run`` lists what it would
delete.  What it does not select stays in the DLQ unchanged (rotated to its back, keeping its age,
when the DLQ holds more than ``--max-held``).
"""

from __future__ import annotations

from tools.ops.dead_letters import DeadLetter
from tools.ops.dlq_scan import DlqScan


class Deleter(DlqScan):
    """A scan that deletes what it selects."""

    command = "dlq delete"
    verb = "deleted"

    def _act(self, letters: list[DeadLetter]) -> None:
        if self.stop.is_set():  # asked to stop: leave them, they are released with the rest
            self._hold_all(letters)
            return
        self._delete_from_dlq(letters, self._failed_delete)  # not deleted: failed, and released
