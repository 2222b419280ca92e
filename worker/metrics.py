"""CloudWatch embedded-metric-format (EMF) records, one JSON line each on stdout.

The CloudWatch agent ships the worker's stdout to its log group, where CloudWatch turns these lines
into metrics, so dashboards and alarms need no extra code on the instance.  Namespace ``modfleet``;
the metrics and dimension sets are those of CONTRACTS.md ("Worker metrics"):

- ``Videos`` (one per published verdict) by [], [Status], [Decision], [Status, Decision], and for
  errors [Status, ErrorCode]; per-stage latencies (``FetchLatency``, ... ``PublishLatency``) by [].
- A count with dimensions (``DeadLettered`` by Reason, ``CacheHits`` by Kind) is also recorded by
  [], so a total needs no metric math; ``Retries`` and ``PublishFailures`` have [] only.
- ``BatchFill`` and ``BatchLatency`` by [Replica].

Written by hand rather than with aws-embedded-metrics: ARCHITECTURE.md ("Libraries: used, and not
used") has the measurements.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # read by field only; importing it would pull in the model layer's API
    from worker.verdict import Verdict

NAMESPACE = "modfleet"
VIDEO_DIMENSION_SETS = ((), ("Status",), ("Decision",), ("Status", "Decision"))


@dataclass(frozen=True)
class Directive:
    """Metrics that share their dimension sets within one record (EMF's MetricDirective)."""

    dimension_sets: Sequence[Sequence[str]]
    values: dict[str, tuple[float, str]]  # metric name -> (value, unit)


class Metrics:
    def __init__(self, enabled: bool, region: str,
                 sink: Callable[[str], None] | None = None) -> None:
        self.enabled, self.region = enabled, region
        self.sink = sink if sink is not None else _print_line
        # Replica threads report batches while the event loop reports verdicts; a record split
        # by another thread's write would be a line the CloudWatch agent cannot parse.
        self._lock = threading.Lock()

    def verdict(self, verdict: Verdict, publish_ms: float) -> None:
        """One verdict published: a video counted by outcome, and where its time went."""
        dimensions = {"Status": verdict.status, "Decision": verdict.decision}
        video_sets = list(VIDEO_DIMENSION_SETS)
        if verdict.error is not None:
            dimensions["ErrorCode"] = verdict.error.code
            video_sets.append(("Status", "ErrorCode"))
        stages = {**verdict.timings_ms.stages(), "publish": publish_ms}
        latencies = {f"{_camel(stage)}Latency": (round(ms, 1), "Milliseconds")
                     for stage, ms in stages.items()}
        self._emit(dimensions, [Directive(video_sets, {"Videos": (1, "Count")}),
                                Directive([()], latencies)])

    def batch(self, replica: int, real_rows: int, batch_size: int, seconds: float) -> None:
        """One inference call of a replica: how full the batch was, how long it took."""
        self._emit({"Replica": str(replica)}, [Directive([("Replica",)], {
            "BatchFill": (100.0 * real_rows / batch_size, "Percent"),
            "BatchLatency": (seconds * 1000, "Milliseconds")})])

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        """A count by [] and, when dimensions are given, by all of them together as well."""
        sets = [(), tuple(sorted(dimensions))] if dimensions else [()]
        self._emit(dimensions, [Directive(sets, {name: (value, "Count")})])

    def _emit(self, dimensions: dict[str, str], directives: Sequence[Directive]) -> None:
        if not self.enabled:
            return
        record: dict[str, Any] = {
            "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [
                {"Namespace": NAMESPACE, "Dimensions": [list(s) for s in d.dimension_sets],
                 "Metrics": [{"Name": n, "Unit": u} for n, (_, u) in d.values.items()]}
                for d in directives]},
            "Region": self.region, **dimensions,
        }
        for directive in directives:
            record |= {name: round(value, 3) for name, (value, _) in directive.values.items()}
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            self.sink(line)


def _camel(stage: str) -> str:
    return stage.title().replace("_", "")


def _print_line(line: str) -> None:
    sys.stdout.write(line + "\n")  # one write: print() writes the newline separately
    sys.stdout.flush()
