"""`modfleet worker`: long-poll the queue, moderate each video, publish verdicts, delete."""

from __future__ import annotations

import argparse

from worker import settings as settings_mod

NAME = "worker"
HELP = ("Long-poll the SQS queue of S3 video keys, sample frames, run the model replicas, publish "
        "verdicts to SNS, then delete each message. SIGTERM drains and exits 0; a dead model "
        "replica stops receiving, releases what the worker holds and exits 3, for the "
        "supervisor (systemd) to restart it.")
EXIT_REPLICA_DIED = 3


def register(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser, settings_mod.field_groups(
        "aws", "queue", "media", "model", "reuse", "runtime"))
    parser.add_argument("--exit-when-idle", dest="exit_when_idle_s", metavar="SECONDS",
                        default=argparse.SUPPRESS, help="Alias of --exit-when-idle-s.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from worker.app import WorkerService
    from worker.exceptions import ReplicaDied
    from worker.logs import get_logger
    from worker.metrics import Metrics

    settings = settings_mod.from_sources(args)
    settings.require("queue_url", "topic_arn")
    try:
        with WorkerService(settings, Metrics(settings.metrics, settings.region)) as service:
            service.run(install_signals=True)
    except ReplicaDied as exc:
        get_logger(__name__).error("exiting for a restart", error=str(exc),
                                   exit_code=EXIT_REPLICA_DIED)
        return EXIT_REPLICA_DIED
    return 0
