"""`modfleet compile`: Neuron artifacts for the neuron backend, written once, loaded by workers."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from worker import settings as settings_mod

NAME = "compile"
HELP = ("Compile a LLaVA-NeXT-Video checkpoint for AWS Inferentia2: trace the video encoder with "
        "torch-neuronx, compile the Llama decoder with transformers-neuronx (tensor parallel "
        "degree, fixed batch size, the prompt's context bucket, INT8 weights), and write the "
        "artifacts plus manifest.json that `modfleet worker --backend neuron --compiled-dir DIR` "
        "loads. Needs the Neuron SDK 2.25 (setup.cfg's neuron extra). Qwen2-VL/Qwen2.5-VL are "
        "refused (exit 2): they run on the torch backend only.")

SETTINGS = ["model_dir", "synthetic_preset", "synthetic_arch", "cache_dir", "batch_size",
            "frames_per_video", "frame_size", "tp_degree", "quantize", "mode", "max_new_tokens",
            "policy_file"]


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True,
                        help="Directory for the artifacts (the worker's --compiled-dir).")
    parser.add_argument("--json", action="store_true", help="Print the manifest as JSON.")
    parser.add_argument("--amp", choices=("bf16", "f32"), default="bf16",
                        help="Decoder compute dtype (default bf16, Inf2's native matmul type; f32 "
                             "for comparing with the torch backend on CPU).")
    settings_mod.add_arguments(parser, SETTINGS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model.compile import compile_artifacts

    settings = settings_mod.from_sources(args)
    manifest = compile_artifacts(settings_mod.model_config(settings), args.out, amp=args.amp)
    if args.json:
        print(json.dumps(asdict(manifest)))
    else:
        print(f"compiled {manifest.model_name} for batch {manifest.batch_size}, tp degree "
              f"{manifest.tp_degree}, {manifest.quantize} weights into {args.out}")
    return 0
