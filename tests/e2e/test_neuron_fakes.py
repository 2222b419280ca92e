"""The neuron path end to end against contract fakes of the Neuron SDK 2.25 (tests/neuron_fakes).

`modfleet compile` and `modfleet worker --backend neuron` run as subprocesses with the fakes on
PYTHONPATH, on a synthetic LLaVA-NeXT-Video checkpoint, over the demo corpus on the embedded AWS
stack; the torch backend's worker runs over the same videos and the verdicts are compared.  Not
Neuron hardware: what this proves is that modfleet drives the SDK's documented interfaces
(signatures, buckets, cache ids, layouts) in a way that reproduces the reference model.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from model.synthetic import build_checkpoint
from tests.helpers import ROOT, modfleet, queue_depth, read_verdicts, upload, worker_command
from tools.sample_videos import write_demo_set
from worker.verdict import validate

pytestmark = pytest.mark.slow
FAKES = ROOT / "tests" / "neuron_fakes"
MODEL = ["--frames-per-video", "4", "--frame-size", "56", "--max-new-tokens", "12"]


def fake_sdk_env(**extra: str) -> dict[str, str]:
    """The environment of a process that sees the fakes as the installed Neuron SDK; the runtime's
    own core setting gives it two NeuronCores (this machine has no /dev/neuron*)."""
    path = os.pathsep.join(p for p in (str(FAKES), os.environ.get("PYTHONPATH", "")) if p)
    return dict(os.environ, PYTHONPATH=path, PYTHONUNBUFFERED="1",
                NEURON_RT_VISIBLE_CORES="0-1", **extra)


@pytest.fixture(scope="module")
def llava(tmp_path_factory):
    """The tiny synthetic LLaVA-NeXT-Video checkpoint and a policy whose thresholds fall inside
    its (random-weight) score range, so that labels and all three decisions occur."""
    root = tmp_path_factory.mktemp("llava")
    checkpoint = build_checkpoint(root / "tiny-llava", "tiny", "llava_next_video")
    policy = json.loads((ROOT / "model" / "policies" / "default.json").read_text())
    for category in policy["categories"]:
        category["review"], category["block"] = 21, 24
    policy_path = root / "policy.json"
    policy_path.write_text(json.dumps(policy))
    return checkpoint, policy_path, write_demo_set(root / "demo")


def run_ok(command: list[str], env: dict[str, str], timeout: float = 300):
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def verdicts_of(stack, videos, prefix: str, command: list[str], env) -> dict[str, dict]:
    for path in videos:
        upload(stack, path, f"{prefix}/{path.name}")
    run_ok(command, env)
    got = read_verdicts(stack, expect_at_least=len(videos))
    assert queue_depth(stack) == 0
    for verdict in got:
        verdict.pop("_attributes")
        validate(verdict)
    return {v["video"]["key"].split("/", 1)[1]: v for v in got}


@pytest.mark.parametrize("mode, batch_size", [("score", 4), ("generate", 1)])
def test_neuron_worker_on_fakes_matches_torch(stack, llava, tmp_path, mode, batch_size):
    checkpoint, policy, videos = llava
    model = [*MODEL, "--model-dir", str(checkpoint), "--policy-file", str(policy),
             "--batch-size", str(batch_size), "--mode", mode]
    compiled = tmp_path / "compiled"
    run_ok(modfleet("compile", "--out", str(compiled), "--tp-degree", "1", "--amp", "f32",
                    *model), fake_sdk_env())
    manifest = json.loads((compiled / "manifest.json").read_text())
    assert manifest["context_length_estimate"] >= manifest["prompt_tokens"]

    serving = [*model, "--replicas", "2", "--exit-when-idle", "3"]
    neuron = verdicts_of(stack, videos, "neuron", worker_command(
        stack, "--backend", "neuron", "--compiled-dir", str(compiled), "--tp-degree", "1",
        *serving), fake_sdk_env())
    torch = verdicts_of(stack, videos, "torch", worker_command(stack, *serving), dict(os.environ))

    assert set(neuron) == set(torch) == {p.name for p in videos}
    decisions = set()
    for name, want in torch.items():
        got = neuron[name]
        assert got["status"] == want["status"] and got["error"] == want["error"], name
        if want["status"] != "ok":  # the demo corpus holds one file that is not a video
            continue
        assert got["model"]["backend"] == "neuron" and want["model"]["backend"] == "torch"
        assert got["model"]["name"] == want["model"]["name"] == "synthetic-tiny-llava-next-video"
        assert got["decision"] == want["decision"], name
        assert [lab["name"] for lab in got["labels"]] == [lab["name"] for lab in want["labels"]]
        for a, b in zip(got["labels"], want["labels"]):
            assert abs(a["confidence"] - b["confidence"]) <= 0.5, (name, a, b)
            assert a["timestamps_ms"] == b["timestamps_ms"]
        decisions.add(want["decision"])
    assert sum(v["status"] == "ok" for v in torch.values()) >= 4
    if mode == "score":  # the lowered thresholds make the comparison cover labelled verdicts
        assert any(v["labels"] for v in torch.values()), decisions


def _hand_written_manifest(directory, **changes) -> None:
    from model import neuron_sdk
    from model.manifest import Manifest

    installed = neuron_sdk.sdk_versions()
    installed.update({"torch-neuronx": "2.7.0.2.9.9357", "neuronx-cc": "2.20.9961.0",
                      "transformers-neuronx": "0.13.1216"})  # what the fakes report
    fields = dict(arch="llava_next_video", model_name="m", model_version="v",
                  checkpoint_sha256="sha256:00", synthetic=True, batch_size=2, frames_per_video=4,
                  frame_size=56, video_tokens=16, prompt_tokens=121, n_positions=256,
                  context_length_estimate=128, tp_degree=1, quantize="none", amp="f32",
                  mode="score", max_new_tokens=48, policy_version="2026-11",
                  decoder_class="transformers_neuronx.LlamaForSampling", sdk_release="2.25.0",
                  sdk_versions=installed,
                  files={"vision": "vision.pt", "decoder": "decoder",
                         "decoder_checkpoint": "decoder-checkpoint"},
                  graphs=["context-128x2.neff", "token-128x2.neff", "token-256x2.neff"])
    Manifest(**{**fields, **changes}).write(directory)


@pytest.mark.parametrize("problem", ["versions", "missing graph"])
def test_neuron_worker_refuses_to_start_with_exit_2(stack, tmp_path, problem):
    from model import neuron_sdk

    if problem == "versions":
        recorded = {**neuron_sdk.sdk_versions(), "torch-neuronx": "2.7.0.2.9.9357",
                    "neuronx-cc": "2.20.9961.0", "transformers-neuronx": "0.13.1315"}
        _hand_written_manifest(tmp_path, sdk_versions=recorded)
    else:
        _hand_written_manifest(tmp_path)
    worker = subprocess.run(
        worker_command(stack, "--backend", "neuron", "--compiled-dir", str(tmp_path),
                       "--tp-degree", "1", "--exit-when-idle", "2"),
        cwd=ROOT, env=fake_sdk_env(), capture_output=True, text=True, timeout=120)
    assert worker.returncode == 2, worker.stderr[-2000:]
    if problem == "versions":  # both versions named
        assert "transformers-neuronx: compiled with 0.13.1315, installed 0.13.1216" in worker.stderr
    else:
        assert "compiled artifacts missing" in worker.stderr and "vision.pt" in worker.stderr


def test_doctor_runs_every_first_boot_step_on_the_fakes(tmp_path):
    done = run_ok(modfleet("doctor", "--json", "--work-dir", str(tmp_path)), fake_sdk_env())
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"] is True
    steps = {s["name"]: s for s in report["steps"]}
    assert list(steps) == ["devices", "neuron-ls", "versions", "compile", "batch"]
    assert "2 NeuronCore(s)" in steps["devices"]["detail"]
    assert "transformers-neuronx 0.13.1216" in steps["versions"]["detail"]
    assert "one batch" in steps["batch"]["detail"] and steps["batch"]["seconds"] > 0
