"""Client-side replay of a dead-letter queue: a scan (tools/ops/dlq_scan.py) whose action is to send
each selected letter to the source queue, then delete it from the DLQ.

Safety: a letter is deleted from the DLQ only after SendMessageBatch reported it sent, so a crash
at any point leaves every letter in the DLQ, in the destination, or (at worst, between the send and
the delete) in both; the worker's idempotency key identifies such a duplicate.  On SIGINT/SIGTERM
the batch in hand is finished (sent and deleted) or not started, never left half-way.

Permanent letters: a letter whose body names no video (the worker dead-lettered it as
``poison_body`` and this version's parser still reads no job in it) would only come back to the
DLQ; a replay leaves such letters unless ``force`` is set, and counts them as ``permanent``.

The rate limit is a small hand-written spacer (``RateLimit``), not aiolimiter: see ARCHITECTURE.md,
"Libraries: used, and not used".
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tools.ops.dead_letters import DeadLetter, Selector
from tools.ops.dlq_scan import (
    DEFAULT_MAX_HELD,
    DlqScan,
    ScanFailure,
    ScanReport,
    Stop,
    check_scan_limits,
)
from tools.ops.exceptions import AwsCallFailed, InvalidRequest
from tools.ops.queues import call_batch, is_fifo

ReplayReport = ScanReport    # the account replay-dlq prints
ReplayFailure = ScanFailure


@dataclass(frozen=True)
class ReplayPlan:
    """What to replay, where to, and how fast (SQS limits in brackets)."""

    dlq_url: str
    destination_url: str
    selector: Selector = field(default_factory=Selector)
    limit: int | None = None          # --max: letters to move (or list, when dry) at most
    rate: float | None = None         # --rate: letters sent per second at most
    dry_run: bool = False
    force: bool = False               # --force: replay permanent letters too
    hold_s: int = 300                 # visibility while held during the scan [SQS: 0-43200 s]
    wait_s: int = 1                   # long poll per receive [SQS: 0-20 s]
    max_held: int = DEFAULT_MAX_HELD  # letters held at once; beyond it they are rotated

    def __post_init__(self) -> None:
        if self.destination_url.rstrip("/") == self.dlq_url.rstrip("/"):
            raise InvalidRequest("the destination is the dead-letter queue itself")
        if self.rate is not None and self.rate <= 0:
            raise InvalidRequest(f"--rate must be positive, got {self.rate}")
        check_scan_limits(self.limit, self.hold_s, self.wait_s, self.max_held)


class RateLimit:
    """Spaces sends so that, from the first on, at most ``per_second`` letters go per second;
    waits with ``wait`` (a Stop's), so that a signal cuts the wait short."""

    def __init__(self, per_second: float | None, monotonic: Callable[[], float],
                 wait: Callable[[float], Any]) -> None:
        self.per_second, self._monotonic, self._wait = per_second, monotonic, wait
        self._start: float | None = None
        self._count = 0

    def acquire(self, n: int) -> None:
        if not self.per_second:
            return
        now = self._monotonic()
        self._start = now if self._start is None else self._start
        due = self._start + self._count / self.per_second
        if due > now:
            self._wait(due - now)
        self._count += n


class Replayer(DlqScan):
    """A scan that moves what it selects to ``plan.destination_url``."""

    command = "replay-dlq"
    verb = "moved"

    def __init__(self, sqs: Any, plan: ReplayPlan, *, monotonic: Callable[[], float] | None = None,
                 sleep: Callable[[float], Any] | None = None, stop: Stop | None = None,
                 **kwargs: Any) -> None:
        super().__init__(sqs, plan, stop=stop, **kwargs)
        self._rate = RateLimit(plan.rate, monotonic or time.monotonic, sleep or self.stop.wait)
        self._fifo = is_fifo(plan.destination_url)

    def _receive_size(self) -> int:
        # With a low --rate, receive no more than one second's worth: fewer letters held waiting.
        size = super()._receive_size()
        return size if not self.plan.rate else min(size, max(1, int(self.plan.rate)))

    def _refuses(self, letter: DeadLetter) -> bool:
        return letter.permanent

    def _act(self, letters: list[DeadLetter]) -> None:
        if not self.stop.is_set():
            self._rate.acquire(len(letters))
        if self.stop.is_set():  # asked to stop (perhaps while waiting): leave them, released
            self._hold_all(letters)
            return
        by_id = {f"m{i}": letter for i, letter in enumerate(letters)}
        entries = [letter.replay_entry(entry_id, self._fifo) for entry_id, letter in by_id.items()]
        try:
            sent = call_batch(functools.partial(self.sqs.send_message_batch,
                                                QueueUrl=self.plan.destination_url), entries)
        except AwsCallFailed as exc:
            for letter in letters:
                self._fail(letter, "send", "SendMessageBatch", str(exc))
            raise
        for failure in sent.failed:
            self._fail(by_id[failure.id], "send", failure.code, failure.message)
        self._delete_from_dlq([by_id[ok["Id"]] for ok in sent.succeeded], self._duplicate)

    def _target(self) -> dict[str, Any]:
        return {"destination_url": self.plan.destination_url, "native": False}


def replay(sqs: Any, plan: ReplayPlan, **kwargs: Any) -> ReplayReport:
    """Scan the DLQ once under ``plan`` and return the account."""
    return Replayer(sqs, plan, **kwargs).run()
