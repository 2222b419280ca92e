"""`modfleet worker`: long-poll the queue, moderate each video, publish verdicts, delete."""

from __future__ import annotations

import argparse
import asyncio

from worker import settings as settings_mod

NAME = "worker"
HELP = ("Long-poll the SQS queue of S3 video keys, sample frames, run the model replicas, publish "
        "verdicts to SNS, then delete each message. SIGTERM drains and exits 0.")


def register(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser, settings_mod.field_groups(
        "aws", "queue", "media", "model", "runtime"))
    parser.add_argument("--exit-when-idle", dest="exit_when_idle_s", metavar="SECONDS",
                        default=argparse.SUPPRESS, help="Alias of --exit-when-idle-s.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from worker.app import serve, start_pool
    from worker.metrics import Metrics

    settings = settings_mod.from_sources(args)
    settings.require("queue_url", "topic_arn")
    metrics = Metrics(settings.metrics, settings.region)
    pool = start_pool(settings, metrics)
    try:
        asyncio.run(serve(settings, pool, metrics))
    finally:
        pool.stop(timeout=settings.shutdown_deadline_s)
    return 0
