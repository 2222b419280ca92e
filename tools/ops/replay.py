"""Client-side replay of a dead-letter queue: receive, select, send to the source queue, delete.

Safety: a message is deleted from the DLQ only after SendMessageBatch reported it sent, so a crash
at any point leaves every message in the DLQ, in the destination, or (at worst, between the send and
the delete) in both; the worker's idempotency key identifies such a duplicate.

Termination: each received message is held invisible for the whole scan (``hold_s``) instead of
being released at once, because a released message comes straight back on the next receive and a
scan that releases as it goes either never ends or ends before it has seen the rest.  The scan
stops when a long-poll receive returns nothing (no visible message is left), or when
``STALE_RECEIVES`` receives in a row bring nothing new (holds shorter than the scan keep handing
back what it has seen).  Every message still held (did not match, beyond ``--max``, failed to
send, or listed by ``--dry-run``) is released with ChangeMessageVisibility 0 when the scan ends,
including on Ctrl-C; after a crash they reappear by themselves when ``hold_s`` lapses.

The held-message cap: SQS keeps at most 120,000 messages of a standard queue in flight, and a
receive beyond that fails (OverLimit).  Once ``max_held`` messages are held, each further message
to be left in the DLQ is *rotated* instead of held: sent to the DLQ again (same body and
attributes, the original send time kept in ``modfleet.first_sent_at``) with a delay of ``hold_s``
(at most SQS's 900 s), then its received copy deleted.  The delay hides it from the rest of the scan
as a hold would, without counting as in flight; its new message id is remembered, so if the delay
lapses before the scan ends it is recognised and rotated again, never replayed or counted twice.
Send first, delete after, as for a replay: a crash between the two leaves it twice in the DLQ.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from more_itertools import chunked

from tools.ops.dead_letters import DeadLetter, Selector
from tools.ops.exceptions import AwsCallFailed, InvalidRequest, ScanLimitReached
from tools.ops.queues import BATCH_LIMIT, aws_call, call_batch, is_fifo
from worker.logs import get_logger

log = get_logger(__name__)
SQS_IN_FLIGHT_QUOTA = 120_000  # messages in flight on one standard queue
DEFAULT_MAX_HELD = 110_000     # below the quota: room for a dry run or a worker beside the scan
MAX_DELAY_S = 900              # SQS's limit on DelaySeconds
STALE_RECEIVES = 100           # receives in a row with nothing new that end a scan


@dataclass(frozen=True)
class ReplayPlan:
    """What to replay, where to, and how fast."""

    dlq_url: str
    destination_url: str
    selector: Selector = field(default_factory=Selector)
    limit: int | None = None          # --max: messages to move (or list, when dry) at most
    rate: float | None = None         # --rate: messages sent per second at most
    dry_run: bool = False
    hold_s: int = 300                 # visibility while held during the scan [SQS: 0-43200 s]
    wait_s: int = 1                   # long poll per receive [SQS: 0-20 s]
    max_held: int = DEFAULT_MAX_HELD  # messages held at once; beyond it they are rotated

    def __post_init__(self) -> None:
        if self.destination_url.rstrip("/") == self.dlq_url.rstrip("/"):
            raise InvalidRequest("the destination is the dead-letter queue itself")
        if self.limit is not None and self.limit < 1:
            raise InvalidRequest(f"--max must be at least 1, got {self.limit}")
        if self.rate is not None and self.rate <= 0:
            raise InvalidRequest(f"--rate must be positive, got {self.rate}")
        if not 1 <= self.hold_s <= 43200 or not 0 <= self.wait_s <= 20:
            raise InvalidRequest("--hold must be within 1-43200 s and the wait within 0-20 s")
        if not BATCH_LIMIT <= self.max_held <= SQS_IN_FLIGHT_QUOTA:
            raise InvalidRequest(f"--max-held must be within {BATCH_LIMIT}-{SQS_IN_FLIGHT_QUOTA} "
                                 f"(SQS's in-flight quota), got {self.max_held}")


@dataclass(frozen=True)
class ReplayFailure:
    """A selected message that did not move cleanly; ``stage`` says where it stopped."""

    message_id: str
    stage: str  # "send": still only in the DLQ; "delete": sent, so in both queues
    code: str
    message: str


@dataclass(frozen=True)
class ReplayReport:
    """The summary printed by replay-dlq (see tools/README.md for the JSON form)."""

    dlq_url: str
    destination_url: str
    dry_run: bool
    selector: dict[str, Any]
    scanned: int
    matched: int
    moved: int
    skipped: int
    failed: int
    duplicated: int
    released: int
    rotated: int
    elapsed_s: float
    aborted: str | None
    candidates: tuple[dict[str, Any], ...]
    failures: tuple[ReplayFailure, ...]

    @property
    def ok(self) -> bool:
        return not (self.failed or self.duplicated or self.aborted)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["failures"] = [asdict(f) for f in self.failures]
        data["candidates"] = list(self.candidates)
        return {"command": "replay-dlq", "native": False, **data}


class RateLimit:
    """Spaces sends so that, from the first on, at most ``per_second`` messages go per second."""

    def __init__(self, per_second: float | None, monotonic: Callable[[], float],
                 sleep: Callable[[float], None]) -> None:
        self.per_second, self._monotonic, self._sleep = per_second, monotonic, sleep
        self._start: float | None = None
        self._count = 0

    def acquire(self, n: int) -> None:
        if not self.per_second:
            return
        now = self._monotonic()
        self._start = now if self._start is None else self._start
        due = self._start + self._count / self.per_second
        if due > now:
            self._sleep(due - now)
        self._count += n


class Replayer:
    """One scan of a DLQ under a ReplayPlan; ``run()`` once and read its report."""

    def __init__(self, sqs: Any, plan: ReplayPlan, *, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep,
                 on_progress: Callable[[float], None] = lambda n: None) -> None:
        self.sqs, self.plan, self._clock, self._progress = sqs, plan, clock, on_progress
        self._rate = RateLimit(plan.rate, monotonic, sleep)
        self._fifo = is_fifo(plan.destination_url)
        self._seen: set[str] = set()
        self._rotated_ids: set[str] = set()  # message ids of the copies rotation sent
        self._held: dict[str, str] = {}  # message id -> latest receipt handle
        self._rotating: list[DeadLetter] = []  # to leave in the DLQ, with no room to hold them
        self._taken = 0
        self._counts = dict(matched=0, moved=0, skipped=0, failed=0, duplicated=0, released=0,
                            rotated=0)
        self._candidates: list[dict[str, Any]] = []
        self._failures: list[ReplayFailure] = []
        self._aborted: str | None = None

    def run(self) -> ReplayReport:
        started = time.monotonic()
        try:
            stale = 0
            while not self._limit_reached() and stale < STALE_RECEIVES:
                fresh, returned = self._receive_fresh()
                if not returned:
                    break
                stale = 0 if fresh else stale + 1
                self._handle(fresh)
                self._rotate()
        except (AwsCallFailed, ScanLimitReached) as exc:
            # Stop, but still release and report: the operator needs to know what already moved.
            self._aborted = str(exc)
            log.error("replay aborted", error=str(exc))
        finally:
            self._release_held()
        return self._report(time.monotonic() - started)

    def _limit_reached(self) -> bool:
        return self.plan.limit is not None and self._taken >= self.plan.limit

    def _receive_fresh(self) -> tuple[list[DeadLetter], int]:
        """The messages not seen before, and how many the receive returned in all."""
        response = aws_call(
            self.sqs.receive_message, QueueUrl=self.plan.dlq_url,
            MaxNumberOfMessages=self._receive_size(), WaitTimeSeconds=self.plan.wait_s,
            VisibilityTimeout=self.plan.hold_s, MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"])
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

    def _receive_size(self) -> int:
        # With a low --rate, receive no more than one second's worth: fewer messages held waiting.
        return BATCH_LIMIT if not self.plan.rate else max(1, min(BATCH_LIMIT, int(self.plan.rate)))

    def _handle(self, fresh: list[DeadLetter]) -> None:
        now = self._clock()
        selected = []
        for letter in fresh:
            matches = self.plan.selector.selects(letter, now)
            self._counts["matched"] += matches
            if matches and not self._limit_reached():
                self._taken += 1
                selected.append(letter)
            else:
                self._hold(letter)
                self._counts["skipped"] += 1
        if self.plan.dry_run:
            self._candidates.extend(letter.describe(now) for letter in selected)
            for letter in selected:
                self._hold(letter)
        elif selected:
            self._move(selected)
        self._progress(len(fresh))

    def _hold(self, letter: DeadLetter) -> None:
        if letter.message_id in self._held or len(self._held) < self.plan.max_held:
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
                "queue cannot delay a message to its back: replay what matched, then run again")
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
                self._failures.append(ReplayFailure(letter.message_id, "rotate", failure.code,
                                                    failure.message))
            self._rotated_ids.update(ok["MessageId"] for ok in sent.succeeded)
            self._delete_rotated([by_id[ok["Id"]] for ok in sent.succeeded])

    def _delete_rotated(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        entries = [{"Id": f"d{i}", "ReceiptHandle": x.receipt_handle}
                   for i, x in enumerate(letters)]
        deleted = call_batch(functools.partial(self.sqs.delete_message_batch,
                                               QueueUrl=self.plan.dlq_url), entries)
        self._counts["rotated"] += len(deleted.succeeded)
        for failure in deleted.failed:  # twice in the DLQ now: the original reappears later
            letter = letters[int(failure.id[1:])]
            self._failures.append(ReplayFailure(letter.message_id, "rotate", failure.code,
                                                failure.message))

    def _move(self, letters: list[DeadLetter]) -> None:
        self._rate.acquire(len(letters))
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
        self._delete([by_id[ok["Id"]] for ok in sent.succeeded])

    def _delete(self, letters: list[DeadLetter]) -> None:
        if not letters:
            return
        by_id = {f"d{i}": letter for i, letter in enumerate(letters)}
        entries = [{"Id": i, "ReceiptHandle": letter.receipt_handle} for i, letter in by_id.items()]
        try:
            deleted = call_batch(functools.partial(self.sqs.delete_message_batch,
                                                   QueueUrl=self.plan.dlq_url), entries)
        except AwsCallFailed as exc:
            for letter in letters:
                self._duplicate(letter, "DeleteMessageBatch", str(exc))
            raise
        self._counts["moved"] += len(deleted.succeeded)
        for failure in deleted.failed:
            self._duplicate(by_id[failure.id], failure.code, failure.message)

    def _fail(self, letter: DeadLetter, stage: str, code: str, message: str) -> None:
        self._counts["failed"] += 1
        self._failures.append(ReplayFailure(letter.message_id, stage, code, message))
        self._hold(letter)
        log.warning("replay send failed", message_id=letter.message_id, code=code)

    def _duplicate(self, letter: DeadLetter, code: str, message: str) -> None:
        # Sent but not deleted: it is in both queues; it reappears in the DLQ when its hold lapses.
        self._counts["moved"] += 1
        self._counts["duplicated"] += 1
        self._failures.append(ReplayFailure(letter.message_id, "delete", code, message))
        log.warning("replayed but not deleted from the DLQ", message_id=letter.message_id,
                    code=code)

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

    def _report(self, elapsed_s: float) -> ReplayReport:
        return ReplayReport(
            dlq_url=self.plan.dlq_url, destination_url=self.plan.destination_url,
            dry_run=self.plan.dry_run, selector=self.plan.selector.describe(),
            scanned=len(self._seen), **self._counts, elapsed_s=round(elapsed_s, 3),
            aborted=self._aborted, candidates=tuple(self._candidates),
            failures=tuple(self._failures))


def replay(sqs: Any, plan: ReplayPlan, **kwargs: Any) -> ReplayReport:
    """Scan the DLQ once under ``plan`` and return what happened."""
    return Replayer(sqs, plan, **kwargs).run()
