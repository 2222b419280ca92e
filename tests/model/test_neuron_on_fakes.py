"""The Neuron path in this process against the strict contract fakes of SDK 2.25 (the
``neuron_fakes`` fixture): the prefill call path, artifacts that must match the configuration,
versions with local labels, missing weights, NeuronCore ownership.  Every rule of the fakes cites
its source in tests/neuron_fakes/README.md."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from model.api import Batch
from model.compile import compile_artifacts, decoder_class, decoder_kwargs
from model.config import ModelConfig
from model.devices import plan_slots
from model.exceptions import ManifestMismatch
from model.manifest import check_versions, read_manifest
from model.registry import create_backend

pytestmark = pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")


def _config(llava_checkpoint, tmp_path, **changes) -> ModelConfig:
    return ModelConfig(backend="neuron", model_dir=llava_checkpoint,
                       compiled_dir=tmp_path / "compiled", frames_per_video=4, frame_size=56,
                       **{"batch_size": 2, "tp_degree": 1, "max_new_tokens": 10, **changes})


def _runtime(config: ModelConfig):
    from model.neuron_runtime import NeuronRuntime

    compile_artifacts(config, config.compiled_dir, amp="f32")
    runtime = NeuronRuntime(config)
    runtime.load()
    return runtime


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_prefill_goes_through_the_call_path_tnx_itself_uses(neuron_fakes, llava_checkpoint,
                                                            make_clip, tmp_path, mode):
    """Finding 2: the prompt's context graph gets all six inputs it declares, and the result is
    the torch backend's (scores within 0.5 points; the same greedy tokens)."""
    config = _config(llava_checkpoint, tmp_path, mode=mode)
    runtime = _runtime(config)
    clips = (make_clip(1), make_clip(2))
    outputs = runtime.infer(Batch(rows=clips))
    context = runtime.decoder.decoder_lm_head_for_context
    assert [graph.calls for graph in context.values()] == [1]  # the whole prompt in one call

    torch_config = ModelConfig(model_dir=llava_checkpoint, frames_per_video=4, frame_size=56,
                               batch_size=2, max_new_tokens=10, mode=mode)
    reference = create_backend(torch_config, plan_slots(torch_config)[0])
    reference.load()
    want = reference.infer(Batch(rows=clips))
    for got, expected in zip(outputs, want):
        assert got.decision == expected.decision
        assert [lab.name for lab in got.labels] == [lab.name for lab in expected.labels]
        for a, b in zip(got.labels, expected.labels):
            assert abs(a.confidence - b.confidence) <= 0.5
        if mode == "generate":
            assert got.reason == expected.reason and got.tokens_generated > 0


def test_a_graph_refuses_inputs_it_does_not_declare(neuron_fakes, llava_checkpoint, tmp_path):
    import torch

    runtime = _runtime(_config(llava_checkpoint, tmp_path))
    decoder = runtime.decoder
    ids = torch.ones(2, 100, dtype=torch.long)  # padded to its bucket
    padded, embeds, cache_ids, start_ids, last_token_id, *rest = \
        decoder.preprocess_and_embed(ids)
    (graph,) = decoder.decoder_lm_head_for_context.values()
    with pytest.raises(RuntimeError, match="declares 6 parameters .* given 4 inputs"):
        graph(embeds, cache_ids, start_ids, last_token_id)
    with pytest.raises(RuntimeError, match=r"parameter cache_ids is \[\d+\], got \[3\]"):
        graph(embeds, cache_ids[:3], start_ids, last_token_id, *rest)
    with pytest.raises(RuntimeError, match="parameter hidden is amp floating, got torch.int64"):
        graph(embeds.long(), cache_ids, start_ids, last_token_id, *rest)
    assert graph(embeds, cache_ids, start_ids, last_token_id, *rest).shape[1:] == \
        (cache_ids.shape[0], 2)


def test_saved_graphs_load_only_for_the_configuration_they_were_compiled_for(
        neuron_fakes, llava_checkpoint, tmp_path):
    config = _config(llava_checkpoint, tmp_path)
    compile_artifacts(config, config.compiled_dir, amp="f32")
    manifest = read_manifest(config.compiled_dir)
    text_dir = str(config.compiled_dir / manifest.files["decoder_checkpoint"])
    decoder = decoder_class().from_pretrained(text_dir, **decoder_kwargs(
        config.with_changes(batch_size=4), manifest.n_positions,
        manifest.context_length_estimate, manifest.amp, manifest.mode))
    decoder.load(str(config.compiled_dir / manifest.files["decoder"]))
    with pytest.raises(FileNotFoundError, match="Could not find a matching NEFF for your HLO"):
        decoder.to_neuron()


