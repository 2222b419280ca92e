"""What the commands that scan a dead-letter queue share: replay-dlq, dlq replay, dlq export and
dlq delete take the same filters, hold flags, ``--dry-run`` and ``--json``, stop the same way on
SIGINT/SIGTERM, and print the same account.  Not a command itself (no ``NAME``)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any, TextIO

from worker import settings as settings_mod

TEXT_LIST_LIMIT = 100  # dry-run lines printed as text; --json lists every candidate
SCAN_SETTINGS = ["dlq_url", *settings_mod.AWS_ACCESS, "log_level", "log_format"]
INFINITIVE = {"moved": "move", "exported": "export", "deleted": "delete"}


def add_filter_arguments(parser: argparse.ArgumentParser, verb: str) -> None:
    """--match, --error-code, --older-than, --max: which letters ``verb`` applies to."""
    from tools.ops.dead_letters import KNOWN_CODES

    parser.add_argument("--match", metavar="REGEX",
                        help="Only letters referring to an S3 key this regex matches (re.search; "
                             "any key of a multi-record event).")
    parser.add_argument("--error-code", metavar="CODE",
                        help=f"Only letters with this error code, one of {', '.join(KNOWN_CODES)} "
                             "(redrive: moved by SQS after maxReceiveCount, no modfleet.error_code "
                             "attribute); any other value is refused.")
    parser.add_argument("--older-than", metavar="DURATION",
                        help="Only letters first sent at least this long ago (90s, 15m, 2h, 7d); "
                             "a letter rotated by an earlier scan keeps its original age.")
    parser.add_argument("--max", type=int, metavar="N", help=f"{verb.capitalize()} at most N.")


def add_scan_arguments(parser: argparse.ArgumentParser, dry_run_help: str) -> None:
    """The DLQ and AWS settings, --hold, --max-held, --dry-run and --json."""
    settings_mod.add_arguments(parser, SCAN_SETTINGS)
    parser.add_argument("--hold", default="300s", metavar="DURATION",
                        help="How long each scanned letter stays invisible during the scan; all "
                             "are released when it ends (on Ctrl-C and SIGTERM too), or reappear "
                             "by themselves after a crash (default 300s).")
    parser.add_argument("--max-held", type=int, default=110_000, metavar="N",
                        help="Letters held invisible at once (SQS keeps at most 120,000 in "
                             "flight). Beyond it a dry run or an export stops and reports how "
                             "many it did not see; a replay or a delete sends the letters it "
                             "leaves to the DLQ's back, delayed by --hold (at most 15 min), "
                             "keeping their original age (default 110000).")
    parser.add_argument("--dry-run", action="store_true", help=dry_run_help)
    parser.add_argument("--json", action="store_true",
                        help="Print the account as one JSON object (format: tools/README.md).")


def resolved_settings(args: argparse.Namespace) -> Any:
    """The settings, with the DLQ from the stack where no flag or variable names it (a name is
    made a URL); an unknown DLQ fails here, one line, before anything is held."""
    from worker import resources

    settings = resources.resolve(settings_mod.from_sources(args), needs=["dlq_url"])
    resources.check_access(settings, "dlq_url")
    return settings


def client(service: str, settings: Any, **options: Any) -> Any:
    from worker.aws import settings_client

    return settings_client(service, settings, **options)


def selector_from(args: argparse.Namespace) -> Any:
    from tools.ops.dead_letters import Selector

    return Selector.build(args.match, args.error_code, args.older_than)


def hold_seconds(args: argparse.Namespace) -> int:
    from tools.ops.durations import parse_duration

    return max(1, round(parse_duration(args.hold)))


def dlq_depth(sqs: Any, dlq_url: str) -> int:
    """Visible letters, for the progress bar (an unknown queue fails here, before anything)."""
    from tools.ops.queues import queue_depth

    return queue_depth(sqs, dlq_url).visible


def run_scan(make_scan: Callable[[Any, Callable[[float], None]], Any], *, description: str,
             total: int, as_json: bool, stream: TextIO | None = None) -> int:
    """Run the scan ``make_scan(stop, advance)`` builds, with SIGINT/SIGTERM turned into a stop;
    print its account on ``stream`` (stdout); return its exit code."""
    from tools.ops.interrupts import StopOnSignal
    from tools.ops.progress import progress_bar

    with StopOnSignal() as stop:  # until the account is printed: a late signal cannot cut it
        with progress_bar(description, total or None) as advance:
            report = make_scan(stop, advance).run()
        print_report(report, as_json, stream or sys.stdout)
    return report.exit_code


def print_report(report: Any, as_json: bool, stream: TextIO) -> None:
    """The account: one JSON object, or the candidates of a dry run and a summary line."""
    if as_json:
        print(json.dumps(report.as_dict()), file=stream, flush=True)
        return
    verb = INFINITIVE.get(report.verb, report.verb)
    listed = [(f"would {verb}", item) for item in report.candidates] + [
        ("would leave (permanent: --force replays it)", item) for item in report.refused]
    for what, item in listed[:TEXT_LIST_LIMIT]:
        print(f"{what} {item['message_id']}  code={item['error_code']}  age={item['age_s']}s  "
              f"keys={', '.join(item['keys']) or '-'}  reason={item['reason'] or '-'}\n"
              f"    body: {item['body_preview']}", file=stream)
    if len(listed) > TEXT_LIST_LIMIT:
        print(f"... and {len(listed) - TEXT_LIST_LIMIT} more (--json lists all)", file=stream)
    for failure in report.failures:
        print(f"FAILED {failure.stage} {failure.message_id}: {failure.code} {failure.message}",
              file=sys.stderr)
    print(summary_line(report), file=stream, flush=True)
    for line in warning_lines(report):
        print(line, file=sys.stderr)


def summary_line(report: Any) -> str:
    done = (f"would {INFINITIVE.get(report.verb, report.verb)} {len(report.candidates)}"
            if report.dry_run else f"{report.verb} {report.done}")
    permanent = (f" ({report.permanent} permanent: --force replays them)"
                 if report.permanent else "")
    before = "?" if report.dlq_before is None else report.dlq_before
    after = "?" if report.dlq_after is None else report.dlq_after
    return (f"{done}, skipped {report.skipped}{permanent}, released {report.released}, failed "
            f"{report.failed}; duplicated {report.duplicated}, rotated {report.rotated}, scanned "
            f"{report.scanned} in {report.elapsed_s:.1f}s; DLQ {before} -> {after} "
            f"({report.dlq_url})")


def warning_lines(report: Any) -> list[str]:
    lines = []
    if report.interrupted:
        lines.append(f"INTERRUPTED by {report.interrupted}: stopped receiving; every letter it "
                     f"held was made visible again ({report.released})")
    if report.aborted:
        lines.append(f"ABORTED: {report.aborted}")
    if report.unseen:
        lines.append(f"NOT SEEN: {report.unseen} letters in the DLQ were not seen (delayed by an "
                     "earlier rotation, held by another reader, or arrived during the scan): run "
                     "again once they are visible (at most --hold, or 15 minutes)")
    return lines
