"""The registry the worker picks a backend from, by ``config.backend``.

Backends are imported only when chosen, so a CPU worker never imports the Neuron SDK.  With
``config.screening`` the chosen backend is wrapped by the screening stage (NudeNet first, the LLM
after it, or only on undecided rows with ``config.cascade``).
"""

from __future__ import annotations

import importlib

from model.api import Backend, DeviceSlot
from model.exceptions import FixModelSetup
from model.config import ModelConfig

BACKENDS = {
    "torch": "model.torch_backend:TorchBackend",
    "neuron": "model.neuron_backend:NeuronBackend",
    "paced": "model.paced_backend:PacedBackend",
}


def create_backend(config: ModelConfig, slot: DeviceSlot) -> Backend:
    """A new, unloaded backend for one replica on ``slot``."""
    try:
        module_name, _, class_name = BACKENDS[config.backend].partition(":")
    except KeyError:
        raise FixModelSetup(f"unknown backend {config.backend!r}; "
                            f"choose one of {', '.join(BACKENDS)}") from None
    backend = getattr(importlib.import_module(module_name), class_name)(config, slot)
    if config.screening:
        from model.screening.backend import ScreeningBackend

        backend = ScreeningBackend(config, slot, inner=backend)
    return backend
