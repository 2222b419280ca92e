"""`modfleet bench --reuse`: the same re-upload corpus with the verdict cache off and on, in one
run, and the false-match check of the perceptual fingerprints.

The corpus: distinct originals (generated "blocks" clips, different pictures by construction, plus
../shared/media), then re-uploads of them: ``exact_share`` byte-for-byte copies under new keys and
``reencode_share`` re-encodes (half the resolution, a higher CRF).  Each phase runs two waves on one
warm replica pool, because a copy can only reuse a verdict already published: wave one the
originals, wave two the re-uploads, shuffled.  Reported per phase: ``cache_hit_share`` (verdicts
reused: exact or near-duplicate), ``model_calls_per_video`` (verdicts whose ``timings_ms`` has an
``infer``), ``host_cpu_s_per_video`` (the worker process's CPU over both waves; moto runs in its own
process) and ``videos_per_s``.

The false-match check fingerprints distinct clips (the originals, ../shared/media and hostile
mutants of them, chaos/mutants.py) with the worker's sampler and counts pairs of clips from
different sources with any two matchable frames within ``threshold`` bits (the known-content
criterion, stricter than the near-duplicate one).  A mutant is of its source clip (matching it is
right); a ``splice`` mutant joins two clips, so it is only compared with mutants of others' kinds.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from tools.lab.bench.pipeline import PipelineRun, Upload, run_backlog
from tools.lab.sample_videos import VideoSpec, transcode, write_video
from tools.ops.progress import progress_bar
from tools.ops.video_files import video_files
from worker.decode import DecodeLimits, sample_frames
from worker.exceptions import SettleWithError
from worker.fingerprints import DEFAULT_THRESHOLD, as_matrix, distances, fingerprint_frames
from worker.settings import Settings

Say = Callable[[str], None]


@dataclass(frozen=True)
class ReuseOptions:
    videos: int = 100
    exact_share: float = 0.3
    reencode_share: float = 0.2
    width: int = 640
    height: int = 360
    seconds: float = 6.0
    fps: int = 24
    mutants: int = 1000
    shared_media: Path | None = None
    seed: int = 7

    @property
    def originals(self) -> int:
        return max(1, self.videos - round(self.videos * self.exact_share)
                   - round(self.videos * self.reencode_share))


@dataclass(frozen=True)
class PhaseResult:
    videos: int
    cache_hit_share: float
    model_calls_per_video: float
    host_cpu_s_per_video: float
    videos_per_s: float
    hits_by_kind: dict[str, int]


def run_reuse(settings: Settings, options: ReuseOptions, say: Say) -> dict[str, Any]:
    """Load a warm replica pool and run ``run_reuse_bench`` on it."""
    from worker.app import WorkerService
    from worker.metrics import Metrics

    say(f"Loading {settings.replicas} replica(s) of the synthetic '{settings.synthetic_preset}' "
        f"model ...")
    with WorkerService(settings, Metrics(False, settings.region)) as service:
        return run_reuse_bench(settings, service, options, settings.cache_dir, say)


def render_lines(result: dict[str, Any]) -> list[str]:
    """The result as a few lines of text."""
    corpus, fm = result["corpus"], result["false_matches"]
    lines = [f"corpus: {corpus['originals']} originals, {corpus['exact_copies']} exact copies, "
             f"{corpus['reencodes']} re-encodes",
             f"{'':<10} {'cache_hit_share':>16} {'model_calls/video':>18} "
             f"{'host_cpu_s/video':>17} {'videos/s':>9}"]
    for name in ("cache_off", "cache_on"):
        p = result[name]
        lines.append(f"{name:<10} {p['cache_hit_share']:>16.3f} {p['model_calls_per_video']:>18.3f}"
                     f" {p['host_cpu_s_per_video']:>17.3f} {p['videos_per_s']:>9.2f}")
    lines.append(f"false matches at distance <= {fm['threshold']}: {fm['false_matches']} of "
                 f"{fm['pairs_checked']} pairs ({fm['clips']} clips, {fm['mutants_decodable']} of "
                 f"{fm['mutants']} mutants decodable)")
    return lines


def run_reuse_bench(settings: Settings, service: Any, options: ReuseOptions, cache_dir: Path,
                    say: Say) -> dict[str, Any]:
    """Both phases on ``service``'s warm pool, then the false-match check; a JSON-ready dict."""
    from tools.lab.embedded_aws import EmbeddedAwsProcess, provision

    originals, copies = build_reuse_corpus(options, cache_dir, say)
    phases = {}
    with EmbeddedAwsProcess() as aws:
        for name, cache in (("cache_off", False), ("cache_on", True)):
            stack = provision(aws.endpoint_url, settings.region,
                              name=f"reuse-{name.removeprefix('cache_')}")
            phase = settings.for_stack(stack).with_changes(
                verdict_table=stack.verdict_table if cache else None, records_bucket=None)
            say(f"Re-uploads, {name.replace('_', ' ')}: {len(originals)} originals, then "
                f"{len(copies)} re-uploads ...")
            phases[name] = asdict(_phase(phase, service, stack, originals, copies))
    say(f"False matches: distinct clips and {options.mutants} hostile mutants ...")
    return {"corpus": {"originals": len(originals), "exact_copies": sum(
        u.key.startswith("exact/") for u in copies), "reencodes": sum(
        u.key.startswith("reencode/") for u in copies), "spec": asdict(options) | {
            "shared_media": str(options.shared_media) if options.shared_media else None}},
        **phases,
        "false_matches": false_matches(_distinct_sources(originals, options),
                                       options.mutants, options.seed,
                                       DecodeLimits(settings.frames_per_video,
                                                    settings.frame_size, settings.max_duration_s,
                                                    settings.max_pixels))}


