"""`modfleet dlq export|delete|replay`: work on chosen dead letters, each accounted for.

``export`` writes the selected letters as JSON lines (a file, ``-`` for stdout, or
``s3://bucket/key``) and changes nothing; ``delete`` deletes them; ``replay`` is replay-dlq.  All
three take the same filters, ``--dry-run`` and ``--json``, and stop cleanly on Ctrl-C/SIGTERM.
"""

from __future__ import annotations

import argparse
import sys

from tools.ops.commands import dlq_flags, replay_dlq

NAME = "dlq"
HELP = ("Dead letters: export chosen ones as JSON lines (file, stdout or S3), delete chosen ones, "
        "or replay them (as replay-dlq); same filters and --dry-run for each.")


def register(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)
    export = sub.add_parser("export", help="Write the selected letters as JSON lines; change "
                                           "nothing.", description=_doc("export"))
    dlq_flags.add_scan_arguments(export, "List what would be exported; write nothing.")
    export.add_argument("--output", "-o", metavar="PATH|-|s3://BUCKET/KEY",
                        help="Where the JSON lines go: a file, - for stdout (the account then "
                             "goes to stderr), or an S3 object (uploaded when the scan ends).")
    dlq_flags.add_filter_arguments(export, "export")
    export.set_defaults(func=run_export)

    delete = sub.add_parser("delete", help="Delete the selected letters.",
                            description=_doc("delete"))
    dlq_flags.add_scan_arguments(delete, "List what would be deleted; delete nothing.")
    dlq_flags.add_filter_arguments(delete, "delete")
    delete.add_argument("--all", action="store_true",
                        help="Delete every letter: needed when no filter is given.")
    delete.set_defaults(func=run_delete)

    replay = sub.add_parser("replay", help=replay_dlq.HELP, description=replay_dlq.HELP)
    replay_dlq.register(replay)


def run_export(args: argparse.Namespace) -> int:
    from tools.ops.dlq_export import Exporter, LetterSink
    from tools.ops.exceptions import InvalidRequest

    settings, sqs, plan = _prepare(args)
    if not args.output and not args.dry_run:
        raise InvalidRequest("dlq export needs --output PATH, - (stdout) or s3://bucket/key")
    sink = None
    if args.output and not args.dry_run:
        s3 = dlq_flags.client("s3", settings) if args.output.startswith("s3://") else None
        sink = LetterSink(args.output, s3)
    to_stdout = sink is not None and sink.to_stdout
    return dlq_flags.run_scan(
        lambda stop, advance: Exporter(sqs, plan, sink, stop=stop, on_progress=advance),
        description="exporting", total=dlq_flags.dlq_depth(sqs, plan.dlq_url),
        as_json=args.json, stream=sys.stderr if to_stdout else None)


def run_delete(args: argparse.Namespace) -> int:
    from tools.ops.dlq_delete import Deleter
    from tools.ops.exceptions import InvalidRequest

    settings, sqs, plan = _prepare(args)
    if plan.selector.is_empty and not args.all:
        raise InvalidRequest("dlq delete without a filter deletes every letter: give --match, "
                             "--error-code or --older-than, or --all")
    return dlq_flags.run_scan(
        lambda stop, advance: Deleter(sqs, plan, stop=stop, on_progress=advance),
        description="scanning DLQ" if args.dry_run else "deleting",
        total=dlq_flags.dlq_depth(sqs, plan.dlq_url), as_json=args.json)


def _prepare(args: argparse.Namespace):
    from tools.ops.dlq_scan import ScanPlan

    settings = dlq_flags.resolved_settings(args)
    plan = ScanPlan(settings.dlq_url, dlq_flags.selector_from(args), limit=args.max,
                    dry_run=args.dry_run, hold_s=dlq_flags.hold_seconds(args),
                    max_held=args.max_held)
    return settings, dlq_flags.client("sqs", settings), plan


def _doc(action: str) -> str:
    return {"export": "Write the dead letters the filters select as JSON lines (body, attributes, "
                      "error code and reason, original send time, S3 keys) to a file, stdout or "
                      "an S3 object; the DLQ is left as it was.",
            "delete": "Delete the dead letters the filters select; what is not selected stays. "
                      "Try it with --dry-run first, or export the same selection."}[action]
