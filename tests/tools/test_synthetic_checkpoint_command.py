"""`modfleet synthetic-checkpoint`: the command writes what the model layer's builder caches."""

from model.checkpoints import synthetic_path
from tools.ops.cli import main


def test_cli_writes_the_same_weights_for_the_same_seed(tmp_path, model_cache):
    from safetensors.numpy import load_file

    assert main(["synthetic-checkpoint", "--preset", "tiny", "--out", str(tmp_path / "a")]) == 0
    ours = load_file(tmp_path / "a" / "model.safetensors")
    cached = load_file(synthetic_path(model_cache, "tiny") / "model.safetensors")
    assert ours.keys() == cached.keys()
    assert all((ours[k] == cached[k]).all() for k in ours)