def build_reuse_corpus(options: ReuseOptions, cache_dir: Path, say: Say
                       ) -> tuple[list[Upload], list[Upload]]:
    """Originals (wave one) and re-uploads (wave two, shuffled): exact copies and re-encodes."""
    folder = Path(cache_dir).expanduser() / "bench-reuse" / (
        f"{options.width}x{options.height}-{options.seconds:g}s-{options.fps}-{options.seed}")
    folder.mkdir(parents=True, exist_ok=True)
    generated = options.originals
    real = [p for p in video_files(options.shared_media)] if options.shared_media and \
        options.shared_media.is_dir() else []
    generated = max(1, generated - len(real))
    say(f"Re-upload corpus: {generated} generated originals ({options.width}x{options.height}, "
        f"{options.seconds:g} s) under {folder}, re-encodes beside them ...")
    paths = []
    with progress_bar("encoding originals", generated) as advance:
        for index in range(generated):
            spec = VideoSpec(f"original-{index:04d}.mp4", width=options.width,
                             height=options.height, seconds=options.seconds, fps=options.fps,
                             keyframe_every_s=2.0, seed=options.seed * 100_000 + index,
                             scene="blocks")
            path = folder / spec.name
            paths.append(path if path.is_file() else write_video(spec, folder))
            advance(1)
    paths += real
    originals = [Upload(p, f"original/{i:04d}-{p.name}") for i, p in enumerate(paths)]
    rng = random.Random(options.seed)
    exact = round(options.videos * options.exact_share)
    copies = [Upload(rng.choice(paths), f"exact/{i:04d}.mp4") for i in range(exact)]
    for i in range(round(options.videos * options.reencode_share)):
        source = paths[i % len(paths)]
        target = folder / f"reencode-{source.stem}.mp4"
        if not target.is_file():
            transcode(source, target, _even(options.width // 2), _even(options.height // 2),
                      crf=32)
        copies.append(Upload(target, f"reencode/{i:04d}-{source.stem}.mp4"))
    rng.shuffle(copies)
    return originals, copies


def _phase(settings: Settings, service: Any, stack: Any, originals: list[Upload],
           copies: list[Upload]) -> PhaseResult:
    verdicts: list[dict] = []
    runs: list[PipelineRun] = []
    for wave in (originals, copies):
        with progress_bar("worker", len(wave)) as advance:
            runs.append(run_backlog(settings, service, stack, wave, advance,
                                    keep=verdicts.append))
    n = len(verdicts)
    kinds: dict[str, int] = {}
    for verdict in verdicts:
        kind = (verdict.get("cached_from") or {}).get("kind")
        if kind:
            kinds[kind] = kinds.get(kind, 0) + 1
    model_calls = sum("infer" in v["timings_ms"] for v in verdicts)
    seconds = sum(run.seconds for run in runs)
    return PhaseResult(videos=n, cache_hit_share=round(sum(kinds.values()) / max(n, 1), 3),
                       model_calls_per_video=round(model_calls / max(n, 1), 3),
                       host_cpu_s_per_video=round(sum(r.cpu_s for r in runs) / max(n, 1), 3),
                       videos_per_s=round(n / seconds, 3) if seconds else 0.0,
                       hits_by_kind=kinds)


def _distinct_sources(originals: list[Upload], options: ReuseOptions) -> list[Path]:
    return [u.path for u in originals]


def false_matches(sources: list[Path], mutant_count: int, seed: int, limits: DecodeLimits,
                  threshold: int = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Pairs of clips of different sources with two matchable frames within ``threshold``."""
    from tools.lab.chaos.mutants import mutants

    clips: list[tuple[str, str, Any]] = []  # (source, kind, hash matrix)
    for path in sources:
        clips.append((path.name, "clip", _hashes(path, limits)))
    decodable = 0
    with progress_bar("fingerprinting mutants", mutant_count) as advance:
        for mutant in mutants(sources, mutant_count, seed):
            matrix = _hashes(mutant.data, limits)
            if matrix is not None:
                decodable += 1
                clips.append((mutant.source, mutant.kind, matrix))
            advance(1)
    checked, false = 0, []
    started = time.perf_counter()
    for (src_a, kind_a, a), (src_b, kind_b, b) in itertools.combinations(clips, 2):
        if a is None or b is None or not len(a) or not len(b) or src_a == src_b:
            continue
        if "splice" in (kind_a, kind_b) and "clip" in (kind_a, kind_b):
            continue  # a splice holds another clip's tail: matching it is right
        checked += 1
        closest = int(distances(a, b).min())
        if closest <= threshold:
            false.append({"a": src_a, "a_kind": kind_a, "b": src_b, "b_kind": kind_b,
                          "distance": closest})
    return {"threshold": threshold, "clips": len(sources), "mutants": mutant_count,
            "mutants_decodable": decodable, "pairs_checked": checked,
            "false_matches": len(false), "examples": false[:10],
            "check_s": round(time.perf_counter() - started, 2)}


def _hashes(source: Path | bytes, limits: DecodeLimits):
    """The matchable frames' PDQ hashes of one file (or bytes), None when it does not decode."""
    import io

    try:
        video = sample_frames(io.BytesIO(source) if isinstance(source, bytes) else source,
                              limits)
    except SettleWithError:
        return None
    prints = fingerprint_frames(video.frames, video.timestamps_ms)
    return as_matrix([p.pdq for p in prints if p.matchable])


def _even(n: int) -> int:
    return max(2, n - n % 2)
