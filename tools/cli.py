"""The ``modfleet`` command: one entry point, one sub-command per module.

Each command module defines ``NAME``, ``HELP`` and ``register(parser)``, which adds its flags and
sets ``func`` to a callable taking the parsed arguments and returning an exit code; it may define
``LOG_DEFAULTS`` (e.g. quieter logs for a command whose output is a report).  Logging is configured
here, once, before the command runs: logs go to stderr, so ``--json`` output on stdout stays
clean.  Modules import their heavy dependencies (torch, moto) inside ``func``, so ``--help`` stays
fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from model.exceptions import FixModelSetup
from worker import settings as settings_mod
from worker.exceptions import AbortStartup
from worker.logs import configure

COMMAND_MODULES = (
    "tools.commands.demo",
    "tools.commands.worker",
    "tools.commands.local_stack",
    "tools.commands.submit",
    "tools.commands.enqueue",
    "tools.commands.replay_dlq",
    "tools.commands.status",
    "tools.commands.synthetic_checkpoint",
    "tools.commands.bench",
    "tools.commands.compile",
    "tools.commands.chaos",
    "tools.commands.doctor",
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
        command.set_defaults(log_defaults=getattr(module, "LOG_DEFAULTS", {}))
    return parser


def configure_logging(args: argparse.Namespace) -> None:
    """Logs to stderr, by --log-format/--log-level, MODFLEET_LOG_*, or the command's defaults."""
    configure(*(settings_mod.field_value(name, args, args.log_defaults.get(name))
                for name in ("log_format", "log_level")))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        configure_logging(args)
        return int(args.func(args) or 0)
    except (AbortStartup, FixModelSetup) as exc:
        print(f"modfleet {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
