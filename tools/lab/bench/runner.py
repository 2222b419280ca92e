"""One benchmark run, stage by stage; see tools.lab.bench.e2e for the order and why."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from model.api import Clip
from tools.lab.bench.corpus import CorpusVideo, build_corpus
from tools.lab.bench.decoding import DecodeComparison, compare_decoding, sample_keyframes
from tools.lab.bench.e2e import BenchOptions, options_json
from tools.lab.bench.machine import describe_machine
from tools.lab.bench.model_only import ModelOnlyResult, measure_model_only
from tools.lab.bench.naive import NaiveResult, NaiveWorker
from tools.lab.bench.pipeline import PipelineRun, Upload, run_backlog, run_paced
from tools.lab.bench.results import BenchResult, percentile
from tools.ops.progress import progress_bar
from worker.decode import DecodeLimits
from worker.settings import Settings, decode_limits, model_config

Say = Callable[[str], None]
SETTINGS_SHOWN = ("synthetic_preset", "backend", "device", "quantize", "mode", "batch_size",
                  "replicas", "frames_per_video", "frame_size", "batch_wait_ms", "decode_threads",
                  "in_flight_limit", "max_messages")


def run_bench(settings: Settings, options: BenchOptions, say: Say) -> BenchResult:
    """Every measurement of the end-to-end bench on one corpus and one model; returns the result."""
    machine = describe_machine()  # first, so the load average is the one the run started with
    corpus = _corpus(settings, options, say)
    limits = decode_limits(settings)
    decode, clips = _decode(corpus, limits, say)
    keyframe_s = _keyframe_seconds(corpus, limits)
    worker = _worker_phases(settings, options, corpus, clips, say)
    paced = _paced_phases(settings, options, corpus, limits, say)
    baseline = _baseline(settings, options, corpus, say)
    throughput, latency = worker["throughput"], worker["latency"]
    best_model = max(worker["model_only"], key=lambda run: run.videos_per_s)
    return BenchResult(
        videos_per_s=throughput.videos_per_s,
        frames_per_s=throughput.videos_per_s * settings.frames_per_video,
        baseline_videos_per_s=baseline.videos_per_s,
        model_only_videos_per_s=best_model.videos_per_s,
        model_only_runs=tuple(run.videos_per_s for run in worker["model_only"]),
        decode_speedup=decode.speedup,
        keyframe_decode_speedup=decode.every_frame_s / keyframe_s,
        latency_p50_s=percentile(latency.latencies_s, 50),
        latency_p95_s=percentile(latency.latencies_s, 95),
        stage_ms=throughput.stage_ms,
        details=_details(settings, options, corpus, decode, throughput, latency, baseline,
                         worker, best_model, machine) | paced)


def _corpus(settings: Settings, options: BenchOptions, say: Say) -> list[CorpusVideo]:
    say(f"Corpus: {options.corpus.describe()}, {options.corpus.distinct} clip(s), cached under "
        f"{settings.cache_dir}/bench-corpus/{options.corpus.key} (encoded once).")
    with progress_bar("encoding corpus", options.corpus.distinct) as advance:
        return build_corpus(options.corpus, settings.cache_dir, options.shared_media,
                            on_encoded=lambda path: advance(1))


def _decode(corpus: list[CorpusVideo], limits: DecodeLimits,
            say: Say) -> tuple[DecodeComparison, list[Clip]]:
    say("Decoding the corpus both ways: sampled seeking (the worker) and every frame ...")
    with progress_bar("decode comparison", len(corpus)) as advance:
        comparison, sampled = compare_decoding([v.path for v in corpus], limits, advance)
    clips = [Clip(v.frames, v.timestamps_ms, str(video.path.name))
             for v, video in zip(sampled, corpus)]
    return comparison, clips


def _keyframe_seconds(corpus: list[CorpusVideo], limits: DecodeLimits) -> float:
    started = time.perf_counter()
    for video in corpus:
        sample_keyframes(video.path, limits)
    return time.perf_counter() - started


def _uploads(corpus: list[CorpusVideo], count: int, prefix: str) -> list[Upload]:
    return [Upload(corpus[i % len(corpus)].path,
                   f"{prefix}/{i:04d}-{corpus[i % len(corpus)].path.name}") for i in range(count)]


def _worker_phases(settings: Settings, options: BenchOptions, corpus: list[CorpusVideo],
                   clips: list[Clip], say: Say) -> dict[str, Any]:
    from tools.lab.embedded_aws import EmbeddedAwsProcess, provision

    with EmbeddedAwsProcess() as aws:  # its own process: the worker's CPU is measured alone
        stack = provision(aws.endpoint_url, settings.region, name="bench")
        settings = settings.for_stack(stack)
        with _service(settings, options, say) as service:
            return _measure_pool_and_worker(settings, options, corpus, clips, service, stack, say)


def _paced_phases(settings: Settings, options: BenchOptions, corpus: list[CorpusVideo],
                  limits: DecodeLimits, say: Say) -> dict[str, Any]:
    """The paced device in two regimes, the decode floor, and the bytes and requests fetched."""
    from tools.lab.bench import paced
    from tools.lab.bench.corpus import build_long_clip, long_gop_spec
    from tools.lab.bench.decoding import floor_cpu_s, skip_nonreference_cpu_s
    from tools.lab.embedded_aws import EmbeddedAwsProcess, provision

    say(f"Long clip: {options.long_clip.describe()} (built once, cached) ...")
    long_path = build_long_clip(options.long_clip, settings.cache_dir)
    say("Decode floor: one keyframe per sample, against the sampler, per corpus file ...")
    floors = floor_cpu_s([v.path for v in corpus], limits)
    gop = long_gop_spec(options.corpus)
    say(f"Long GOPs: {gop.describe()}; the sampler with and without non-reference frames ...")
    long_gop = skip_nonreference_cpu_s(build_corpus(gop, settings.cache_dir)[0].path, limits)
    long_gop["spec"] = gop.describe()
    opts = options.paced
    with EmbeddedAwsProcess() as aws:
        stack = provision(aws.endpoint_url, settings.region, name="paced")
        bucket, objects = paced.store_objects(stack, [v.path for v in corpus] + [long_path])
        say(f"Paced device, fast ({opts.fast_batch_ms:g} ms a batch): {opts.videos} videos, "
            f"{opts.replicas} replicas x batch {opts.batch_size} ...")
        fast = paced.run_regime(settings, opts, stack, bucket, objects[:-1], opts.fast_batch_ms,
                                aws.cpu_s)
        rate = opts.load * fast["host_videos_per_s"]
        batch_ms = opts.slow_batch_ms or 1000 * opts.replicas * opts.batch_size / rate
        rate = 1000 * opts.replicas * opts.batch_size / batch_ms
        say(f"Paced device, slow: {rate:.2f} videos/s ({batch_ms:.0f} ms a batch); the host "
            f"did {fast['host_videos_per_s']:.2f} ...")
        slow = paced.run_regime(settings, opts, stack, bucket, objects[:-1], batch_ms, aws.cpu_s)
        say("Bytes and GET requests per object: the worker's threshold, all ranged, long clip ...")
        corpus_fetch = paced.measure_fetching(settings, stack, bucket, objects[:-1],
                                              settings.ranged_min_bytes)
        all_ranged = paced.measure_fetching(settings, stack, bucket, objects[:-1], 0)
        long_fetch = paced.measure_fetching(settings, stack, bucket, objects[-1:],
                                            settings.ranged_min_bytes)
    return paced.summarise(opts, fast, slow, floors, corpus_fetch, all_ranged, long_fetch,
                           options.long_clip.describe()) | {"long_gop_skip_nonreference": long_gop}


def _slots(settings: Settings, options: BenchOptions) -> list:
    """The worker's device plan, with --torch-threads applied (the baseline gets the same)."""
    from model.api import DeviceSlot
    from model.devices import plan_slots

    slots = plan_slots(model_config(settings))
    if options.torch_threads:
        slots = [DeviceSlot(s.index, s.kind, s.device, options.torch_threads, s.neuron_cores)
                 for s in slots]
    return slots


