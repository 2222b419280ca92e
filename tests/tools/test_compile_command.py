"""`modfleet compile` refusing what cannot run on Neuron, without the SDK: the package and index to
install it from, and Qwen2-VL with the reason and what to use instead (run under the SDK's
transformers too: `make test-neuron-env`)."""

import json

import pytest

from model import neuron_sdk
from tools.ops.cli import main

without_sdk = pytest.mark.skipif(not neuron_sdk.missing(),
                                 reason="the Neuron SDK is installed here")


@without_sdk
def test_compile_without_sdk_names_the_package_and_index(tmp_path, capsys):
    assert main(["compile", "--out", str(tmp_path / "out"), "--cache-dir", str(tmp_path),
                 "--synthetic-arch", "llava_next_video"]) == 2
    err = capsys.readouterr().err
    assert "torch-neuronx" in err and neuron_sdk.NEURON_INDEX in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("arch", ["qwen2_vl", "qwen2_5_vl"])
def test_compile_refuses_qwen_saying_why_and_what_to_use(tmp_path, capsys, arch):
    checkpoint = tmp_path / "qwen"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text(json.dumps({"model_type": arch}))
    assert main(["compile", "--out", str(tmp_path / "out"), "--model-dir", str(checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "no Qwen2 decoder" in err and "RoPE" in err and "llava_next_video" in err
    assert "--backend torch" in err and not (tmp_path / "out").exists()
