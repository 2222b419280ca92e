"""`modfleet chaos`: uploads through the embedded stack under faults, kills and hostile media."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "chaos"
HELP = ("Run N uploads (and hostile mutants, and poison bodies) through an embedded stack with a "
        "fault-injecting proxy in front of it and worker processes killed at random; when the "
        "queue is idle, check that every upload settled once (by idempotency key) or was "
        "dead-lettered with a reason. Exit 0 when the promise held, 1 when it did not.")
LOG_DEFAULTS = {"log_level": "warning"}  # the report is the output; the workers log to files
DEFAULT_MEDIA = Path(__file__).resolve().parents[3].parent / "shared" / "media"


def register(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--uploads", type=int, default=100, help="Clip uploads, about 5%% of them new versions "
                                                 "of an earlier key (default 100).")
    add("--hostile", type=int, default=0, help="Hostile mutants of the clips to upload as well "
                                               "(default 0).")
    add("--poison", type=int, default=3, help="Poison bodies sent to the queue (default 3).")
    add("--workers", type=int, default=2, help="Worker processes (default 2).")
    add("--fault-rate", type=float, default=0.1,
        help="Share of every call kind the proxy fails (default 0.1).")
    add("--kill-every", type=float, default=6.0, metavar="SECONDS",
        help="Mean seconds between worker interruptions; 0: none (default 6).")
    add("--sigterm-share", type=float, default=0.25,
        help="Share of the interruptions that are SIGTERM rather than SIGKILL (default 0.25).")
    add("--min-kills", type=int, default=0,
        help="SIGKILLs the run must deliver before it may end (default 0).")
    add("--seed", type=int, default=1, help="Seed of every random choice of the run (default 1).")
    add("--visibility-timeout", type=int, default=10, metavar="SECONDS",
        help="The queue's and the workers' visibility timeout (default 10).")
    add("--max-receive-count", type=int, default=10,
        help="Receives before SQS moves a message to the DLQ (default 10).")
    add("--timeout", type=float, default=900.0, metavar="SECONDS",
        help="Give up if the queue is not idle by then (default 900).")
    add("--media-dir", type=Path, default=DEFAULT_MEDIA,
        help="Real clips to upload and mutate besides the generated ones (default ../shared/media;"
             " skipped when absent).")
    add("--log-dir", type=Path, help="Keep the workers' logs here (default: a temporary folder).")
    add("--worker-arg", action="append", default=[], metavar="ARG",
        help="Extra flag for every worker (repeat; e.g. --worker-arg=--decode-threads=1).")
    add("--reuse", action="store_true",
        help="Workers use the verdict table and records bucket: re-uploads hit the cache, and "
             "the proxy fails DynamoDB calls too (default off: the cache would answer most "
             "copies without the GETs and decodes the run is about).")
    add("--json", action="store_true", help="Print the report as one JSON object.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.lab.chaos.report import render
    from tools.lab.chaos.run import ChaosPlan, run_chaos
    from tools.ops.progress import progress_bar
    from worker.exceptions import SettingsError

    try:
        plan = ChaosPlan(uploads=args.uploads, hostile=args.hostile, poison=args.poison,
                         workers=args.workers, fault_rate=args.fault_rate,
                         kill_every_s=args.kill_every, sigterm_share=args.sigterm_share,
                         min_kills=args.min_kills,
                         seed=args.seed, visibility_timeout_s=args.visibility_timeout,
                         max_receive_count=args.max_receive_count, timeout_s=args.timeout,
                         media_dir=args.media_dir, log_dir=args.log_dir,
                         worker_args=tuple(args.worker_arg), reuse=args.reuse)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    with progress_bar("uploads settled", args.uploads + args.hostile) as advance:
        report = run_chaos(plan, on_progress=advance)
    print(json.dumps(report.as_dict()) if args.json else render(report))
    return 0 if report.ok else 1