def test_missing_weights_fail_instead_of_being_filled_at_random(neuron_fakes, llava_checkpoint,
                                                                tmp_path):
    from safetensors.torch import load_file, save_file

    config = _config(llava_checkpoint, tmp_path)
    compile_artifacts(config, config.compiled_dir, amp="f32")
    manifest = read_manifest(config.compiled_dir)
    weights = config.compiled_dir / manifest.files["decoder_checkpoint"] / "model.safetensors"
    tensors = load_file(weights)
    del tensors["model.layers.0.mlp.down_proj.weight"]
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(FileNotFoundError, match="Could not find a weight for "
                                                "model.layers.0.mlp.down_proj.weight"):
        _runtime_without_compile(config)


def _runtime_without_compile(config):
    from model.neuron_runtime import NeuronRuntime

    runtime = NeuronRuntime(config)
    runtime.load()
    return runtime


def test_versions_with_local_labels_match_their_manifest_and_pins(neuron_fakes, llava_checkpoint,
                                                                  tmp_path):
    from model import neuron_sdk

    installed = neuron_sdk.sdk_versions()
    assert installed["torch-neuronx"] == "2.7.0.2.9.9357+08e1f40d"  # as the wheel reports it
    # This environment's transformers is not the SDK's 4.47.1 (`make test-neuron-env` has it).
    assert [d for d in neuron_sdk.pin_drift(installed) if not d.startswith("transformers:")] == []
    config = _config(llava_checkpoint, tmp_path)
    manifest = compile_artifacts(config, config.compiled_dir, amp="f32")
    assert manifest.sdk_versions["torch-neuronx"] == "2.7.0.2.9.9357+08e1f40d"
    check_versions(manifest, installed)
    rebuilt = {**installed, "torch-neuronx": "2.7.0.2.9.9357+0acef03a"}
    with pytest.raises(ManifestMismatch, match=r"torch-neuronx: compiled with "
                                               r"2\.7\.0\.2\.9\.9357\+08e1f40d, installed "
                                               r"2\.7\.0\.2\.9\.9357\+0acef03a"):
        check_versions(manifest, rebuilt)
    drifted = {**installed, "torch-neuronx": "2.7.0.2.9.10000+08e1f40d", "transformers": "4.47.1"}
    assert neuron_sdk.pin_drift(drifted) == [
        "torch-neuronx: pinned 2.7.0.2.9.9357, installed 2.7.0.2.9.10000+08e1f40d"]


OTHER_PROCESS = """
import sys
sys.path.insert(0, sys.argv[1])
import transformers_neuronx  # noqa: F401  (the SDK importable, as on the instance)
import fake_nrt
try:
    fake_nrt.claim()
except RuntimeError as exc:
    print(exc)
    sys.exit(1)
print("claimed")
"""


def test_a_process_owns_the_neuron_cores_it_loaded_onto_until_it_exits(neuron_fakes,
                                                                       llava_checkpoint,
                                                                       tmp_path):
    import fake_nrt

    def other(cores: str):
        env = {"NEURON_RT_VISIBLE_CORES": cores, "PATH": "/usr/bin:/bin",
               "MODFLEET_FAKE_NEURON_DIR": str(tmp_path / "neuron-devices")}
        return subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(neuron_fakes)],
                              env=env, capture_output=True, text=True, timeout=120)

    assert other("0-1").stdout.strip() == "claimed"  # free while nobody has loaded
    compile_artifacts(_config(llava_checkpoint, tmp_path), tmp_path / "compiled", amp="f32")
    assert fake_nrt.owned()  # tracing and compiling loaded onto this process's cores
    refused = other("1")
    assert refused.returncode == 1
    assert "NeuronCore(s) not available - Requested:nc1-nc1 Available:0" in refused.stdout
    fake_nrt.release()  # nrt_close
    assert other("1").stdout.strip() == "claimed"


def test_the_fakes_readme_cites_a_source_for_every_rule():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "neuron_fakes" / "README.md").read_text()
    for cited in ("nrt-api-guide.rst:1036-1039", "nrt-troubleshoot.rst:140-150",
                  "layers/transformer.py:76-133", "base.py:765-797", "module.py:63-85",
                  "Dockerfile.neuronx:157"):
        assert cited in readme, cited


