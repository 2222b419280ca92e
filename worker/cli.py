"""The ``modfleet`` command: one entry point, one sub-command per module.

Each command module defines ``NAME``, ``HELP`` and ``register(parser)``, which adds its flags and
sets ``func`` to a callable taking the parsed arguments and returning an exit code.  Modules import
their heavy dependencies (torch, moto) inside ``func``, so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from worker.exceptions import AbortStartup

COMMAND_MODULES = (
    "worker.commands.demo",
    "worker.commands.worker",
    "worker.commands.local_stack",
    "worker.commands.submit",
    "worker.commands.enqueue",
    "worker.commands.replay_dlq",
    "worker.commands.status",
    "worker.commands.synthetic_checkpoint",
    "worker.commands.bench",
    "worker.commands.compile",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modfleet",
        description="Moderate uploaded videos with multimodal LLMs: worker, operator tools, "
                    "embedded AWS stack, model compilation and benchmarks.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.register(command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except AbortStartup as exc:
        print(f"modfleet {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
