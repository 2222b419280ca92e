"""`modfleet replay-dlq`: put dead letters back on their queue, filtered, without losing one."""

from __future__ import annotations

import argparse
import json
import sys

from worker import settings as settings_mod

NAME = "replay-dlq"
HELP = ("Move messages from the dead-letter queue back to their source queue: send first, delete "
        "after, so nothing is lost. Filter by S3 key, error code or age; --dry-run lists only.")
TEXT_LIST_LIMIT = 100  # dry-run lines printed as text; --json lists every candidate


def register(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser, ["dlq_url", "region", "endpoint_url", "log_level",
                                        "log_format"])
    parser.add_argument("--to", metavar="URL",
                        help="Destination queue (default: the queue whose redrive policy names "
                             "the DLQ, found with ListDeadLetterSourceQueues).")
    parser.add_argument("--match", metavar="REGEX",
                        help="Only messages referring to an S3 key this regex matches (re.search; "
                             "any key of a multi-record event).")
    parser.add_argument("--error-code", metavar="CODE",
                        help="Only messages whose modfleet.error_code attribute is CODE; 'redrive' "
                             "selects those SQS moved after maxReceiveCount (no such attribute).")
    parser.add_argument("--older-than", metavar="DURATION",
                        help="Only messages sent at least this long ago (90s, 15m, 2h, 7d).")
    parser.add_argument("--max", type=int, metavar="N", help="Move at most N messages.")
    parser.add_argument("--rate", type=float, metavar="PER_SECOND",
                        help="Send at most this many messages per second (default: unlimited; "
                             "with --native, 1-500, default SQS's own).")
    parser.add_argument("--hold", default="300s", metavar="DURATION",
                        help="How long each scanned message stays invisible during the scan; "
                             "all are released when it ends, or reappear by themselves after a "
                             "crash (default 300s).")
    parser.add_argument("--max-held", type=int, default=110_000, metavar="N",
                        help="Messages held invisible at once (SQS keeps at most 120,000 in "
                             "flight); beyond it, messages to leave in the DLQ are sent to its "
                             "back, delayed by --hold, and their copies deleted (default 110000).")
    parser.add_argument("--dry-run", action="store_true",
                        help="List what would move; change nothing (receive counts do go up).")
    parser.add_argument("--native", action="store_true",
                        help="Use SQS's StartMessageMoveTask (no filters, no --max, no --dry-run).")
    parser.add_argument("--json", action="store_true",
                        help="Print one JSON object (format: tools/README.md).")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from worker.aws import boto3_client
    from tools.ops.dead_letters import Selector
    from tools.ops.durations import parse_duration
    from tools.ops.exceptions import AwsCallFailed, InvalidRequest
    from tools.ops.progress import progress_bar
    from tools.ops.queues import dead_letter_source, queue_attributes
    from tools.ops.replay import ReplayPlan, replay

    settings = settings_mod.from_sources(args)
    settings.require("dlq_url")
    selector = Selector.build(args.match, args.error_code, args.older_than)
    if args.native:
        return _run_native(args, settings, selector)
    sqs = boto3_client("sqs", settings.region, settings.endpoint_url)
    try:
        destination = args.to or dead_letter_source(sqs, settings.dlq_url)
        total = int(queue_attributes(sqs, settings.dlq_url).get("ApproximateNumberOfMessages", 0))
    except AwsCallFailed as exc:
        raise InvalidRequest(f"cannot read the queues: {exc}") from exc
    plan = ReplayPlan(dlq_url=settings.dlq_url, destination_url=destination, selector=selector,
                      limit=args.max, rate=args.rate, dry_run=args.dry_run,
                      hold_s=max(1, round(parse_duration(args.hold))), max_held=args.max_held)
    with progress_bar("scanning DLQ" if args.dry_run else "replaying", total or None) as advance:
        report = replay(sqs, plan, on_progress=advance)
    _print_report(report, args.json)
    return 0 if report.ok else 1


def _run_native(args: argparse.Namespace, settings, selector) -> int:
    from worker.aws import boto3_client
    from tools.ops.exceptions import InvalidRequest
    from tools.ops.native_move import start_native_move

    if not selector.is_empty or args.max is not None or args.dry_run:
        raise InvalidRequest("--native moves the whole queue: it cannot be combined with --match, "
                             "--error-code, --older-than, --max or --dry-run")
    sqs = boto3_client("sqs", settings.region, settings.endpoint_url, max_attempts=2)
    move = start_native_move(sqs, settings.dlq_url, args.to, args.rate)
    if args.json:
        print(json.dumps(move.as_dict()))
    else:
        print(f"started SQS move task {move.task_handle}\n  from {move.dlq_url}\n  to   "
              f"{move.destination_url or 'each message’s original source queue'}\n"
              "follow it with: aws sqs list-message-move-tasks --source-arn <DLQ ARN>")
    return 0


def _print_report(report, as_json: bool) -> None:
    if as_json:
        print(json.dumps(report.as_dict()))
        return
    for item in report.candidates[:TEXT_LIST_LIMIT]:
        print(f"would move {item['message_id']}  code={item['error_code']}  age={item['age_s']}s  "
              f"keys={', '.join(item['keys']) or '-'}")
    if len(report.candidates) > TEXT_LIST_LIMIT:
        print(f"... and {len(report.candidates) - TEXT_LIST_LIMIT} more (--json lists all)")
    for failure in report.failures:
        print(f"FAILED {failure.stage} {failure.message_id}: {failure.code} {failure.message}",
              file=sys.stderr)
    verb = "would move" if report.dry_run else "moved"
    count = len(report.candidates) if report.dry_run else report.moved
    print(f"{verb} {count}, skipped {report.skipped}, failed {report.failed}, duplicated "
          f"{report.duplicated}, rotated {report.rotated} (scanned {report.scanned} in {report.elapsed_s:.1f}s; "
          f"{report.dlq_url} -> {report.destination_url})")
    if report.aborted:
        print(f"ABORTED: {report.aborted}", file=sys.stderr)
