"""`modfleet demo`: the whole flow in one process, on the embedded AWS stack.

Starts moto on loopback, provisions a region's stack, uploads generated sample videos (and any paths
given) through S3 so that the bucket's notifications drive the queue, adds a direct job for a
missing object and one poison body, runs the worker until the queue is idle, then reads the
verdicts back from the tap queue subscribed to the verdict topic and prints them.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from worker import settings as settings_mod

NAME = "demo"
# A demo is read by a person: readable warnings, not every verdict's log line.
LOG_DEFAULTS = {"log_level": "warning", "log_format": "console"}
HELP = ("Run the whole flow on an embedded AWS stack: upload sample videos, let S3 notifications "
        "drive the worker, print the verdicts and a summary.")


@dataclass(frozen=True)
class Fed:
    """What the demo put on the stack: uploads (one verdict each), one direct job for a missing
    object (an error verdict), one poison body (a dead letter, no verdict)."""

    uploaded: int
    direct_jobs: int = 1
    poison: int = 1

    @property
    def verdicts(self) -> int:
        return self.uploaded + self.direct_jobs


# How the worker's counts read in the summary, in this order.
OUTCOME_WORDS = {"settled": "settled", "test_event": "S3 test event acknowledged",
                 "dead_lettered": "dead-lettered", "retried": "retried", "released": "released",
                 "poison_left": "poison left for the redrive",
                 "settled_not_deleted": "settled but not deleted"}


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="*", type=Path, help="Extra video files to upload.")
    parser.add_argument("--json", action="store_true", help="Print one verdict per line (JSON).")
    parser.add_argument("--no-samples", action="store_true",
                        help="Upload only the given paths, not the generated sample videos.")
    settings_mod.add_arguments(parser, settings_mod.field_groups("media", "model") +
                               ["region", "log_format", "log_level", "exit_when_idle_s"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.paths if not p.is_file()]
    if missing:
        print(f"modfleet demo: no such file: {', '.join(missing)}", file=sys.stderr)
        return 2
    base = settings_mod.from_sources(args, exit_when_idle_s=args.exit_when_idle_s or 3,
                                     metrics=False)
    from tools.lab.embedded_aws import EmbeddedAws, provision

    with EmbeddedAws() as aws, tempfile.TemporaryDirectory(prefix="modfleet-demo-") as tmp:
        stack = provision(aws.endpoint_url, base.region)
        settings = base.for_stack(stack).with_changes(wait_time_s=1, heartbeat_interval_s=20)
        fed = _feed(stack, args, Path(tmp))
        _say(args, f"Uploaded {fed.uploaded} object{'s' * (fed.uploaded != 1)} to "
                   f"s3://{stack.bucket}/ and queued a direct job for a missing object and one "
                   f"poison message; starting the worker ...")
        stats = _run_worker(settings, args, fed)
        verdicts = _read_verdicts(stack, fed.verdicts)
        dead = _dlq_depth(stack)
    _report(verdicts, dead, stats, args)
    return 0 if len(verdicts) == fed.verdicts else 1


def _feed(stack, args: argparse.Namespace, tmp: Path) -> Fed:
    from worker.aws import boto3_client
    from tools.lab.sample_videos import write_demo_set

    s3 = boto3_client("s3", stack.region, stack.endpoint_url)
    sqs = boto3_client("sqs", stack.region, stack.endpoint_url)
    paths = ([] if args.no_samples else write_demo_set(tmp / "samples")) + list(args.paths)
    for path in paths:
        s3.upload_file(str(path), stack.bucket, f"demo/{path.name}")
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(
        {"bucket": stack.bucket, "key": "demo/deleted-before-processing.mp4"}))
    sqs.send_message(QueueUrl=stack.queue_url, MessageBody="this is not a job")
    return Fed(uploaded=len(paths))


def _run_worker(settings, args: argparse.Namespace, fed: Fed):
    from tools.ops.progress import progress_bar
    from worker.app import WorkerService
    from worker.metrics import Metrics

    if settings.model_dir is None:
        _say(args, f"No --model-dir: using the synthetic '{settings.synthetic_preset}' checkpoint "
                   f"(random weights; labels are not meaningful), built on first use.")
    with WorkerService(settings, Metrics(False, settings.region)) as service, \
            progress_bar("verdicts", fed.verdicts) as advance:
        # The worker's own metric records, read instead of printed: one "Videos" per verdict.
        counting = Metrics(True, settings.region, sink=lambda line: advance(
            json.loads(line).get("Videos", 0)))
        return service.run(metrics=counting)


def _read_verdicts(stack, expected: int) -> list[dict]:
    """The verdicts as a subscriber of the topic got them, one per idempotency key."""
    from tools.lab.embedded_aws import drain_tap

    verdicts = {m.verdict["idempotency_key"]: m.verdict for m in drain_tap(stack, expected)}
    return sorted(verdicts.values(), key=lambda v: v["video"]["key"])


def _dlq_depth(stack) -> int:
    from tools.ops.queues import queue_depth
    from worker.aws import boto3_client

    return queue_depth(boto3_client("sqs", stack.region, stack.endpoint_url), stack.dlq_url).visible


def _report(verdicts: list[dict], dead: int, stats, args: argparse.Namespace) -> None:
    if args.json:
        for verdict in verdicts:
            print(json.dumps(verdict))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title="modfleet verdicts (embedded AWS stack)")
    table.caption = "ms f/d/i: fetch / decode / infer milliseconds"
    for column in ("key", "status", "decision", "top labels / error", "duration s", "ms f/d/i"):
        table.add_column(column)
    for v in verdicts:
        t = v["timings_ms"]
        detail = (v["error"]["code"] if v["error"] else
                  ", ".join(f"{lab['name']} {lab['confidence']:.0f}"
                            for lab in sorted(v["labels"], key=lambda x: -x["confidence"])[:2])
                  or "-")
        table.add_row(v["video"]["key"], v["status"], v["decision"], detail,
                      str(v["video"]["duration_s"] if v["video"]["duration_s"] is not None else "-"),
                      "/".join(str(round(t.get(s, 0))) for s in ("fetch", "decode", "infer")))
    console = Console(width=max(120, Console().width))
    console.print(table)
    model = verdicts[0]["model"] if verdicts else {}
    decisions = {d: sum(v["decision"] == d for v in verdicts) for d in ("allow", "review", "block")}
    console.print(f"{len(verdicts)} verdicts: " + ", ".join(f"{n} {d}" for d, n in decisions.items())
                  + f"; {sum(v['status'] == 'error' for v in verdicts)} errors; "
                  f"{dead} message(s) in the dead-letter queue.")
    console.print(f"model: {model.get('name')} ({model.get('backend')}, "
                  f"{'SYNTHETIC weights' if model.get('synthetic') else 'real weights'}, "
                  f"quantization {model.get('quantization')}); worker: "
                  f"{outcome_summary(stats.messages)}.")


def outcome_summary(counts: collections.Counter) -> str:
    """The worker's message counts as a person reads them: "11 settled, 1 dead-lettered"."""
    known = [f"{counts[name]} {words}" for name, words in OUTCOME_WORDS.items() if counts[name]]
    other = [f"{n} {name.replace('_', ' ')}" for name, n in sorted(counts.items())
             if name not in OUTCOME_WORDS and n]
    return ", ".join(known + other) or "no messages"


def _say(args: argparse.Namespace, text: str) -> None:
    print(text, file=sys.stderr if args.json else sys.stdout, flush=True)
