"""The ``modfleet`` command: one entry point, one sub-command per module.

Each command module defines ``NAME``, ``HELP`` and ``register(parser)``, which adds its flags and
sets ``func`` to a callable taking the parsed arguments and returning an exit code; it may define
``LOG_DEFAULTS`` (e.g. quieter logs for a command whose output is a report).  Logging is configured
here, once, before the command runs: logs go to stderr, so ``--json`` output on stdout stays
clean.  Modules import their heavy dependencies (torch, moto) inside ``func``, so ``--help`` stays
fast.

Exit codes follow one table for every command (README "Exit codes", ``tools.ops.exceptions.
ExitCode``), applied here once: what escapes a command is mapped by ``exit_code_for`` and printed
as one line, ``modfleet COMMAND: what went wrong``, never a traceback.  SIGTERM raises
``Terminated`` (exit 143) as SIGINT raises ``KeyboardInterrupt`` (exit 130).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
from collections.abc import Sequence
from typing import Any

from model.exceptions import FixModelSetup
from tools.ops.exceptions import (INTERRUPTS, ExitCode, LabNotInstalled, Terminated,
                                  interrupt_exit_code)
from worker import settings as settings_mod
from worker.errors_aws import aws_error, is_incurable, one_line
from worker.exceptions import AbortStartup, AwsUnavailable, ReplicaDied, SettingsError
from worker.logs import configure

COMMAND_MODULES = (
    "tools.ops.commands.demo",
    "tools.ops.commands.worker",
    "tools.ops.commands.local_stack",
    "tools.ops.commands.submit",
    "tools.ops.commands.hashlist",
    "tools.ops.commands.enqueue",
    "tools.ops.commands.replay_dlq",
    "tools.ops.commands.dlq",
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
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        configure_logging(args)
        return int(run_command(args) or 0)
    except BaseException as exc:
        code = exit_code_for(exc)
        if code is None:
            raise  # a bug, not a user's mistake: the traceback is the report
        if code not in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
            print(f"modfleet {args.command}: {describe(exc, args)}", file=sys.stderr)
        return code


def run_command(args: argparse.Namespace) -> Any:
    """The command's own function; a lab module missing (an installed wheel) is LabNotInstalled."""
    try:
        return args.func(args)
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("tools.lab"):
            raise
        raise LabNotInstalled(
            "this command needs the lab (tools/lab), which ships only in a source checkout, "
            "not in the wheel instances install: run it from a clone of the repository"
        ) from exc


def exit_code_for(exc: BaseException) -> int | None:
    """The exit code of the table for what escaped a command; None for a bug (re-raised)."""
    if isinstance(exc, INTERRUPTS):
        return interrupt_exit_code(exc)
    if isinstance(exc, (AbortStartup, FixModelSetup)):
        return ExitCode.FIX_INPUT
    if isinstance(exc, (AwsUnavailable, ReplicaDied)):
        return ExitCode.UNAVAILABLE
    if aws_error(exc) is not None:  # botocore's, raw or wrapped (AwsCallFailed)
        return ExitCode.FIX_INPUT if is_incurable(exc) else ExitCode.UNAVAILABLE
    return None


def describe(exc: BaseException, args: argparse.Namespace) -> str:
    """One line for the user: the error's own message, and for an AWS error where it was asked."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if aws_error(exc) is None or isinstance(exc, (AbortStartup, AwsUnavailable)):
        return text
    if not str(exc).strip() or aws_error(exc) is exc:
        text = one_line(exc)
    return f"{text} (region {_asked_region(args)})"


def _asked_region(args: argparse.Namespace) -> str:
    try:
        return settings_mod.from_sources(args).region
    except SettingsError:
        return settings_mod.field_value("region", args)


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
