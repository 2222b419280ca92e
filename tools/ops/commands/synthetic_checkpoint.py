"""`modfleet synthetic-checkpoint`: write a real-architecture checkpoint with random weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "synthetic-checkpoint"
HELP = ("Write a checkpoint directory of a real vision-language architecture with random weights "
        "from a fixed seed (config, safetensors, tokenizer, processor configs), for tests and "
        "benchmarks where no trained weights can be downloaded. Its outputs are labelled "
        "synthetic.")

PRESET_CHOICES = ("tiny", "small", "base")
ARCH_CHOICES = ("qwen2_vl", "qwen2_5_vl", "llava_next_video")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=PRESET_CHOICES, default="tiny",
                        help="Size: tiny (tests, ~0.2M parameters), small (~4.8M, CPU benchmarks), "
                             "base (~2.4B, shaped like Qwen2-VL-2B, for GPUs). Default tiny.")
    parser.add_argument("--arch", choices=ARCH_CHOICES, default="qwen2_vl",
                        help="Architecture (default qwen2_vl; llava_next_video: a CLIP tower and "
                             "a Llama decoder, the family the neuron backend compiles).")
    parser.add_argument("--out", type=Path, required=True, help="Directory to write (created).")
    parser.add_argument("--seed", type=int, default=0, help="Weight seed (default 0).")
    parser.add_argument("--policy-file", type=Path, default=None,
                        help="Policy whose prompts the tokenizer learns "
                             "(default: the packaged policy).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object, for scripts.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from model.synthetic import build_checkpoint

    path = build_checkpoint(args.out, args.preset, args.arch, args.seed, args.policy_file)
    marker = json.loads((path / "synthetic.json").read_text())
    if args.json:
        print(json.dumps({"path": str(path), **marker}))
    else:
        print(f"wrote synthetic {args.arch} checkpoint ({args.preset}, seed {args.seed}) to {path}")
    return 0
