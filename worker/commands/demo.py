"""`modfleet demo`: placeholder until the pipeline lands (issue 2)."""

NAME = "demo"
HELP = "Run the whole flow on the embedded stack with generated sample videos."


def register(parser):
    parser.set_defaults(func=lambda args: 1)
