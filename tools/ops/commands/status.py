"""`modfleet status`: depth, in flight, delayed, dead letters and oldest age of each queue."""

from __future__ import annotations

import argparse
import json
import sys

from worker import settings as settings_mod

NAME = "status"
HELP = ("Show, per queue: messages visible, in flight and delayed, the depth of its dead-letter "
        "queue, and the age of its oldest message (CloudWatch, else a peek).")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue-url", dest="queue_urls", action="append", metavar="URL",
                        help="A queue to report; repeat for several (default: MODFLEET_QUEUE_URL).")
    settings_mod.add_arguments(parser, ["region", "endpoint_url", "log_level", "log_format"])
    parser.add_argument("--peek", action="store_true",
                        help="Where CloudWatch has no age, peek at queues with a redrive policy "
                             "too (each peek counts one receive towards maxReceiveCount).")
    parser.add_argument("--json", action="store_true",
                        help="Print one JSON object (format: tools/README.md).")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from worker.aws import boto3_client
    from tools.ops.exceptions import AwsCallFailed, InvalidRequest
    from tools.ops.status import fleet_status

    settings = settings_mod.from_sources(args)
    urls = args.queue_urls or ([settings.queue_url] if settings.queue_url else [])
    if not urls:
        raise InvalidRequest("no queue given: pass --queue-url URL (or set MODFLEET_QUEUE_URL)")
    try:
        report = fleet_status(boto3_client("sqs", settings.region, settings.endpoint_url), urls,
                              cloudwatch=boto3_client("cloudwatch", settings.region, settings.endpoint_url), peek_all=args.peek)
    except AwsCallFailed as exc:
        print(f"modfleet status: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        _print_table(report)
    return 0


def _print_table(report) -> None:
    # Plain columns rather than a rich table: on-call greps and pastes this into tickets.
    rows = [("queue", "visible", "in flight", "delayed", "oldest", "dead letters", "oldest dead")]
    for q in report.queues:
        dlq = q.dlq
        rows.append((q.name, str(q.visible), str(q.in_flight), str(q.delayed), _age(q),
                     "-" if dlq is None else str(dlq.visible + dlq.in_flight + dlq.delayed),
                     "-" if dlq is None else _age(dlq)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"queues at {report.generated_at}")
    for name, *numbers in rows:
        cells = [c.rjust(w) for c, w in zip(numbers, widths[1:], strict=True)]
        print("  ".join([name.ljust(widths[0]), *cells]))


def _age(q) -> str:
    if q.oldest_age_s is None:
        return "? (use --peek)" if q.max_receive_count else "?"
    prefix = ">=" if q.oldest_age_source == "peek" else ""
    return f"{prefix}{q.oldest_age_s:.0f}s"
