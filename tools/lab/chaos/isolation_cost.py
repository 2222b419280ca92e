"""What decoding in an isolated process would cost, per video, against the decode thread today.

``python -m tools.lab.chaos.isolation_cost [--frames 8 --size 224 --repeats 5]`` decodes the chaos
corpus (generated clips and ../shared/media) three ways and prints the median per video:
in-process (the worker's thread pool), through one long-lived child process (frames pickled back
over a pipe), and in a fresh child per video: what isolating the decoder would cost.
RELIABILITY.md records the result.
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tools.lab.chaos.corpus import seed_clips
from worker.decode import DecodeLimits, sample_frames

MEDIA = Path(__file__).resolve().parents[3].parent / "shared" / "media"


def _serve(conn, limits: DecodeLimits) -> None:
    while (path := conn.recv()) is not None:
        conn.send(sample_frames(path, limits))


def _median_ms(decode: Callable[[Path], object], clips: list[Path], repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        for clip in clips:
            decode(clip)
        runs.append((time.perf_counter() - started) / len(clips) * 1000)
    return statistics.median(runs)


def measure(clips: list[Path], limits: DecodeLimits, repeats: int) -> dict[str, float]:
    """Median milliseconds per video for each way of decoding."""
    context = multiprocessing.get_context("forkserver")
    results = {"in_process": _median_ms(lambda p: sample_frames(p, limits), clips, repeats)}
    parent, child = context.Pipe()
    server = context.Process(target=_serve, args=(child, limits), daemon=True)
    server.start()

    def piped(path: Path) -> object:
        parent.send(path)
        return parent.recv()

    piped(clips[0])  # the child's imports are paid once, before timing
    results["persistent_child"] = _median_ms(piped, clips, repeats)
    parent.send(None)
    server.join()
    with context.Pool(1, maxtasksperchild=1) as pool:
        results["fresh_child_per_video"] = _median_ms(
            lambda p: pool.apply(sample_frames, (p, limits)), clips, repeats)
    return {k: round(v, 1) for k, v in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    limits = DecodeLimits(args.frames, args.size, 10800.0, 4096 * 2304)
    with tempfile.TemporaryDirectory() as scratch:
        clips = seed_clips(Path(scratch), MEDIA)
        results = measure(clips, limits, args.repeats)
    print(f"{len(clips)} clips, {args.frames} frames of {args.size}px, median of "
          f"{args.repeats}: " + ", ".join(f"{k} {v} ms" for k, v in results.items()))


if __name__ == "__main__":
    main()
