"""`modfleet bench`: the end-to-end benchmark (tools/bench); see BENCHMARKS.md."""

from __future__ import annotations

import argparse

NAME = "bench"
HELP = ("Benchmark the whole path on the embedded AWS stack (uploads, queue, decoding, batching, "
        "replicas, verdicts) against a naive sequential worker; see BENCHMARKS.md.")


def register(parser: argparse.ArgumentParser) -> None:
    from tools.bench.e2e import add_arguments

    add_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tools.bench.e2e import run as run_e2e

    return run_e2e(args)
