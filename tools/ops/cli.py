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
from tools.ops.exceptions import LabNotInstalled
from worker import settings as settings_mod
from worker.exceptions import AbortStartup
from worker.logs import configure

COMMAND_MODULES = (
    "tools.ops.commands.demo",
    "tools.ops.commands.worker",
    "tools.ops.commands.local_stack",
    "tools.ops.commands.submit",
    "tools.ops.commands.hashlist",
    "tools.ops.commands.enqueue",
    "tools.ops.commands.replay_dlq",
    "tools.ops.commands.status",
    "tools.ops.commands.synthetic_checkpoint",
    "tools.ops.commands.bench",
    "tools.ops.commands.compile",
    "tools.ops.commands.chaos",
    "tools.ops.commands.doctor",
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
        try:
            return int(args.func(args) or 0)
        except ModuleNotFoundError as exc:
            if not (exc.name or "").startswith("tools.lab"):
                raise
            raise LabNotInstalled(
                "this command needs the lab (tools/lab), which ships only in a source checkout, "
                "not in the wheel instances install: run it from a clone of the repository"
            ) from exc
    except (AbortStartup, FixModelSetup) as exc:
        print(f"modfleet {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
