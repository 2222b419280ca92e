"""`modfleet bench` (without --model-only): the whole path, against a naive worker, in one run.

Order of a run, on one corpus and one model: encode the corpus (cached), compare sampled decoding
with decoding every frame, start moto and a warm replica pool, measure the pool alone, drain a
backlog through the real worker, measure the pool alone again, pace a few uploads for latency,
then run the naive sequential worker.  Model-only runs bracket the worker run so that a machine
whose load drifts (a shared CI box) does not flatter the efficiency: the faster one is used.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from worker import settings as settings_mod

if TYPE_CHECKING:
    from tools.lab.bench.corpus import CorpusSpec, LongClipSpec
    from tools.lab.bench.paced import PacedOptions

SHARED_MEDIA = Path(__file__).resolve().parents[3].parent / "shared" / "media"


@dataclass(frozen=True)
class BenchOptions:
    """What to run, beside the worker's own settings."""

    videos: int
    corpus: CorpusSpec  # imported lazily: av and numpy would slow down --help
    shared_media: Path | None
    latency_videos: int
    latency_load: float
    baseline_videos: int
    torch_threads: int
    paced: PacedOptions
    long_clip: LongClipSpec


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The benchmark's flags, plus the worker's media and model settings."""
    add = parser.add_argument
    add("--videos", type=int, default=24, help="Videos through the worker (and the baseline). "
        "[default 24]")
    add("--preset", dest="synthetic_preset", choices=("tiny", "small", "base"),
        default=argparse.SUPPRESS, help="Alias of --synthetic-preset.")
    add("--corpus-resolution", default="1280x720", metavar="WxH",
        help="Size of the generated clips. [default 1280x720]")
    add("--corpus-seconds", type=float, default=30.0, help="Length of each clip. [default 30]")
    add("--corpus-fps", type=int, default=30, help="Frame rate of each clip. [default 30]")
    add("--keyframe-every-s", type=float, default=2.0,
        help="Keyframe interval of the clips. [default 2]")
    add("--distinct-clips", type=int, default=6, help="Clips encoded (and cached); uploads cycle "
        "through them and the real clips. [default 6]")
    add("--no-shared-media", action="store_true",
        help=f"Leave out the real clips of {SHARED_MEDIA}.")
    add("--latency-videos", type=int, default=8,
        help="Uploads paced one at a time for the latency figures. [default 8]")
    add("--latency-load", type=float, default=0.5, help="Pace of those uploads as a fraction of "
        "the measured end-to-end throughput. [default 0.5]")
    add("--baseline-videos", type=int, default=0,
        help="Videos through the naive worker (0: as many as --videos). [default 0]")
    add("--torch-threads", type=int, default=0, help="torch threads per replica (0: the "
        "worker's own plan, cores / replicas). [default 0]")
    add("--paced-videos", type=int, default=96, help="Videos through the worker in each paced "
        "device regime. [default 96]")
    add("--paced-replicas", type=int, default=4, help="Replicas of the paced device. [default 4]")
    add("--paced-batch-size", type=int, default=4, help="Batch size of the paced device. "
        "[default 4]")
    add("--paced-load", type=float, default=0.6, help="The slow paced device's rate as a fraction "
        "of the host's capacity measured with the fast one. [default 0.6]")
    add("--paced-fast-batch-ms", type=float, default=2.0, help="Device time per batch of the fast "
        "paced device. [default 2]")
    add("--paced-slow-batch-ms", type=float, default=0.0, help="Device time per batch of the slow "
        "paced device (0: from --paced-load and the measured capacity). [default 0]")
    add("--long-clip-seconds", type=float, default=600.0, help="Length of the long clip for the "
        "ranged-read figures. [default 600]")
    add("--long-clip-resolution", default="1280x720", metavar="WxH",
        help="Size of the long clip. [default 1280x720]")
    add("--reuse", action="store_true", help="Instead: the re-upload corpus (30%% exact copies, "
        "20%% re-encodes) with the verdict cache off and on, and the false-match check of the "
        "fingerprints (tools/lab/bench/reuse.py).")
    add("--reuse-mutants", type=int, default=1000, help="With --reuse: hostile mutants in the "
        "false-match check. [default 1000]")
    add("--reuse-resolution", default="640x360", metavar="WxH",
        help="With --reuse: size of the generated originals. [default 640x360]")
    add("--reuse-seconds", type=float, default=6.0,
        help="With --reuse: length of each original. [default 6]")
    add("--json", action="store_true", help="Print one JSON object on stdout.")
    add("--write-paced-section", nargs="?", const=Path("BENCHMARKS.md"), type=Path,
        default=None, metavar="FILE", help="Rewrite the paced-device section of FILE "
        "(BENCHMARKS.md) from this run's result.")
    settings_mod.add_arguments(parser, settings_mod.field_groups("media", "model") + [
        "max_in_flight", "exit_when_idle_s", "log_format", "log_level"])


def run(args: argparse.Namespace) -> int:
    """Run the benchmark from parsed flags; print a table, or one JSON object with --json."""
    from tools.lab.bench.corpus import CorpusSpec
    from tools.lab.bench.paced import PacedOptions

    settings = settings_mod.from_sources(args, exit_when_idle_s=args.exit_when_idle_s or 2.0,
                                         metrics=False, wait_time_s=1)
    if args.reuse:
        return _run_reuse(args, settings)
    width, _, height = args.corpus_resolution.partition("x")
    options = BenchOptions(
        videos=args.videos,
        corpus=CorpusSpec(int(width), int(height), args.corpus_seconds, args.corpus_fps,
                          args.keyframe_every_s, args.distinct_clips),
        shared_media=None if args.no_shared_media else SHARED_MEDIA,
        latency_videos=args.latency_videos, latency_load=args.latency_load,
        baseline_videos=args.baseline_videos or args.videos, torch_threads=args.torch_threads,
        paced=PacedOptions(args.paced_videos, args.paced_replicas, args.paced_batch_size,
                           args.paced_load, args.paced_fast_batch_ms, args.paced_slow_batch_ms),
        long_clip=_long_clip(args))
    problems = _problems(options)
    if problems:
        print(f"modfleet bench: {'; '.join(problems)}", file=sys.stderr)
        return 2
    from tools.lab.bench.runner import run_bench

    result = run_bench(settings, options, say=_say)
    if args.write_paced_section:
        import shlex

        from tools.lab.bench.paced_report import render_section, write_section

        command = "modfleet " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        write_section(args.write_paced_section, render_section(result.as_json(), command))
        _say(f"bench: wrote the paced-device section of {args.write_paced_section}")
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        from rich.console import Console

        from tools.lab.bench.results import render_table

        Console().print(render_table(result))
    return 0


def _run_reuse(args: argparse.Namespace, settings: settings_mod.Settings) -> int:
    from tools.lab.bench.reuse import ReuseOptions, render_lines, run_reuse

    width, _, height = args.reuse_resolution.partition("x")
    options = ReuseOptions(videos=args.videos, width=int(width), height=int(height),
                           seconds=args.reuse_seconds, mutants=args.reuse_mutants,
                           shared_media=None if args.no_shared_media else SHARED_MEDIA)
    if options.videos < 2 or options.mutants < 0 or options.width % 2 or options.height % 2:
        print("modfleet bench: --reuse needs --videos >= 2, --reuse-mutants >= 0 and even "
              "--reuse-resolution sides", file=sys.stderr)
        return 2
    result = run_reuse(settings, options, _say)
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(render_lines(result)))
    return 0


def _long_clip(args: argparse.Namespace) -> LongClipSpec:
    from tools.lab.bench.corpus import LongClipSpec

    width, _, height = args.long_clip_resolution.partition("x")
    seconds = args.long_clip_seconds
    # Short clips (the regression test's) keep a keyframe per sample spacing or less.
    return LongClipSpec(int(width), int(height), seconds, keyframe_every_s=min(10.0, seconds / 8),
                        segment_s=min(20.0, seconds))


def _problems(options: BenchOptions) -> list[str]:
    checks = [(options.videos >= 1, "--videos must be at least 1"),
              (options.corpus.distinct >= 1, "--distinct-clips must be at least 1"),
              (options.corpus.seconds > 0 and options.corpus.fps > 0,
               "--corpus-seconds and --corpus-fps must be positive"),
              (options.corpus.width % 2 == 0 and options.corpus.height % 2 == 0,
               "--corpus-resolution needs even sides (yuv420p)"),
              (0 < options.latency_load <= 1, "--latency-load must be in (0, 1]"),
              (options.latency_videos >= 1, "--latency-videos must be at least 1"),
              (options.torch_threads >= 0, "--torch-threads must be 0 or more"),
              (options.paced.videos >= 1 and options.paced.replicas >= 1
               and options.paced.batch_size >= 1, "--paced-videos, --paced-replicas and "
               "--paced-batch-size must be at least 1"),
              (0 < options.paced.load <= 1, "--paced-load must be in (0, 1]"),
              (options.long_clip.seconds >= 1, "--long-clip-seconds must be at least 1")]
    return [message for ok, message in checks if not ok]


def _say(text: str) -> None:
    # stderr: stdout carries only the result, so `--json` output can be piped.
    print(text, file=sys.stderr, flush=True)


def options_json(options: BenchOptions) -> dict:
    """The options as JSON-ready values (for the result's ``corpus`` and ``settings``)."""
    body = asdict(options)
    body["shared_media"] = str(options.shared_media) if options.shared_media else None
    return body
