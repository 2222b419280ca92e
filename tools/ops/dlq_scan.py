"""One pass over a dead-letter queue: receive each letter once, select, act on those, release.

replay-dlq (move to a queue), ``dlq export`` (write out) and ``dlq delete`` are this pass with a
different action (``DlqScan._act``); ``--dry-run`` lists the selection and acts on nothing.

Termination: each received message is held invisible for the whole scan (``hold_s``) instead of
being released at once, because a released message comes straight back on the next receive and a
scan that releases as it goes either never ends or ends before it has seen the rest.  The scan
stops when a receive returns nothing (no visible message is left), or when ``STALE_RECEIVES``
receives in a row bring nothing new (holds shorter than the scan keep handing back what it has
seen).  Every message still held is released with ChangeMessageVisibility 0 when the scan ends,
on SIGINT/SIGTERM too (``stop``); after a crash they reappear by themselves when ``hold_s`` lapses.

The held-message cap: SQS keeps at most 120,000 messages of a standard queue in flight, and a
receive beyond that fails (OverLimit).  A scan that changes nothing (a dry run, an export) stops
receiving once ``max_held`` messages are held and reports how many it did not see.  A scan that
acts (a replay, a delete) goes on: each further message it leaves in the DLQ is *rotated* instead
of held: sent to the DLQ again (same body and attributes, the original send time kept in
``modfleet.first_sent_at`` so that ``--older-than`` still sees its age) with a delay of ``hold_s``
(at most SQS's 900 s), then its received copy deleted.  The delay hides it from the rest of the
scan as a hold would, without counting as in flight; its new message id is remembered, so if the
delay lapses before the scan ends it is recognised, never acted on or counted twice.  Send first,
delete after: a crash between the two leaves it twice in the DLQ.  A letter with no room for that
attribute (SQS allows ten) is held over the cap instead: rotating it would reset its age.

The letters it could not see: a letter delayed (rotated by an earlier run) or held by another
reader is not returned by a receive.  When a scan has run out of visible letters it compares the
DLQ's depth (visible + in flight + delayed) with what it knowingly left there; the difference is
reported as ``unseen`` and the command exits 1 (done in part) while any remain.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from more_itertools import chunked

from tools.ops.dead_letters import DeadLetter, Selector
from tools.ops.exceptions import AwsCallFailed, ExitCode, InvalidRequest, ScanLimitReached
from tools.ops.queues import BATCH_LIMIT, aws_call, call_batch, is_fifo, queue_depth
from worker.errors_aws import is_incurable
from worker.logs import get_logger

log = get_logger(__name__)
SQS_IN_FLIGHT_QUOTA = 120_000  # messages in flight on one standard queue
DEFAULT_MAX_HELD = 110_000     # below the quota: room for a dry run or a worker beside the scan
MAX_DELAY_S = 900              # SQS's limit on DelaySeconds
STALE_RECEIVES = 100           # receives in a row with nothing new that end a scan


class Stop(Protocol):
    """What a scan asks between steps whether to stop (``tools.ops.interrupts.StopOnSignal``)."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


class NeverStop:
    """The default ``Stop``: sleeps with time.sleep and never asks to stop."""

    def is_set(self) -> bool:
        return False

    def wait(self, timeout: float) -> bool:
        time.sleep(timeout)
        return False


@dataclass(frozen=True)
class ScanPlan:
    """Which letters, how many, and how the scan holds what it leaves (SQS limits in brackets)."""

    dlq_url: str
    selector: Selector = field(default_factory=Selector)
    limit: int | None = None          # --max: letters to act on (or list, when dry) at most
    dry_run: bool = False
    force: bool = False               # act on permanent letters too (replay only asks)
    hold_s: int = 300                 # visibility while held during the scan [SQS: 0-43200 s]
    wait_s: int = 1                   # long poll per receive [SQS: 0-20 s]
    max_held: int = DEFAULT_MAX_HELD  # messages held at once; see the module docstring

    def __post_init__(self) -> None:
        check_scan_limits(self.limit, self.hold_s, self.wait_s, self.max_held)


