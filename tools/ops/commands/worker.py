"""`modfleet worker`: long-poll the queue, moderate each video, publish verdicts, delete."""

from __future__ import annotations

import argparse

from worker import settings as settings_mod

NAME = "worker"
HELP = ("Long-poll the SQS queue of S3 video keys, sample frames, run the model replicas, publish "
        "verdicts to SNS, then delete each message. Before the model loads it checks the "
        "credentials, the queue, the dead-letter queue and the topic, and exits 2 naming a "
        "setting AWS refuses. SIGTERM drains and exits 0; a dead model replica, or AWS refusing "
        "the worker for --fatal-after-s, stops receiving, releases what the worker holds and "
        "exits 3, for the supervisor (systemd) to restart it.")
WORKER_NEEDS = ("queue_url", "topic_arn")


def register(parser: argparse.ArgumentParser) -> None:
    settings_mod.add_arguments(parser, settings_mod.field_groups(
        "aws", "queue", "media", "model", "reuse", "runtime"))
    parser.add_argument("--exit-when-idle", dest="exit_when_idle_s", metavar="SECONDS",
                        default=argparse.SUPPRESS, help="Alias of --exit-when-idle-s.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.ops.exceptions import ExitCode
    from worker import resources
    from worker.app import WorkerService
    from worker.exceptions import AwsUnavailable, ReplicaDied
    from worker.logs import get_logger
    from worker.metrics import Metrics

    settings = resources.resolve(settings_mod.from_sources(args), needs=WORKER_NEEDS)
    resources.check_worker_access(settings)  # before the model loads: minutes on a big one
    try:
        with WorkerService(settings, Metrics(settings.metrics, settings.region)) as service:
            service.run(install_signals=True)
    except (ReplicaDied, AwsUnavailable) as exc:
        get_logger(__name__).error("exiting for a restart", error=str(exc),
                                   exit_code=int(ExitCode.UNAVAILABLE))
        raise  # the CLI prints it and exits 3
    return 0
