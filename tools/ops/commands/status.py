"""`modfleet status`: per queue visible, in flight, delayed and oldest age, the same for its
dead-letter queue; the Auto Scaling group's instances; the age of the last verdict."""

from __future__ import annotations

import argparse
import json

from worker import settings as settings_mod

NAME = "status"
HELP = ("Show, per queue and its dead-letter queue: messages visible, in flight and delayed, and "
        "the oldest message's age (CloudWatch, else a peek); the Auto Scaling group's desired and "
        "in-service instances (--asg); the age of the last verdict (the worker's CloudWatch "
        "metrics).")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue-url", dest="queue_urls", action="append", metavar="URL",
                        help="A queue to report; repeat for several (default: MODFLEET_QUEUE_URL).")
    settings_mod.add_arguments(parser, [*settings_mod.AWS_ACCESS, "log_level", "log_format"])
    parser.add_argument("--asg", "--autoscaling-group", dest="autoscaling_group", metavar="NAME",
                        help="The fleet's Auto Scaling group [env MODFLEET_AUTOSCALING_GROUP, or "
                             "the stack's autoscaling-group parameter; unset: not shown].")
    parser.add_argument("--peek", action="store_true",
                        help="Where CloudWatch has no age, peek at queues with a redrive policy "
                             "too (each peek counts one receive towards maxReceiveCount).")
    parser.add_argument("--json", action="store_true",
                        help="Print one JSON object (format: tools/README.md).")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.ops.status import fleet_status
    from worker import resources
    from worker.aws import settings_client

    settings = resources.resolve(settings_mod.from_sources(args),
                                 needs=[] if args.queue_urls else ["queue_url"])
    urls = args.queue_urls or [settings.queue_url]

    def client(service: str):
        return settings_client(service, settings)

    report = fleet_status(client("sqs"), urls, cloudwatch=client("cloudwatch"),
                          autoscaling=client("autoscaling"),
                          group_name=settings.autoscaling_group, peek_all=args.peek)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        _print_table(report)
    return 0 if report.complete else 1


def _print_table(report) -> None:
    # Plain columns rather than a rich table: on-call greps and pastes this into tickets.
    rows = [("queue", "visible", "in flight", "delayed", "oldest", "dlq visible", "dlq in flight",
             "dlq delayed", "oldest dead")]
    for q in report.queues:
        dlq = q.dlq
        dead = ("-", "-", "-", "-") if dlq is None else (
            str(dlq.visible), str(dlq.in_flight), str(dlq.delayed), _age(dlq))
        rows.append((q.name, str(q.visible), str(q.in_flight), str(q.delayed), _age(q), *dead))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print(f"fleet at {report.generated_at}")
    for name, *numbers in rows:
        cells = [c.rjust(w) for c, w in zip(numbers, widths[1:], strict=True)]
        print("  ".join([name.ljust(widths[0]), *cells]))
    group = report.autoscaling_group
    if group is not None:
        states = ", ".join(f"{n} {state}" for state, n in group.lifecycle.items()) or "none"
        print(f"auto scaling group {group.name}: desired {group.desired}, in service "
              f"{group.in_service} (min {group.min_size}, max {group.max_size}; instances: "
              f"{states})")
    verdict = report.last_verdict
    if verdict is not None:
        print(f"last verdict: {_verdict_age(verdict)}")


def _age(q) -> str:
    if q.oldest_age_s is None:
        return "? (use --peek)" if q.max_receive_count else "?"
    prefix = ">=" if q.oldest_age_source == "peek" else ""
    return f"{prefix}{q.oldest_age_s:.0f}s"


def _verdict_age(verdict) -> str:
    if verdict.source == "cloudwatch":
        return (f"{verdict.age_s:.0f}s ago (at {verdict.at}; {verdict.last_5_min:.0f} in the last "
                f"5 min; CloudWatch modfleet/Videos)")
    if verdict.source == "none":
        return f"none in the last {verdict.window_s // 3600} h (CloudWatch modfleet/Videos)"
    return f"unknown: {verdict.error}"
