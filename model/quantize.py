"""INT8 weights for the torch backend.

- CPU: PyTorch's dynamic int8 quantization of the ``nn.Linear`` layers (int8 weights, activations
  quantized per batch on the fly).  ``torch.ao.quantization.quantize_dynamic`` still works in torch
  2.13 but is deprecated in favour of torchao; it needs no extra package, so it stays the CPU path.
- CUDA: int8 weight-only through torchao's ``Int8WeightOnlyConfig`` (the optional ``cuda-int8``
  extra), run on an NVIDIA H200 with torchao 0.17 and torch 2.11 (BENCHMARKS.md).  The model stays
  on the CPU until ``quantize_`` moves each linear layer to the GPU and quantizes it there.

The output head (``lm_head``) stays in full precision in both: score mode reads answer-word
probabilities straight from it, and it is a small share of the weights.
"""

from __future__ import annotations

import warnings

from model.exceptions import SdkMissing


def quantize_int8(model, device_kind: str, device: str | None = None):
    """Quantize the linear layers of ``model`` (vision tower and decoder, not lm_head) in place.

    On CUDA, ``device`` (e.g. ``cuda:0``) is where each layer is moved as it is quantized.
    """
    if device_kind == "cpu":
        return _dynamic_cpu(model)
    if device_kind == "cuda":
        return _weight_only_cuda(model, device)
    raise ValueError(f"int8 through the torch backend runs on cpu or cuda, not {device_kind}")


def _dynamic_cpu(model):
    import torch
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # The deprecation notices point at torchao; this path is kept on purpose (see above).
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        # By name, every linear layer but the output head: where the head sits differs between
        # families and transformers versions (4.47's LLaVA nests it in language_model).
        head = model.get_output_embeddings()
        names = {name: default_dynamic_qconfig for name, module in model.named_modules()
                 if isinstance(module, torch.nn.Linear) and module is not head}
        quantize_dynamic(model, names, dtype=torch.qint8, inplace=True)
    return model


def _weight_only_cuda(model, device: str | None):
    try:
        from torchao.quantization import Int8WeightOnlyConfig, quantize_
    except ImportError as exc:
        raise SdkMissing("torchao", "--quantize int8 on CUDA",
                         "pip install 'modfleet[cuda-int8]'") from exc
    quantize_(model.model, Int8WeightOnlyConfig(), device=device)
    return model


def weights_mb(model) -> float:
    """Size of the model's weights in MiB as held in memory (int8 packed weights at one byte)."""
    import torch

    def size(value) -> int:
        # Quantized tensors report one byte per element.  Tensor subclasses (torchao's Int8Tensor)
        # report their logical dtype, so they are measured by the tensors they hold (int8 data,
        # scales), which ``__tensor_flatten__`` names.
        flatten = getattr(value, "__tensor_flatten__", None)
        if isinstance(value, torch.Tensor) and flatten is not None:
            names, _ = flatten()
            return sum(size(getattr(value, name)) for name in names)
        if isinstance(value, torch.Tensor):
            return value.nelement() * value.element_size()
        if isinstance(value, (tuple, list)):
            return sum(size(v) for v in value)
        return 0

    # Shared storages (tied embeddings) are counted once.
    seen, total = set(), 0
    for value in model.state_dict().values():
        key = id(value)
        if key not in seen:
            seen.add(key)
            total += size(value)
    return total / 2**20
