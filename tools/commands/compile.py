"""`modfleet compile`: Neuron artifacts for the neuron backend, written once, loaded by workers."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from worker import settings as settings_mod

NAME = "compile"
HELP = ("Compile a Qwen2-VL checkpoint for AWS Inferentia2/Trainium: trace the vision encoder with "
        "torch-neuronx, compile the decoder with transformers-neuronx (tensor parallel degree, "
        "fixed batch size, INT8 weights), and write the artifacts plus manifest.json that "
        "`modfleet worker --backend neuron --compiled-dir DIR` loads. Needs the Neuron SDK.")

SETTINGS = ["model_dir", "synthetic_preset", "cache_dir", "batch_size", "frames_per_video",
            "frame_size", "tp_degree", "quantize", "mode", "max_new_tokens", "policy_file"]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True,
                        help="Directory for the artifacts (the worker's --compiled-dir).")
    parser.add_argument("--json", action="store_true", help="Print the manifest as JSON.")
    settings_mod.add_arguments(parser, SETTINGS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model.compile import compile_artifacts

    settings = settings_mod.from_sources(args)
    manifest = compile_artifacts(settings_mod.model_config(settings), args.out)
    if args.json:
        print(json.dumps(asdict(manifest)))
    else:
        print(f"compiled {manifest.model_name} for batch {manifest.batch_size}, tp degree "
              f"{manifest.tp_degree}, {manifest.quantize} weights into {args.out}")
    return 0
