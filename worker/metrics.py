"""CloudWatch embedded-metric-format (EMF) records, one JSON line each on stdout.

The CloudWatch agent (or Lambda/ECS log drivers) turns these lines into metrics, so dashboards and
alarms need no extra code on the instance.  Namespace ``modfleet``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

NAMESPACE = "modfleet"


class Metrics:
    def __init__(self, enabled: bool, region: str,
                 sink: Callable[[str], None] | None = None) -> None:
        self.enabled, self.region = enabled, region
        self.sink = sink or _print_line
        # Replica threads report batches while the event loop reports verdicts; a record split
        # by another thread's write would be a line the CloudWatch agent cannot parse.
        self._lock = threading.Lock()

    def verdict(self, status: str, decision: str, error_code: str | None,
                timings_ms: dict[str, float]) -> None:
        """One video settled: counts by status and decision, errors by code, latency per stage."""
        values: dict[str, tuple[float, str]] = {"Videos": (1, "Count")}
        values |= {f"{stage.title().replace('_', '')}Latency": (ms, "Milliseconds")
                   for stage, ms in timings_ms.items()}
        dims = {"Status": status, "Decision": decision}
        if error_code:
            dims["ErrorCode"] = error_code
        self._emit(dims, values)

    def batch(self, replica: int, real_rows: int, batch_size: int, seconds: float) -> None:
        self._emit({"Replica": str(replica)}, {
            "BatchFill": (100.0 * real_rows / batch_size, "Percent"),
            "BatchLatency": (seconds * 1000, "Milliseconds")})

    def count(self, name: str, value: float = 1, **dimensions: str) -> None:
        self._emit(dimensions, {name: (value, "Count")})

    def _emit(self, dimensions: dict[str, str], values: dict[str, tuple[float, str]]) -> None:
        if not self.enabled:
            return
        record: dict[str, Any] = {
            "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [sorted(dimensions)] if dimensions else [[]],
                "Metrics": [{"Name": n, "Unit": u} for n, (_, u) in values.items()]}]},
            "Region": self.region, **dimensions,
            **{name: round(value, 3) for name, (value, _) in values.items()},
        }
        line = json.dumps(record, separators=(",", ":"))
        with self._lock:
            self.sink(line)


def _print_line(line: str) -> None:
    sys.stdout.write(line + "\n")  # one write: print() writes the newline separately
    sys.stdout.flush()
