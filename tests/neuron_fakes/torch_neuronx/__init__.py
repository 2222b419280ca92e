"""Contract fake of torch-neuronx 2.7.0.2.9.9357 (Neuron SDK 2.25.0), executing on the CPU.

Signatures copied from the API reference of that release (aws-neuron/aws-neuron-sdk at
e52d322c5f49857e564c75e54082ee11638fdbb2, "Neuron SDK Release 2.25.0 doc updates"):

- frameworks/torch/torch-neuronx/api-reference-guide/inference/api-torch-neuronx-trace.rst:6
  ``torch_neuronx.trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None,
  compiler_args=None, partitioner_config=None, inline_weights_to_neff=True, cpu_backend=False)``
- .../api-torch-neuronx-core-placement.rst:137
  ``torch_neuronx.neuron_cores_context(start_nc: int=-1, nc_count: int=-1)``

The runtime's NeuronCore ownership (tests/neuron_fakes/fake_nrt.py): ``trace`` runs the compiled
model on a NeuronCore, and a model loaded inside ``neuron_cores_context`` goes onto this process's
cores, so both take them until the process exits (nrt-api-guide.rst:1036-1039 at e52d322c).

There is deliberately no ``torch_neuronx.experimental`` here: its ``neuron_cores_context`` is the
deprecated beta name (SDK 2.26 release notes), and code that still uses it should fail its tests.
"""

from __future__ import annotations

import contextlib
import os
from typing import List

import torch

import fake_nrt

__version__ = "2.7.0.2.9.9357+08e1f40d"  # the wheel's, local label included

# What the last placement context asked for, for tests to read: (start_nc, nc_count) or None.
placements: list[tuple[int, int]] = []


class _StaticShapes(torch.nn.Module):
    """A compiled NEFF takes exactly the example's shapes; so does this wrapper."""

    def __init__(self, traced: torch.jit.ScriptModule, shape: List[int]) -> None:
        super().__init__()
        self.traced = traced
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if list(x.shape) != self.shape:
            raise RuntimeError(f"neuron graph compiled for input shape {self.shape}, "
                               f"got {list(x.shape)}")
        return self.traced(x)


def trace(func, example_inputs, *_, input_output_aliases={}, compiler_workdir=None,
          compiler_args=None, partitioner_config=None, inline_weights_to_neff=True,
          cpu_backend=False):
    """``torch.jit.trace`` of ``func``, refusing other input shapes afterwards, as a NEFF would."""
    if _:
        raise TypeError("trace() takes func and example_inputs positionally; the rest are keywords")
    if compiler_args is not None and not isinstance(compiler_args, (str, list)):
        raise TypeError("compiler_args must be a str or a list of str")
    fake_nrt.claim()  # the traced NEFF is loaded and run on this process's NeuronCores
    with torch.no_grad():
        traced = torch.jit.trace(func, example_inputs, check_trace=False)
    if isinstance(example_inputs, torch.Tensor):
        return torch.jit.script(_StaticShapes(traced, list(example_inputs.shape)))
    return traced


@contextlib.contextmanager
def neuron_cores_context(start_nc: int = -1, nc_count: int = -1):
    """Models loaded inside go to NeuronCores ``start_nc`` .. ``start_nc + nc_count - 1`` of the
    cores visible to this process (``NEURON_RT_VISIBLE_CORES``)."""
    visible = os.environ.get("NEURON_RT_VISIBLE_CORES")
    if visible and start_nc >= 0:
        first, _, last = visible.partition("-")
        count = int(last or first) - int(first) + 1
        if start_nc + max(nc_count, 1) > count:
            raise RuntimeError(f"NeuronCores {start_nc}+{nc_count} outside the {count} visible "
                               f"({visible})")
    placements.append((start_nc, nc_count))
    fake_nrt.claim()  # what is loaded inside goes onto this process's NeuronCores
    yield