def test_a_replica_process_that_died_is_lost_not_a_batch_to_retry(neuron_fakes, llava_checkpoint,
                                                                   make_clip, tmp_path):
    """Finding 4, the model side: a dead replica process makes every later call fail at once
    with BackendLost (the replica thread then dies and the worker exits), never RetryBatch."""
    import os
    import signal

    from model.exceptions import BackendLost
    from model.neuron_backend import NeuronBackend, host_threads

    config = _config(llava_checkpoint, tmp_path, batch_size=1)
    compile_artifacts(config, config.compiled_dir, amp="f32")
    import fake_nrt

    fake_nrt.release()  # the compile's cores, given back before the replica process asks
    backend = NeuronBackend(config, plan_slots(config)[0])
    backend.load()
    try:
        assert backend.infer(Batch(rows=(make_clip(1),)))[0].decision
        # The replica process runs its host work on its share of the CPUs (OMP/torch threads).
        assert backend.stats["host_threads"] == host_threads(config)
        assert backend.stats["rows"] == 1 and backend.stats["score_d2h_bytes_per_batch"] > 0
        os.kill(backend.pid, signal.SIGKILL)
        for _ in range(2):
            with pytest.raises(BackendLost, match=r"neuron replica 0 process \(pid \d+\) died, "
                                                  r"exit code -9"):
                backend.infer(Batch(rows=(make_clip(2),)))
    finally:
        backend.shutdown()


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_only_the_graphs_a_batch_uses_are_compiled_and_listed(neuron_fakes, llava_checkpoint,
                                                              make_clip, tmp_path, mode):
    config = _config(llava_checkpoint, tmp_path, mode=mode)
    runtime = _runtime(config)
    manifest = runtime.manifest
    prompt = manifest.prompt_tokens
    if mode == "score":  # no generated tokens: the prompt is the context bucket and the cache
        assert manifest.buckets == {"context": [prompt], "token": [prompt]}
    else:  # one token graph for the whole sequence, not one per power of two from 128
        assert manifest.buckets == {"context": [manifest.context_length_estimate],
                                    "token": [manifest.n_positions]}
        assert manifest.n_positions >= prompt + config.max_new_tokens
    decoder_dir = config.compiled_dir / manifest.files["decoder"]
    assert sorted(p.name for p in decoder_dir.iterdir()) == manifest.graphs
    assert len(manifest.graphs) == 2  # one context graph, one token graph

    runtime.infer(Batch(rows=(make_clip(1), None)))
    (context,) = runtime.decoder.decoder_lm_head_for_context.values()
    token = runtime.decoder.decoder_lm_head
    assert context.calls == 1 and (token.calls == 0) == (mode == "score")


def test_score_batches_bring_back_the_prompts_logits_only(neuron_fakes, llava_checkpoint,
                                                          make_clip, tmp_path):
    """Score mode's device-to-host bytes: the logits of the prompt's positions, in the compute
    dtype, as the fakes' graphs measure them; TNx 0.13 cannot return fewer (see
    model.compile.score_d2h_bytes), so the context bucket is the prompt itself."""
    config = _config(llava_checkpoint, tmp_path)
    runtime = _runtime(config)
    runtime.infer(Batch(rows=(make_clip(1), make_clip(2))))
    (context,) = runtime.decoder.decoder_lm_head_for_context.values()
    manifest = runtime.manifest
    vocab = -(-runtime.vocab_size // manifest.tp_degree) * manifest.tp_degree
    assert runtime.stats["score_d2h_bytes_per_batch"] == context.d2h_bytes == \
        vocab * manifest.prompt_tokens * config.batch_size * 4  # f32 here


def test_the_split_checkpoint_is_written_in_the_compute_dtype(neuron_fakes, llava_checkpoint,
                                                              tmp_path):
    from safetensors import safe_open

    config = _config(llava_checkpoint, tmp_path)
    manifest = compile_artifacts(config, config.compiled_dir, amp="bf16")
    text_dir = config.compiled_dir / manifest.files["decoder_checkpoint"]
    with safe_open(str(text_dir / "model.safetensors"), framework="pt") as weights:
        dtypes = {str(weights.get_tensor(k).dtype) for k in weights.keys()}
    assert dtypes == {"torch.bfloat16"}
    assert json.loads((text_dir / "config.json").read_text())["torch_dtype"] == "bfloat16"
