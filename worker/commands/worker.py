"""`modfleet demo`: placeholder until the pipeline lands (issue 2)."""

NAME = "worker"
HELP = "Long-poll the queue and publish verdicts."


def register(parser):
    parser.set_defaults(func=lambda args: 1)
