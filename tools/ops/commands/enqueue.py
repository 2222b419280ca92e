"""`modfleet enqueue`: direct jobs for backfills, ten per SendMessageBatch."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from worker import settings as settings_mod

NAME = "enqueue"
HELP = ("Put direct jobs {bucket, key} on the queue for backfills and re-runs, ten per batch; "
        "keys from flags, a file, or every object under a prefix.")


def register(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser, ["queue_url", "bucket", *settings_mod.AWS_ACCESS,
                                        "log_level", "log_format"])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--key", dest="keys", action="append", metavar="KEY",
                        help="An object key; repeat for several.")
    source.add_argument("--keys-from", type=Path, metavar="FILE",
                        help="A file of keys, one per line ('-': standard input; # comments).")
    source.add_argument("--prefix", help="Every object under this prefix (ListObjectsV2).")
    parser.add_argument("--json", action="store_true",
                        help="Print one JSON object (format: tools/README.md).")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.ops.enqueue import enqueue_jobs, keys_from_file, keys_from_lines, keys_under_prefix
    from tools.ops.exceptions import ExitCode
    from tools.ops.progress import progress_bar
    from worker import resources
    from worker.aws import settings_client

    settings = resources.resolve(settings_mod.from_sources(args), needs=["queue_url", "bucket"])
    resources.check_access(settings, "queue_url")
    if args.keys:
        keys = list(args.keys)
    elif args.keys_from is not None:
        keys = (list(keys_from_lines(sys.stdin)) if str(args.keys_from) == "-"
                else keys_from_file(args.keys_from))
    else:
        # A failure here enqueued nothing: the CLI exits 2 (NoSuchBucket) or 3 (unreachable).
        keys = list(keys_under_prefix(settings_client("s3", settings), settings.bucket,
                                      args.prefix))
    with progress_bar("enqueueing", len(keys)) as advance:
        report = enqueue_jobs(settings_client("sqs", settings), settings.queue_url,
                              settings.bucket, keys, advance)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        for failure in report.failed:
            print(f"FAILED {failure.key}: {failure.code} {failure.message}", file=sys.stderr)
        print(f"sent {report.sent} of {len(keys)} jobs to {report.queue_url}")
        if report.aborted:
            print(f"ABORTED: {report.aborted}", file=sys.stderr)
    if report.aborted:  # AWS kept failing: the report says what was sent before it stopped
        return int(ExitCode.UNAVAILABLE)
    return int(ExitCode.DONE) if report.sent == len(keys) else int(ExitCode.DONE_IN_PART)
