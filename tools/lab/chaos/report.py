"""What a chaos run proves: every upload settled once by idempotency key, or dead-lettered with a
reason; read from the verdict topic and the queues after the fleet went idle."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from worker.verdict import Verdict

ObjectVersion = tuple[str, str, str | None]  # bucket, key, version id


@dataclass(frozen=True)
class Uploaded:
    """One object version the run put in the bucket."""

    bucket: str
    key: str
    version_id: str | None
    kind: str  # clip, reupload, or the mutant kind

    @property
    def version(self) -> ObjectVersion:
        return (self.bucket, self.key, self.version_id)


@dataclass(frozen=True)
class Leftover:
    """A message still in the job queue or the DLQ at the end."""

    queue: str  # "queue" or "dlq"
    error_code: str  # modfleet.error_code, or "redrive" (moved by SQS after maxReceiveCount)
    reason: str | None
    poison: bool  # one of the run's poison bodies
    refs: tuple[tuple[str, str], ...]  # (bucket, key) it refers to


@dataclass(frozen=True)
class ChaosReport:
    """The table a chaos run prints (``--json``: this, as one object)."""

    uploads: int
    uploads_by_kind: dict[str, int]
    poison_sent: int
    verdicts: int
    idempotency_keys: int
    settled: int
    duplicates: int
    inconsistent: int  # object versions with more than one key or decision
    lost: int
    unknown_verdicts: int
    outcomes: dict[str, int]  # per object version: "ok allow", "error undecodable", ...
    outcomes_by_kind: dict[str, dict[str, int]]
    left_in_queue: dict[str, int]  # error code -> count
    left_in_dlq: dict[str, int]
    dlq_poison: int
    dlq_not_poison: int
    dlq_reasons: list[str]
    sigkills: int
    sigterms: int
    deaths: int
    unclean_sigterm_exits: int
    workers_started: int
    faults_injected: dict[str, int]
    faults_by_type: dict[str, int]  # "sqs:DeleteMessageBatch partial_batch" -> count
    calls: dict[str, int]
    fault_rate: float
    wall_s: float
    timed_out: bool
    unexpected_errors_logged: int
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"command": "chaos", "ok": self.ok, **asdict(self)}


def analyse(uploaded: Iterable[Uploaded], verdicts: Iterable[Verdict],
            leftovers: Iterable[Leftover], poison_sent: int, **run_facts: Any) -> ChaosReport:
    """Hold the verdicts and leftovers against the uploads; ``run_facts`` are the other fields."""
    uploads = {u.version: u for u in uploaded}
    leftovers = list(leftovers)
    by_version: dict[ObjectVersion, list[Verdict]] = collections.defaultdict(list)
    unknown = 0
    for verdict in verdicts:
        version = version_of(verdict)
        if version in uploads:
            by_version[version].append(verdict)
        else:
            unknown += 1
    waiting = {ref for left in leftovers for ref in left.refs}
    lost = [v for v in uploads if v not in by_version and v[:2] not in waiting]
    inconsistent = [v for v, got in by_version.items()
                    if len({x.idempotency_key for x in got}) > 1
                    or len({_outcome(x) for x in got}) > 1]
    outcomes = collections.Counter(_outcome(got[0]) for got in by_version.values())
    by_kind: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for version, upload in uploads.items():
        got = by_version.get(version)
        by_kind[upload.kind][_outcome(got[0]) if got else "unsettled"] += 1
    total = sum(len(got) for got in by_version.values())
    report = ChaosReport(
        uploads=len(uploads),
        uploads_by_kind=dict(collections.Counter(u.kind for u in uploads.values())),
        poison_sent=poison_sent, verdicts=total + unknown,
        idempotency_keys=len({x.idempotency_key for got in by_version.values() for x in got}),
        settled=len(by_version), duplicates=total - len(by_version),
        inconsistent=len(inconsistent), lost=len(lost), unknown_verdicts=unknown,
        outcomes=dict(outcomes), outcomes_by_kind={k: dict(v) for k, v in sorted(by_kind.items())},
        left_in_queue=_codes(x for x in leftovers if x.queue == "queue"),
        left_in_dlq=_codes(x for x in leftovers if x.queue == "dlq"),
        dlq_poison=sum(x.poison for x in leftovers if x.queue == "dlq"),
        dlq_not_poison=sum(not x.poison for x in leftovers if x.queue == "dlq"),
        dlq_reasons=sorted({f"{x.error_code}: {x.reason}" for x in leftovers
                            if x.queue == "dlq" and not x.poison})[:20],
        **run_facts)
    return _with_problems(report, poison_sent)


def version_of(verdict: Verdict) -> ObjectVersion:
    """The object version a verdict is about."""
    return verdict.video.bucket, verdict.video.key, verdict.video.version_id


def _outcome(verdict: Verdict) -> str:
    if verdict.status == "ok":
        return f"ok {verdict.decision}"
    return f"error {verdict.error_code}"


def _codes(leftovers: Iterable[Leftover]) -> dict[str, int]:
    return dict(collections.Counter(x.error_code for x in leftovers))


def _with_problems(report: ChaosReport, poison_sent: int) -> ChaosReport:
    problems = []
    if report.lost:
        problems.append(f"{report.lost} uploads lost: no verdict and in no queue")
    if report.inconsistent:
        problems.append(f"{report.inconsistent} object versions with more than one idempotency "
                        "key or decision")
    if report.dlq_not_poison:
        problems.append(f"{report.dlq_not_poison} uploads in the DLQ: {report.dlq_reasons[:3]}")
    if report.dlq_poison != poison_sent:
        problems.append(f"{report.dlq_poison} of {poison_sent} poison bodies in the DLQ")
    if sum(report.left_in_queue.values()):
        problems.append(f"{sum(report.left_in_queue.values())} messages left in the queue")
    if report.deaths:
        problems.append(f"{report.deaths} worker deaths (exits nobody asked for)")
    if report.unclean_sigterm_exits:
        problems.append(f"{report.unclean_sigterm_exits} SIGTERMs answered by a non-zero exit")
    if report.unknown_verdicts:
        problems.append(f"{report.unknown_verdicts} verdicts for objects the run never uploaded")
    if report.timed_out:
        problems.append("the queue never went idle before the time limit")
    return ChaosReport(**{**asdict(report), "problems": problems})


def render(report: ChaosReport) -> str:
    """The table for a person."""
    rows = [
        ("uploads (object versions)", f"{report.uploads}  {_inline(report.uploads_by_kind)}"),
        ("poison bodies sent", report.poison_sent),
        ("verdicts published", report.verdicts),
        ("distinct idempotency keys", report.idempotency_keys),
        ("uploads settled", report.settled),
        ("duplicates (same key, same decision)", report.duplicates),
        ("versions with >1 key or decision", report.inconsistent),
        ("lost", report.lost),
        ("outcomes", _inline(report.outcomes)),
        ("left in queue", _inline(report.left_in_queue) or 0),
        ("left in DLQ", f"{_inline(report.left_in_dlq) or 0}  (poison {report.dlq_poison}, "
                        f"uploads {report.dlq_not_poison})"),
        ("SIGKILLs / SIGTERMs", f"{report.sigkills} / {report.sigterms}"),
        ("worker deaths", report.deaths),
        ("workers started", report.workers_started),
        (f"faults injected / calls ({report.fault_rate:.0%})",
         _inline({k: f"{report.faults_injected.get(k, 0)}/{n}"
                  for k, n in sorted(report.calls.items())})),
        ("unexpected errors logged", report.unexpected_errors_logged),
        ("wall time", f"{report.wall_s:.1f} s"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    for reason in report.dlq_reasons:
        lines.append(f"  DLQ: {reason}")
    lines.append("PROMISE HELD" if report.ok else "PROMISE BROKEN: " + "; ".join(report.problems))
    return "\n".join(lines)


def _inline(counts: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
