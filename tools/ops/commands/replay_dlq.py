"""`modfleet replay-dlq` (also `modfleet dlq replay`): put dead letters back on their queue,
filtered, without losing one, and account for each."""

from __future__ import annotations

import argparse
import json

from tools.ops.commands import dlq_flags

NAME = "replay-dlq"
HELP = ("Move letters from the dead-letter queue back to their source queue: send first, delete "
        "after, so nothing is lost. Filter by S3 key, error code or age; --dry-run lists only. "
        "Ctrl-C or SIGTERM stops it cleanly: held letters are released and the account printed "
        "(exit 130 / 143).")


def register(parser: argparse.ArgumentParser) -> None:
    dlq_flags.add_scan_arguments(parser, "List what would move, with each letter's reason and the "
                                         "start of its body; change nothing (receive counts do go "
                                         "up).")
    parser.add_argument("--to", metavar="URL",
                        help="Destination queue (default: the queue whose redrive policy names "
                             "the DLQ, found with ListDeadLetterSourceQueues).")
    dlq_flags.add_filter_arguments(parser, "move")
    parser.add_argument("--rate", type=float, metavar="PER_SECOND",
                        help="Send at most this many letters per second (default: unlimited; "
                             "with --native, 1-500, default SQS's own).")
    parser.add_argument("--force", action="store_true",
                        help="Replay permanent letters too: those whose body names no video "
                             "(error poison_body); without it they stay in the DLQ, counted.")
    parser.add_argument("--native", action="store_true",
                        help="Use SQS's StartMessageMoveTask (no filters, no --max, no --dry-run).")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.ops.queues import dead_letter_source, queue_attributes
    from tools.ops.replay import ReplayPlan, Replayer

    settings = dlq_flags.resolved_settings(args)
    selector = dlq_flags.selector_from(args)
    if args.native:
        return _run_native(args, settings, selector)
    plan_args = dict(selector=selector, limit=args.max, rate=args.rate, dry_run=args.dry_run,
                     force=args.force, hold_s=dlq_flags.hold_seconds(args),
                     max_held=args.max_held)
    sqs = dlq_flags.client("sqs", settings)
    total = dlq_flags.dlq_depth(sqs, settings.dlq_url)
    destination = args.to or dead_letter_source(sqs, settings.dlq_url)
    queue_attributes(sqs, destination)  # a destination that is not there fails before anything
    plan = ReplayPlan(dlq_url=settings.dlq_url, destination_url=destination, **plan_args)
    return dlq_flags.run_scan(
        lambda stop, advance: Replayer(sqs, plan, stop=stop, on_progress=advance),
        description="scanning DLQ" if args.dry_run else "replaying", total=total,
        as_json=args.json)


def _run_native(args: argparse.Namespace, settings, selector) -> int:
    from tools.ops.exceptions import InvalidRequest
    from tools.ops.native_move import start_native_move

    if (not selector.is_empty or args.max is not None or args.dry_run or args.force):
        raise InvalidRequest("--native moves the whole queue: it cannot be combined with --match, "
                             "--error-code, --older-than, --max, --force or --dry-run")
    sqs = dlq_flags.client("sqs", settings, max_attempts=2)
    move = start_native_move(sqs, settings.dlq_url, args.to, args.rate)
    if args.json:
        print(json.dumps(move.as_dict()))
    else:
        print(f"started SQS move task {move.task_handle}\n  from {move.dlq_url}\n  to   "
              f"{move.destination_url or 'each message’s original source queue'}\n"
              "follow it with: aws sqs list-message-move-tasks --source-arn <DLQ ARN>")
    return 0
