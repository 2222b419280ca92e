import pytest

from model.api import Batch
from model.devices import plan_slots
from model.exceptions import SdkMissing
from model.quantize import quantize_int8, weights_mb
from model.registry import create_backend


def _loaded(settings):
    backend = create_backend(settings, plan_slots(settings)[0])
    backend.load()
    return backend


def test_cpu_int8_quantizes_linear_layers_and_stays_close(model_config, make_clip):
    batch = Batch(rows=(make_clip(1), make_clip(2)))
    fp32 = _loaded(model_config)
    int8 = _loaded(model_config.with_changes(quantize="int8"))
    import torch
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    linears = [m for m in int8.model.model.modules() if isinstance(m, torch.nn.Linear)]
    quantized = [m for m in int8.model.model.modules() if isinstance(m, DynamicInt8Linear)]
    assert quantized and not linears
    assert isinstance(int8.model.lm_head, torch.nn.Linear)  # the answer head keeps full precision
    assert int8.identity.quantization == "int8"
    assert weights_mb(int8.model) < 0.8 * weights_mb(fp32.model)
    ours, theirs = int8.category_scores(batch), fp32.category_scores(batch)
    drift = max(abs(a[k] - b[k]) for a, b in zip(ours, theirs) for k in a)
    # Random weights at 0.02 scale sit near int8's resolution, so a few points of drift is expected.
    assert 0 < drift < 10
    outputs = int8.infer(batch)
    assert all(o.decision == int8.policy.decide(o.labels) for o in outputs)


def test_int8_on_cuda_needs_torchao_and_says_how_to_get_it(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_torchao(name, *args, **kwargs):
        if name.startswith("torchao"):
            raise ImportError("No module named 'torchao'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torchao)
    with pytest.raises(SdkMissing, match=r"torchao.*modfleet\[cuda-int8\]"):
        quantize_int8(object(), "cuda")


class _PackedInt8(__import__("torch").Tensor):
    """A tensor subclass shaped like torchao's Int8Tensor: bf16 outside, int8 data and scales
    inside (torchao is an optional extra, not installed for the tests)."""

    @staticmethod
    def __new__(cls, qdata, scale):
        import torch

        return torch.Tensor._make_wrapper_subclass(cls, qdata.shape, dtype=torch.bfloat16)

    def __init__(self, qdata, scale):
        self.qdata, self.scale = qdata, scale

    def __tensor_flatten__(self):
        return ["qdata", "scale"], {}

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise NotImplementedError(func)


def test_weights_of_tensor_subclasses_are_measured_by_what_they_hold():
    import torch

    packed = _PackedInt8(torch.zeros(1024, 1024, dtype=torch.int8),
                         torch.zeros(1024, dtype=torch.bfloat16))
    assert packed.element_size() == 2  # what it reports: its logical dtype

    class Model:
        def state_dict(self):
            return {"weight": packed, "bias": torch.zeros(1024, dtype=torch.bfloat16)}

    assert weights_mb(Model()) == (1024 * 1024 + 2 * 1024 + 2 * 1024) / 2**20