def check_scan_limits(limit: int | None, hold_s: int, wait_s: int, max_held: int) -> None:
    """Raise InvalidRequest for a flag outside what SQS or the scan allows."""
    if limit is not None and limit < 1:
        raise InvalidRequest(f"--max must be at least 1, got {limit}")
    if not 1 <= hold_s <= 43200 or not 0 <= wait_s <= 20:
        raise InvalidRequest("--hold must be within 1-43200 s and the wait within 0-20 s")
    if not BATCH_LIMIT <= max_held <= SQS_IN_FLIGHT_QUOTA:
        raise InvalidRequest(f"--max-held must be within {BATCH_LIMIT}-{SQS_IN_FLIGHT_QUOTA} "
                             f"(SQS's in-flight quota), got {max_held}")


@dataclass(frozen=True)
class ScanFailure:
    """A selected letter that was not handled cleanly; ``stage`` says where it stopped."""

    message_id: str
    stage: str  # send: still only in the DLQ; delete: still in the DLQ (after a send, in both)
    code: str
    message: str


@dataclass(frozen=True)
class ScanReport:
    """The account of one scan (see tools/README.md for the JSON form of each command)."""

    command: str                  # replay-dlq | dlq export | dlq delete
    verb: str                     # moved | exported | deleted: the JSON key of ``done``
    target: dict[str, Any]        # where the letters went: destination_url, output
    dlq_url: str
    dry_run: bool
    selector: dict[str, Any]
    scanned: int                  # distinct letters received
    matched: int                  # of those, selected by the filters
    done: int                     # moved, exported or deleted
    skipped: int                  # left in the DLQ: no match, beyond --max, permanent
    permanent: int                # of the skipped, matched but permanent (replay without --force)
    failed: int                   # selected but not acted on (still in the DLQ)
    duplicated: int               # acted on but not deleted from the DLQ (so there twice)
    released: int                 # made visible again at the end (ChangeMessageVisibility 0)
    rotated: int                  # sent to the back of the DLQ for want of room to hold them
    unseen: int | None            # in the DLQ but never received (None: the scan did not finish)
    dlq_before: int | None        # the DLQ's depth, visible + in flight + delayed, before
    dlq_after: int | None         # and after
    elapsed_s: float
    interrupted: str | None       # SIGINT | SIGTERM
    aborted: str | None
    exit_code: int                # by the one table: 0, 1, 2, 3, 130, 143
    candidates: tuple[dict[str, Any], ...]  # dry run: the letters it would act on
    refused: tuple[dict[str, Any], ...]     # dry run: the permanent letters it would leave
    failures: tuple[ScanFailure, ...]

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    @property
    def moved(self) -> int:
        return self.done

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for name in ("verb", "target", "done"):
            del data[name]
        data["failures"] = [asdict(f) for f in self.failures]
        data["candidates"] = list(self.candidates)
        data["refused"] = list(self.refused)
        return {"command": self.command, **self.target, self.verb: self.done, **data}