def _service(settings: Settings, options: BenchOptions, say: Say):
    from worker.app import WorkerService
    from worker.metrics import Metrics
    from worker.replicas import ReplicaPool

    slots = _slots(settings, options)
    say(f"Loading {settings.replicas} replica(s) of the synthetic '{settings.synthetic_preset}' "
        f"model (torch threads per replica: {[s.cpu_threads for s in slots]}) ...")
    return WorkerService(settings, Metrics(False, settings.region),
                         pool=ReplicaPool(settings, slots=slots))


def _measure_pool_and_worker(settings, options, corpus, clips, service, stack,
                             say: Say) -> dict[str, Any]:
    batch, pool = settings.batch_size, service.pool
    # Untimed: the first real batches after the padding warm-up are slow (allocator, kernels).
    measure_model_only(pool, clips, 2 * batch * settings.replicas, batch)
    say("Model only: the replica pool fed pre-decoded clips in full batches ...")
    model_only = [measure_model_only(pool, clips, options.videos, batch)]
    say(f"End to end: {options.videos} uploads, then the worker drains the queue ...")
    with progress_bar("worker: backlog", options.videos) as advance:
        throughput = run_backlog(settings, service, stack,
                                 _uploads(corpus, options.videos, "bench/backlog"), advance)
    model_only.append(measure_model_only(pool, clips, options.videos, batch))
    interval = 1 / (options.latency_load * throughput.videos_per_s)
    say(f"Latency: {options.latency_videos} uploads, one every {interval:.2f} s ...")
    # Idle between two paced uploads must not read as "the queue is drained".
    idle_s = max(settings.exit_when_idle_s, 1.5 * interval + 1)
    paced = settings.with_changes(exit_when_idle_s=idle_s)
    with progress_bar("worker: paced", options.latency_videos) as advance:
        latency = run_paced(paced, service, stack,
                            _uploads(corpus, options.latency_videos, "bench/paced"), interval,
                            advance)
    return {"model_only": model_only, "throughput": throughput, "latency": latency,
            "identity": asdict(pool.identity),
            "torch_threads": [replica.slot.cpu_threads for replica in pool.replicas]}


