"""A lab stand-in for the CloudWatch agent: EMF lines in, PutMetricData out (the embedded stack).

On an instance the worker writes embedded-metric-format records to stdout and the CloudWatch agent
turns them into metrics.  The embedded stack has no agent, so this reads the same lines (from a
worker's stdout, a file or a pipe) and calls PutMetricData on the endpoint, one metric datum per
metric and dimension set, stamped with the record's own time, as the agent would.  Lines that are
not EMF records pass through to ``echo`` unchanged, so it can sit in a pipe:

    modfleet worker ... | python -m tools.lab.emf_forwarder --endpoint-url http://127.0.0.1:PORT

It ships nothing: the production room never imports the lab.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

PUT_LIMIT = 1000  # metric data per PutMetricData call


def metric_data(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The PutMetricData entries of one EMF record, one per metric and dimension set; each carries
    its ``Namespace`` for ``forward`` to group on."""
    meta = record.get("_aws") or {}
    stamp = dt.datetime.fromtimestamp(int(meta.get("Timestamp", 0)) / 1000, dt.timezone.utc)
    entries = []
    for directive in meta.get("CloudWatchMetrics", []):
        for dimension_set in directive.get("Dimensions") or [[]]:
            dimensions = [{"Name": name, "Value": str(record[name])} for name in dimension_set]
            for metric in directive.get("Metrics", []):
                if metric["Name"] not in record:
                    continue
                entries.append({"Namespace": directive["Namespace"], "MetricName": metric["Name"],
                                "Dimensions": dimensions, "Timestamp": stamp,
                                "Value": float(record[metric["Name"]]),
                                "Unit": metric.get("Unit", "None")})
    return entries


def forward(lines: Iterable[str], cloudwatch: Any,
            echo: Callable[[str], None] = lambda line: None) -> int:
    """Put the metrics of each EMF line into CloudWatch as it comes (a pipe sees them at once);
    echo the other lines; return how many metric data were put."""
    put = 0
    for line in lines:
        record = _emf_record(line)
        if record is None:
            echo(line)
            continue
        by_namespace: dict[str, list[dict[str, Any]]] = {}
        for entry in metric_data(record):
            by_namespace.setdefault(entry.pop("Namespace"), []).append(entry)
        for namespace, entries in by_namespace.items():
            for start in range(0, len(entries), PUT_LIMIT):
                chunk = entries[start:start + PUT_LIMIT]
                cloudwatch.put_metric_data(Namespace=namespace, MetricData=chunk)
                put += len(chunk)
    return put


def _emf_record(line: str) -> dict[str, Any] | None:
    if '"_aws"' not in line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) and "CloudWatchMetrics" in record.get("_aws", {}) \
        else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint-url", required=True, help="The embedded stack's endpoint.")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("input", nargs="?", default="-", help="EMF lines (default: stdin).")
    args = parser.parse_args(argv)
    from worker.aws import boto3_client

    cloudwatch = boto3_client("cloudwatch", args.region, args.endpoint_url)
    stream = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8")  # noqa: SIM115
    with stream:
        put = forward(stream, cloudwatch, echo=lambda line: sys.stdout.write(line))
    print(f"forwarded {put} metric data to {args.endpoint_url}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