class DlqScan:
    """One scan of a DLQ under a plan; subclasses say what to do with the selected letters.

    ``run()`` once and read its report.  ``plan`` is a ScanPlan or a plan with the same fields
    (``ReplayPlan`` adds the destination and the rate).  Hooks: ``_act(letters)`` (records what it
    did through ``_done``, ``_fail``, ``_delete_from_dlq`` and ``_hold_all``), ``_refuses(letter)``
    (a matching letter to leave alone), ``_finish()`` (after the scan, before the account),
    ``_target()`` (where the letters went, for the account), ``mutates`` (whether the action
    changes the DLQ, which decides between rotating and stopping at the held-message cap).
    """

    command = "dlq"
    verb = "done"
    mutates = True

    def __init__(self, sqs: Any, plan: ScanPlan, *, clock: Callable[[], float] = time.time,
                 stop: Stop | None = None,
                 on_progress: Callable[[float], None] = lambda n: None) -> None:
        self.sqs, self.plan, self._clock, self._progress = sqs, plan, clock, on_progress
        self.stop = stop or NeverStop()
        self._seen: set[str] = set()
        self._rotated_ids: set[str] = set()  # message ids of the copies rotation sent
        self._held: dict[str, str] = {}  # message id -> latest receipt handle
        self._rotating: list[DeadLetter] = []  # to leave in the DLQ, with no room to hold them
        self._taken = 0
        self._extra_copies = 0  # letters twice in the DLQ (a rotation whose delete failed)
        self._counts = dict(matched=0, done=0, skipped=0, permanent=0, failed=0, duplicated=0,
                            released=0, rotated=0)
        self._candidates: list[dict[str, Any]] = []
        self._refused: list[dict[str, Any]] = []
        self._failures: list[ScanFailure] = []
        self._aborted: str | None = None
        self._abort_code = 0
        self._finished = False  # ran out of visible letters, or reached the held-message cap

    # ---- the pass ------------------------------------------------------------------------------

    def run(self) -> ScanReport:
        started = time.monotonic()
        before = self._depth()
        try:
            self._scan()
        except (AwsCallFailed, ScanLimitReached) as exc:
            # Stop, but still release and report: the operator needs to know what already happened.
            self._aborted = str(exc)
            self._abort_code = _abort_code(exc)
            log.error("scan aborted", command=self.command, error=str(exc))
        finally:
            self._release_held()
        try:
            self._finish()
        except AwsCallFailed as exc:
            self._aborted, self._abort_code = str(exc), _abort_code(exc)
        return self._report(time.monotonic() - started, before, self._depth())

    def _scan(self) -> None:
        stale = 0
        while not self._limit_reached() and stale < STALE_RECEIVES and not self.stop.is_set():
            size = self._receive_size()
            if size == 0:  # a scan that changes nothing holds at most max_held, then stops
                self._finished = True
                return
            fresh, returned = self._receive_fresh(size)
            if not returned:
                self._finished = True
                return
            stale = 0 if fresh else stale + 1
            self._handle(fresh)
            self._rotate()

    def _limit_reached(self) -> bool:
        return self.plan.limit is not None and self._taken >= self.plan.limit

    def _receive_size(self) -> int:
        if self.mutates and not self.plan.dry_run:
            return BATCH_LIMIT
        return max(0, min(BATCH_LIMIT, self.plan.max_held - len(self._held)))

    def _receive_fresh(self, size: int) -> tuple[list[DeadLetter], int]:
        """The messages not seen before, and how many the receive returned in all."""
        response = aws_call(
            self.sqs.receive_message, QueueUrl=self.plan.dlq_url, MaxNumberOfMessages=size,
            WaitTimeSeconds=self.plan.wait_s, VisibilityTimeout=self.plan.hold_s,
            MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"])
        fresh = []
        messages = response.get("Messages", [])
        for letter in map(DeadLetter.from_sqs, messages):
            if letter.message_id in self._seen or letter.message_id in self._rotated_ids:
                # Its earlier hold or rotation delay lapsed (a long scan): hide it again.
                self._hold(letter)
            else:
                self._seen.add(letter.message_id)
                fresh.append(letter)
        return fresh, len(messages)

    def _handle(self, fresh: list[DeadLetter]) -> None:
        now = self._clock()
        selected = []
        for letter in fresh:
            matches = self.plan.selector.selects(letter, now)
            self._counts["matched"] += matches
            refused = matches and not self.plan.force and self._refuses(letter)
            if matches and not refused and not self._limit_reached():
                self._taken += 1
                selected.append(letter)
            else:
                self._counts["permanent"] += refused
                self._counts["skipped"] += 1
                self._hold(letter)
                if refused and self.plan.dry_run:
                    self._refused.append(letter.describe(now))
        if self.plan.dry_run:
            self._candidates.extend(letter.describe(now) for letter in selected)
            for letter in selected:
                self._hold(letter)
        elif selected:
            self._act(selected)
        self._progress(len(fresh))

    # ---- hooks ---------------------------------------------------------------------------------

    def _act(self, letters: list[DeadLetter]) -> None:
        raise NotImplementedError

    def _refuses(self, letter: DeadLetter) -> bool:
        return False

    def _finish(self) -> None:
        """After the scan and the release: flush what the action wrote (an export's upload)."""

    def _target(self) -> dict[str, Any]:
        return {}

    # ---- what an action records ----------------------------------------------------------------

    def _done(self, count: int) -> None:
        self._counts["done"] += count

    def _fail(self, letter: DeadLetter, stage: str, code: str, message: str) -> None:
        self._counts["failed"] += 1
        self._failures.append(ScanFailure(letter.message_id, stage, code, message))
        self._hold(letter)
        log.warning(f"{self.command}: failed", message_id=letter.message_id, code=code)

    def _duplicate(self, letter: DeadLetter, code: str, message: str) -> None:
        # Acted on but not deleted: it is in the DLQ still; released with the rest (over the cap
        # if need be: rotating it would only make a third copy), so that nothing stays hidden.
        self._held[letter.message_id] = letter.receipt_handle
        self._counts["done"] += 1
        self._counts["duplicated"] += 1
        self._failures.append(ScanFailure(letter.message_id, "delete", code, message))
        log.warning(f"{self.command}: not deleted from the DLQ", message_id=letter.message_id,
                    code=code)

    def _hold_all(self, letters: list[DeadLetter]) -> None:
        """Keep letters an interrupted action did not get to: released with the rest."""
        for letter in letters:
            self._hold(letter)

    def _delete_from_dlq(self, letters: list[DeadLetter],
                         not_deleted: Callable[[DeadLetter, str, str], None]) -> None:
        """Delete letters from the DLQ, counting each deleted one as done; ``not_deleted(letter,
        code, message)`` records each that stayed (``_duplicate`` after a send, ``_failed_delete``
        for a delete)."""
        if not letters:
            return
        by_id = {f"d{i}": letter for i, letter in enumerate(letters)}
        entries = [{"Id": i, "ReceiptHandle": letter.receipt_handle} for i, letter in by_id.items()]
        try:
            deleted = call_batch(functools.partial(self.sqs.delete_message_batch,
                                                   QueueUrl=self.plan.dlq_url), entries)
        except AwsCallFailed as exc:
            for letter in letters:
                not_deleted(letter, "DeleteMessageBatch", str(exc))
            raise
        self._done(len(deleted.succeeded))
        for failure in deleted.failed:
            not_deleted(by_id[failure.id], failure.code, failure.message)

    def _failed_delete(self, letter: DeadLetter, code: str, message: str) -> None:
        self._fail(letter, "delete", code, message)

    # ---- holding, rotating, releasing ----------------------------------------------------------

    def _hold(self, letter: DeadLetter) -> None:
        if (letter.message_id in self._held or len(self._held) < self.plan.max_held
                or not letter.can_rotate or not self.mutates or self.plan.dry_run):
            self._held[letter.message_id] = letter.receipt_handle
        else:
            self._rotating.append(letter)

    def _rotate(self) -> None:
        """Send what could not be held to the back of the DLQ, delayed; then delete it."""
        pending, self._rotating = self._rotating, []
        if pending and is_fifo(self.plan.dlq_url):
            self._held.update((x.message_id, x.receipt_handle) for x in pending)
            raise ScanLimitReached(
                f"{len(self._held)} messages held (--max-held {self.plan.max_held}) and a FIFO "
                "queue cannot delay a message to its back: act on what matched, then run again")
        for chunk in chunked(pending, BATCH_LIMIT):
            by_id = {f"r{i}": letter for i, letter in enumerate(chunk)}
            entries = [letter.rotation_entry(entry_id, min(self.plan.hold_s, MAX_DELAY_S))
                       for entry_id, letter in by_id.items()]
            try:
                sent = call_batch(functools.partial(self.sqs.send_message_batch,
                                                    QueueUrl=self.plan.dlq_url), entries)
            except AwsCallFailed:
                self._held.update((x.message_id, x.receipt_handle) for x in chunk)
                raise
            for failure in sent.failed:  # still in the DLQ as it was: hold it over the cap
                letter = by_id[failure.id]
                self._held[letter.message_id] = letter.receipt_handle
                self._failures.append(ScanFailure(letter.message_id, "rotate", failure.code,
                                                  failure.message))
            self._rotated_ids.update(ok["MessageId"] for ok in sent.succeeded)
            self._delete_rotated([by_id[ok["Id"]] for ok in sent.succeeded])

    def _delete_rotated(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        entries = [{"Id": f"d{i}", "ReceiptHandle": x.receipt_handle}
                   for i, x in enumerate(letters)]
        try:
            deleted = call_batch(functools.partial(self.sqs.delete_message_batch,
                                                   QueueUrl=self.plan.dlq_url), entries)
        except AwsCallFailed as exc:
            for letter in letters:
                self._rotation_not_deleted(letter, "DeleteMessageBatch", str(exc))
            raise
        self._counts["rotated"] += len(deleted.succeeded)
        for failure in deleted.failed:
            self._rotation_not_deleted(letters[int(failure.id[1:])], failure.code,
                                       failure.message)

    def _rotation_not_deleted(self, letter: DeadLetter, code: str, message: str) -> None:
        # Twice in the DLQ now (the delayed copy and this one): release this one with the rest.
        self._held[letter.message_id] = letter.receipt_handle
        self._extra_copies += 1
        self._failures.append(ScanFailure(letter.message_id, "rotate", code, message))

    def _release_held(self) -> None:
        """Make every held message visible again at once (batched ChangeMessageVisibility 0)."""
        items = list(self._held.items())
        self._held.clear()
        for chunk in chunked(items, BATCH_LIMIT):
            entries = [{"Id": f"r{i}", "ReceiptHandle": handle, "VisibilityTimeout": 0}
                       for i, (_, handle) in enumerate(chunk)]
            try:
                outcome = call_batch(functools.partial(self.sqs.change_message_visibility_batch,
                                                       QueueUrl=self.plan.dlq_url), entries)
            except AwsCallFailed as exc:
                # Not fatal: a message not released reappears by itself when its hold lapses.
                log.warning("could not release held messages", count=len(chunk), error=str(exc))
                continue
            self._counts["released"] += len(outcome.succeeded)

    # ---- the account ---------------------------------------------------------------------------

    def _depth(self) -> int | None:
        """Letters in the DLQ, visible, in flight or delayed; None if SQS does not say."""
        try:
            return queue_depth(self.sqs, self.plan.dlq_url).total
        except AwsCallFailed as exc:
            log.warning("could not read the DLQ's depth", error=str(exc))
            return None

    def _unseen(self, after: int | None) -> int | None:
        if not self._finished or after is None or self.stop.is_set():
            return None
        if self.mutates and not self.plan.dry_run:
            left = (self._counts["skipped"] + self._counts["failed"]
                    + self._counts["duplicated"] + self._extra_copies)
        else:
            left = len(self._seen)
        return max(0, after - left)

    def _exit_code(self, unseen: int | None) -> int:
        """By the one table (tools.ops.exceptions.ExitCode): interrupted, aborted, in part, done."""
        if self.stop.is_set():
            return getattr(self.stop, "exit_code", None) or ExitCode.TERMINATED
        if self._abort_code:
            return self._abort_code
        if self._counts["failed"] or self._counts["duplicated"] or unseen:
            return ExitCode.DONE_IN_PART
        return ExitCode.DONE

    def _report(self, elapsed_s: float, before: int | None, after: int | None) -> ScanReport:
        unseen = self._unseen(after)
        interrupted = getattr(self.stop, "signal_name", None) if self.stop.is_set() else None
        return ScanReport(
            command=self.command, verb=self.verb, target=self._target(),
            dlq_url=self.plan.dlq_url, dry_run=self.plan.dry_run,
            selector=self.plan.selector.describe(), scanned=len(self._seen), **self._counts,
            unseen=unseen, dlq_before=before, dlq_after=after, elapsed_s=round(elapsed_s, 3),
            interrupted=interrupted or ("stopped" if self.stop.is_set() else None),
            aborted=self._aborted, exit_code=self._exit_code(unseen),
            candidates=tuple(self._candidates), refused=tuple(self._refused),
            failures=tuple(self._failures))


def _abort_code(exc: Exception) -> int:
    """What an aborted scan exits with: a queue gone or access refused is the operator's to fix
    (2), AWS failing after retries is unavailable (3), a FIFO DLQ's cap is done in part (1)."""
    if isinstance(exc, ScanLimitReached):
        return ExitCode.DONE_IN_PART
    return ExitCode.FIX_INPUT if is_incurable(exc) else ExitCode.UNAVAILABLE
