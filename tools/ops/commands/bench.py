"""`modfleet bench`: the end-to-end benchmark (tools/lab/bench); see BENCHMARKS.md."""

from __future__ import annotations

import argparse

NAME = "bench"
LOG_DEFAULTS = {"log_level": "warning"}  # the report is the output
HELP = ("Benchmark the whole path on the embedded AWS stack (uploads, queue, decoding, batching, "
        "replicas, verdicts) against a naive sequential worker, or with --model-only the model "
        "alone over a grid of settings; see BENCHMARKS.md.")


def register(parser: argparse.ArgumentParser) -> None:
    try:  # the flags are the lab's; an installed wheel has no lab, and `run` then says so
        from tools.lab.bench.e2e import add_arguments
        from tools.lab.bench.model_only import add_model_only_arguments
    except ModuleNotFoundError:
        parser.set_defaults(func=run)
        return
    add_arguments(parser)
    add_model_only_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.model_only:
        from tools.lab.bench.model_only import run_model_only

        return run_model_only(args)
    from tools.lab.bench.e2e import run as run_e2e

    return run_e2e(args)