def _baseline(settings: Settings, options: BenchOptions, corpus: list[CorpusVideo],
              say: Say) -> NaiveResult:
    from model.registry import create_backend
    from worker.aws import boto3_client
    from tools.lab.embedded_aws import EmbeddedAwsProcess, provision

    naive_settings = settings.with_changes(batch_size=1, replicas=1)
    backend = create_backend(model_config(naive_settings), _slots(naive_settings, options)[0])
    backend.load()
    backend.warm_up()
    with EmbeddedAwsProcess() as aws:
        stack = provision(aws.endpoint_url, settings.region, name="naive")
        clients = {name: boto3_client(name, stack.region, stack.endpoint_url)
                   for name in ("sqs", "s3", "sns")}
        uploads = _uploads(corpus, options.baseline_videos, "bench/naive")
        for upload in uploads:
            clients["s3"].upload_file(str(upload.path), stack.bucket, upload.key)
        say(f"Naive baseline: {len(uploads)} videos, one at a time ...")
        worker = NaiveWorker(backend, clients["sqs"], clients["s3"], clients["sns"],
                             stack.queue_url, stack.topic_arn, settings.frames_per_video,
                             settings.frame_size)
        with progress_bar("naive worker", len(uploads)) as advance:
            result = worker.run(len(uploads), advance)
    backend.shutdown()
    return result


def _details(settings: Settings, options: BenchOptions, corpus: list[CorpusVideo],
             decode: DecodeComparison, throughput: PipelineRun, latency: PipelineRun,
             baseline: NaiveResult, worker: dict, model: ModelOnlyResult,
             machine: dict) -> dict[str, Any]:
    origins = {o: sum(v.origin == o for v in corpus) for o in ("generated", "shared-media")}
    return {
        "videos": throughput.videos, "errors": throughput.errors,
        "worker_seconds": round(throughput.seconds, 3), "worker_messages": throughput.messages,
        "baseline_videos": baseline.videos, "baseline_seconds": round(baseline.seconds, 3),
        "latency_videos": len(latency.latencies_s),
        "cpu_s_per_video": _cpu_budget(decode, throughput, model),
        "decode": {"videos": decode.videos, "sampled_s": round(decode.sampled_s, 3),
                   "every_frame_s": round(decode.every_frame_s, 3),
                   "sampled_frames_decoded": decode.sampled_frames_decoded,
                   "every_frame_frames_decoded": decode.every_frame_frames_decoded},
        "corpus": {"generated": options.corpus.describe(), "files": origins,
                   "bytes": sum(v.size_bytes for v in corpus),
                   "spec": asdict(options.corpus)},
        "model": worker["identity"], "synthetic": worker["identity"]["synthetic"],
        "settings": {name: getattr(settings, name) for name in SETTINGS_SHOWN}
        | {"torch_threads_per_replica": worker["torch_threads"]},
        "options": options_json(options), "machine": machine,
    }


def _cpu_budget(decode: DecodeComparison, throughput: PipelineRun,
                model: ModelOnlyResult) -> dict[str, float]:
    """Process CPU seconds per video: where the worker run's CPU went, by difference.

    ``other`` is the worker run's total less sampled decoding (corpus average) and the model (its
    own run): the aiobotocore clients (moto runs in its own process), the event loop.
    """
    total = throughput.cpu_s / max(1, throughput.videos + throughput.errors)
    sampled = decode.sampled_cpu_s / decode.videos
    infer = model.cpu_s / model.videos
    return {"worker_total": round(total, 3), "decode_sampled": round(sampled, 3),
            "model": round(infer, 3), "other": round(total - sampled - infer, 3),
            "decode_every_frame": round(decode.every_frame_cpu_s / decode.videos, 3)}
