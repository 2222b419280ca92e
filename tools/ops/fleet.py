"""The fleet beside its queues: the Auto Scaling group's instances and the age of the last verdict.

The last verdict's age comes from the worker's own metrics (infra/README.md, "The worker's
metrics": namespace ``modfleet``, metric ``Videos``, dimension set []): GetMetricData for the last ``VERDICT_WINDOW`` at one-minute
periods (on minute boundaries), newest first; the age is now minus the newest period's start, so it
is to the minute: an over-estimate by up to 60 s, on AWS as on moto.  The
worker writes the metrics as EMF lines on stdout; the CloudWatch agent ships them on an instance,
and on the embedded stack ``tools/lab/emf_forwarder.py`` stands in for the agent.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from tools.ops.exceptions import InvalidRequest
from tools.ops.queues import aws_call
from worker.metrics import NAMESPACE

VERDICT_METRIC = "Videos"
VERDICT_WINDOW = dt.timedelta(hours=24)
RECENT = dt.timedelta(minutes=5)  # the throughput shown beside the last verdict
PERIOD_S = 60


@dataclass(frozen=True)
class AutoScalingStatus:
    """One Auto Scaling group: what it is asked to run and what runs."""

    name: str
    desired: int
    in_service: int
    min_size: int
    max_size: int
    lifecycle: dict[str, int] = field(default_factory=dict)  # instances per LifecycleState

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class LastVerdict:
    """The newest verdict the worker's metrics show, and how it was looked for."""

    at: str | None        # start of the newest minute with a verdict (ISO); None: none found
    age_s: float | None
    source: str           # cloudwatch | none (no datapoint in the window) | unavailable
    window_s: int
    error: str | None = None  # why it is unavailable (no permission, CloudWatch failing)
    last_5_min: float | None = None  # verdicts in the last five one-minute periods

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def autoscaling_status(autoscaling: Any, name: str) -> AutoScalingStatus:
    """DescribeAutoScalingGroups for one group; a group not found is the operator's to fix."""
    groups = aws_call(autoscaling.describe_auto_scaling_groups,
                      AutoScalingGroupNames=[name]).get("AutoScalingGroups", [])
    if not groups:
        raise InvalidRequest(f"no Auto Scaling group named {name!r} in this region "
                             "(--asg, or the stack's autoscaling-group parameter)")
    group = groups[0]
    states = Counter(i.get("LifecycleState", "?") for i in group.get("Instances", []))
    return AutoScalingStatus(name=name, desired=int(group["DesiredCapacity"]),
                             in_service=states.get("InService", 0),
                             min_size=int(group["MinSize"]), max_size=int(group["MaxSize"]),
                             lifecycle=dict(sorted(states.items())))


def last_verdict(cloudwatch: Any, clock: Callable[[], float],
                 window: dt.timedelta = VERDICT_WINDOW) -> LastVerdict:
    """When the fleet last published a verdict, from ``modfleet``/``Videos`` (dimensions []);
    ``unavailable`` with the error when CloudWatch cannot be read."""
    end = dt.datetime.fromtimestamp(clock(), dt.timezone.utc)
    start = (end - window).replace(second=0, microsecond=0)  # periods on minute boundaries
    window_s = int(window.total_seconds())
    try:
        response = cloudwatch.get_metric_data(
            MetricDataQueries=[{"Id": "videos", "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": NAMESPACE, "MetricName": VERDICT_METRIC,
                           "Dimensions": []},
                "Period": PERIOD_S, "Stat": "Sum"}}],
            StartTime=start, EndTime=end + dt.timedelta(seconds=PERIOD_S),
            ScanBy="TimestampDescending")
    except (ClientError, BotoCoreError) as exc:  # status shows the rest, and says so
        return LastVerdict(None, None, "unavailable", window_s, f"GetMetricData failed: {exc}")
    points = [(stamp.astimezone(dt.timezone.utc), value)
              for result in response.get("MetricDataResults", [])
              for stamp, value in zip(result.get("Timestamps", []), result.get("Values", []),
                                      strict=False) if value > 0]
    if not points:
        return LastVerdict(None, None, "none", window_s, last_5_min=0)
    newest = max(stamp for stamp, _ in points)
    recent_from = (end - RECENT).replace(second=0, microsecond=0)
    return LastVerdict(newest.isoformat(timespec="seconds").replace("+00:00", "Z"),
                       round(max(0.0, (end - newest).total_seconds()), 1), "cloudwatch", window_s,
                       last_5_min=sum(value for stamp, value in points if stamp > recent_from))
