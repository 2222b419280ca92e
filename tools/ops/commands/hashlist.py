"""`modfleet hashlist`: manage the region's known-content lists (PDQ hashes) for the worker."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from worker import settings as settings_mod
from worker.fingerprints import DEFAULT_THRESHOLD

NAME = "hashlist"
HELP = ("Import, list or remove the known-content lists (PDQ hashes) in the region's records "
        "bucket; a video with a frame within a list's distance is blocked before the model runs.")


def register(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = actions.add_parser(
        "import", help="Store a list from a file: PDQ hex one a line (optionally ' ID' after "
                       "it), or ThreatExchange's JSON export; replaces a list of that name.",
        description="Store a known-content list from a file.")
    imp.add_argument("name", help="List name: letters, digits, '.', '_', '-'.")
    imp.add_argument("file", type=Path, help="The hashes ('-' reads standard input).")
    imp.add_argument("--threshold", type=int, default=DEFAULT_THRESHOLD,
                     help=f"PDQ distance (of 256 bits) within which a frame matches "
                          f"(default {DEFAULT_THRESHOLD}, PDQ's usual).")
    imp.add_argument("--append", action="store_true",
                     help="Add to the list's entries instead of replacing them.")
    actions.add_parser("list", help="Show the stored lists.", description="Show the lists.")
    rm = actions.add_parser("remove", help="Delete a list.", description="Delete a list.")
    rm.add_argument("name", help="The list to delete.")
    for sub in actions.choices.values():
        settings_mod.add_arguments(sub, [*settings_mod.AWS_ACCESS, "records_bucket",
                                         "hashlist_prefix", "log_level", "log_format"])
        sub.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.ops import hashlists
    from tools.ops.exceptions import InvalidRequest
    from worker import resources
    from worker.aws import settings_client

    # The records bucket from its flag or variable, else from the stack's SSM parameters.
    settings = resources.resolve(settings_mod.from_sources(args), needs=["records_bucket"])
    s3 = settings_client("s3", settings)
    where = (settings.records_bucket, settings.hashlist_prefix)
    # An S3 failure escapes as AwsCallFailed: the CLI prints one line and exits 3 (2 if incurable).
    if args.action == "import":
        text = _read_text(args.file, InvalidRequest)
        summary = hashlists.import_list(s3, *where, args.name, text, args.threshold, args.append)
        return _print(args, {"command": "hashlist import", **summary.as_dict()},
                      f"imported {summary.entries} hashes into {summary.name} "
                      f"(threshold {summary.threshold}) at s3://{where[0]}/{summary.key}")
    if args.action == "list":
        lists = hashlists.list_lists(s3, *where)
        lines = "\n".join(f"{s.name:<32} {s.entries:>8} hashes  threshold {s.threshold:>3}  "
                          f"{s.updated_at}" for s in lists) or "no lists"
        return _print(args, {"command": "hashlist list", "lists": [s.as_dict() for s in lists]},
                      lines)
    removed = hashlists.remove_list(s3, *where, args.name)
    _print(args, {"command": "hashlist remove", "name": args.name, "removed": removed},
           f"removed {args.name}" if removed else f"no list named {args.name}")
    return 0 if removed else 1


def _read_text(path: Path, invalid: type[Exception]) -> str:
    if str(path) == "-":
        return sys.stdin.read()
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise invalid(f"cannot read {path}: {exc}") from None


def _print(args: argparse.Namespace, report: dict, text: str) -> int:
    print(json.dumps(report) if args.json else text)
    return 0
