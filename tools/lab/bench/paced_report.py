"""The paced-device section of BENCHMARKS.md, rendered from one `modfleet bench --json` result.

``modfleet bench --json --write-paced-section`` writes it after a run; ``python -m
tools.lab.bench.paced_report RESULT.json [BENCHMARKS.md]`` re-renders it from a saved result.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from tools.lab.bench.model_only import write_section

START, END = "<!-- paced-bench:start -->", "<!-- paced-bench:end -->"
TARGETS = {"paced_efficiency": ">= 0.95", "host_to_floor": "<= 2",
           "long_clip_bytes_fetched_ratio": "<= 0.05", "speedup_vs_baseline": ">= 10 (quiet)"}


def render_section(result: dict[str, Any], command: str) -> str:
    """Markdown between the section's markers: machine, command, the table, the stage split."""
    machine = result["machine"]
    paced = result["paced"]
    rows = [
        ("`paced_efficiency` (steady state, slow device)", "paced_efficiency"),
        ("`paced_replicas` x `paced_batch_size`", None),
        ("`paced_device_videos_per_s` (slow device's capacity)", "paced_device_videos_per_s"),
        ("`paced_videos_per_s` (achieved, steady state)", "paced_videos_per_s"),
        ("`paced_fast_videos_per_s` (fast device: the host's capacity)",
         "paced_fast_videos_per_s"),
        ("`host_cpu_s_per_video` (worker process, fast device)", "host_cpu_s_per_video"),
        ("`decode_floor_cpu_s_per_video` (one keyframe per sample)",
         "decode_floor_cpu_s_per_video"),
        ("host / floor", "host_to_floor"),
        ("sampler CPU s per video / floor", "sampler_to_floor"),
        ("`bytes_fetched_ratio` (corpus)", "bytes_fetched_ratio"),
        ("`get_requests_per_video` (corpus)", "get_requests_per_video"),
        ("`long_clip_bytes_fetched_ratio`", "long_clip_bytes_fetched_ratio"),
        ("`long_clip_get_requests_per_video`", "long_clip_get_requests_per_video"),
        ("`videos_per_s` (torch tiny, end to end)", "videos_per_s"),
        ("`speedup_vs_baseline`", "speedup_vs_baseline"),
    ]
    load = machine["load_average_at_start"]
    quiet = ("quiet, nothing else ran" if load[0] < 1 else "**the machine was shared "
             "with other jobs: every rate here is noisy**; the ratios (efficiency, host over "
             "floor, bytes ratios) move less")
    lines = [START, "## Feeding the accelerator: `modfleet bench` paced device", "",
             f"Machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; "
             f"Python {machine['python']}, PyAV {machine['pyav']} ({machine['ffmpeg']}). "
             f"Load average at the start: {', '.join(map(str, load))} (1, 5, 15 min): {quiet}.",
             "",
             f"Command: `{command}`", "",
             "| measure | value | target |", "| --- | --- | --- |"]
    for label, name in rows:
        value = (f"{result['paced_replicas']} x {result['paced_batch_size']}" if name is None
                 else f"{result[name]:g}")
        lines.append(f"| {label} | {value} | {TARGETS.get(name or '', '')} |")
    fast, slow = paced["fast_device"], paced["slow_device"]
    stages = ", ".join(f"{k} {v:g}" for k, v in result["host_cpu_s_per_video_by_stage"].items())
    long_clip = paced["long_clip"]
    lines += ["", f"- Slow device: {slow['batch_ms']:g} ms per batch, set to {paced['load']:g} x "
              f"the host's capacity measured with the fast device ({fast['batch_ms']:g} ms per "
              f"batch); steady-state window {slow['steady_window_s']:g} s of "
              f"{slow['videos']} videos.",
              f"- Host CPU s per video by stage (fast device): {stages}. While the fast "
              f"device ran, the worker used {fast['host_cpu_cores_busy']:g} cores and the "
              "embedded stack (moto, in its own process: not the host's cost) "
              f"{fast.get('stack_cpu_cores_busy', 0):g}.",
              f"- Long clip: {long_clip['spec']}, {long_clip['size']:,} bytes, "
              f"{long_clip['requests']} GETs, {long_clip['bytes']:,} bytes read.",
              *_long_gop_line(result.get("long_gop_skip_nonreference")),
              "", "Per corpus file (worker's threshold; all ranged):", "",
              "| file | bytes | GETs | bytes read | GETs, all ranged | bytes read, all ranged |",
              "| --- | --- | --- | --- | --- | --- |"]
    for row, ranged in zip(paced["fetch_by_file"], paced["fetch_by_file_all_ranged"]):
        lines.append(f"| {row['file']} | {row['size']:,} | {row['requests']} | {row['bytes']:,} "
                     f"| {ranged['requests']} | {ranged['bytes']:,} |")
    return "\n".join(lines + ["", END])


def _long_gop_line(gop: dict[str, Any] | None) -> list[str]:
    if not gop:  # a result saved before the measurement existed
        return []
    return [f"- Long GOPs ({gop['spec']}): the sampler skipping non-reference frames while it "
            f"decodes forward took {gop['skipping_cpu_s']:g} CPU s and decoded "
            f"{gop['skipping_frames_decoded']} frames; decoding every frame on the way, "
            f"{gop['decoding_all_cpu_s']:g} s and {gop['decoding_all_frames_decoded']} frames "
            f"({gop['speedup']:g}x). The worker skips them."]


def main(argv: list[str]) -> int:
    """``python -m tools.lab.bench.paced_report RESULT.json [BENCHMARKS.md]``."""
    result = json.loads(Path(argv[0]).read_text())
    target = Path(argv[1]) if len(argv) > 1 else Path("BENCHMARKS.md")
    command = result.get("command", "modfleet bench --json --write-paced-section")
    write_section(target, render_section(result, command))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
