"""`modfleet doctor`: the first-boot check of a Neuron instance, before a fleet rolls out."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

NAME = "doctor"
HELP = ("First-boot smoke check for an Inf2 instance: NeuronCores, `neuron-ls`, installed Neuron "
        "SDK versions against the pins (and a manifest's), compile the tiny synthetic "
        "LLaVA-NeXT-Video, run one batch on the neuron backend, report timings. Exit 0 when every "
        "step passes, 2 otherwise. Run it on one inf2.xlarge before rolling out.")


def register(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--compiled-dir", type=Path, default=None,
                        help="Also check these artifacts' manifest against the installed SDK.")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="Where to compile the tiny preset (default: a temporary directory).")
    parser.add_argument("--tp-degree", type=int, default=2,
                        help="NeuronCores for the smoke model (default 2, an inf2.xlarge's).")
    parser.add_argument("--json", action="store_true", help="Print one JSON object.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    report: dict = {"steps": []}
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="modfleet-doctor-"))
    ok = all(_step(report, name, check) for name, check in (
        ("devices", _devices),
        ("neuron-ls", _neuron_ls),
        ("versions", lambda: _versions(args.compiled_dir)),
        ("compile", lambda: _compile(work, args.tp_degree)),
        ("batch", lambda: _batch(work, args.tp_degree)),
    ))
    report["ok"] = ok
    failed = [step["name"] for step in report["steps"] if not step["ok"]]
    report["verdict"] = ("ready: this instance runs the neuron backend" if ok else
                         f"not ready: the {failed[0] if failed else 'first'} step failed")
    if args.json:
        print(json.dumps(report))
    else:
        for step in report["steps"]:
            mark = "ok  " if step["ok"] else "FAIL"
            print(f"{mark} {step['name']:<9} {step['seconds']:7.2f} s  {step['detail']}")
        print(report["verdict"])
    return 0 if ok else 2


def _step(report: dict, name: str, check) -> bool:
    started = time.perf_counter()
    try:
        detail, ok = check(), True
    except Exception as exc:  # reported, not raised: the operator wants every step's outcome
        detail, ok = f"{type(exc).__name__}: {exc}", False
    report["steps"].append({"name": name, "ok": ok, "detail": detail,
                            "seconds": round(time.perf_counter() - started, 3)})
    return ok


def _devices() -> str:
    from model.devices import visible_neuron_cores

    cores, first = visible_neuron_cores()
    if cores < 1:
        raise RuntimeError("no NeuronCores: no /dev/neuron* and no NEURON_RT_VISIBLE_CORES")
    # The driver's package installs KERNEL=="neuron*", MODE="0666" (aws-neuron/aws-neuron-driver
    # fca19f7 preinstall:1, README.md:97-100); without it the non-root worker cannot open them.
    denied = [str(p) for p in sorted(Path("/dev").glob("neuron[0-9]*"))
              if not os.access(p, os.R_OK | os.W_OK)]
    if denied:
        raise RuntimeError(f"this user cannot open {', '.join(denied)}: add the udev rule "
                           f"KERNEL==\"neuron*\", MODE=\"0666\" (aws-neuronx-dkms installs it)")
    return f"{cores} NeuronCore(s) from {first}"


def _neuron_ls() -> str:
    if shutil.which("neuron-ls") is None:
        return "neuron-ls not installed (aws-neuronx-tools); skipped"
    done = subprocess.run(["neuron-ls", "--json-output"], capture_output=True, text=True,
                          timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"neuron-ls exited {done.returncode}: {done.stderr.strip()[:300]}")
    return f"{len(json.loads(done.stdout or '[]'))} Neuron device(s)"


def _versions(compiled_dir: Path | None) -> str:
    from model import neuron_sdk
    from model.manifest import check_versions, read_manifest

    neuron_sdk.require("modfleet doctor")
    installed = neuron_sdk.sdk_versions()
    drift = neuron_sdk.pin_drift(installed)
    if compiled_dir is not None:
        check_versions(read_manifest(compiled_dir), installed)
    summary = ", ".join(f"{k} {v}" for k, v in installed.items())
    return summary + (f"; differs from SDK {neuron_sdk.SDK_RELEASE} pins: {'; '.join(drift)}"
                      if drift else f"; matches SDK {neuron_sdk.SDK_RELEASE}")


def _config(work: Path, tp_degree: int):
    from model.config import ModelConfig

    return ModelConfig(backend="neuron", compiled_dir=work / "compiled", cache_dir=work / "cache",
                       synthetic_arch="llava_next_video", synthetic_preset="tiny",
                       frames_per_video=4, frame_size=56, batch_size=1, tp_degree=tp_degree,
                       max_new_tokens=8)


def _compile(work: Path, tp_degree: int) -> str:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    # Tracing and compiling load onto NeuronCores, which the loading process owns until it exits
    # (aws-neuron-sdk e52d322c neuron-runtime/nrt-api-guide.rst:1036-1039); compiled here, the
    # batch step's replica process would get "NeuronCore(s) not available"
    # (nrt-troubleshoot.rst:140-150).  So the compile runs in a process that exits first.
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        graphs = pool.submit(compile_tiny, work, tp_degree).result()
    return (f"tiny LLaVA-NeXT-Video (synthetic) into {work / 'compiled'}, in a child process: "
            f"{graphs} decoder graph(s)")


def compile_tiny(work: Path, tp_degree: int) -> int:
    """In the compile step's child: compile the tiny preset; the number of decoder graphs."""
    from model.compile import compile_artifacts

    return len(compile_artifacts(_config(work, tp_degree), work / "compiled").graphs)


def _batch(work: Path, tp_degree: int) -> str:
    import numpy as np

    from model.api import Batch, Clip
    from model.devices import plan_slots
    from model.neuron_backend import NeuronBackend

    config = _config(work, tp_degree)
    backend = NeuronBackend(config, plan_slots(config)[0])
    n, s = config.frames_per_video, config.frame_size
    clip = Clip(np.zeros((n, s, s, 3), np.uint8), tuple(250 * i for i in range(n)), "doctor")
    started = time.perf_counter()
    try:  # a failed step still stops the replica's child process
        backend.load()
        loaded = time.perf_counter()
        backend.warm_up()
        warm = time.perf_counter()
        out = backend.infer(Batch(rows=(clip,)))[0]
        done = time.perf_counter()
    finally:
        backend.shutdown()
    return (f"load {loaded - started:.2f} s, warm-up {warm - loaded:.2f} s, one batch "
            f"{done - warm:.3f} s (decision {out.decision}; synthetic weights)")
