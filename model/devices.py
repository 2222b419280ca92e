"""Device slots: which device each model replica owns.

- CPU: the cores not reserved for decoding split evenly across replicas, at least one thread each.
- CUDA: one GPU per replica, round-robin from the GPU named in ``--device`` (cuda = cuda:0).
- Neuron: contiguous NeuronCore ranges of ``tp_degree`` cores per replica; a plan that needs more
  cores than the instance has is refused (an Inf2.xlarge has 2, an Inf2.48xlarge 24).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from model.api import DeviceSlot
from model.exceptions import DevicesUnavailable
from model.config import ModelConfig

# Inf2 and Trn1 devices carry two NeuronCore-v2 each.
CORES_PER_NEURON_DEVICE = 2


def plan_slots(config: ModelConfig, *, cpu_count: Callable[[], int | None] = os.cpu_count,
               cuda_count: Callable[[], int] | None = None,
               neuron_cores: Callable[[], int] | None = None,
               reserve_cores: int | None = None) -> list[DeviceSlot]:
    """One slot per replica for ``config.backend`` and ``config.device``.

    On CPU, ``reserve_cores`` (default: ``config.reserved_cpu_cores``) cores are left to the decode
    thread pool: torch threads competing with FFmpeg for the same cores halved end-to-end
    throughput on a 2-core machine (BENCHMARKS.md).  The model-only benchmark reserves none.
    """
    if config.backend == "neuron":
        if neuron_cores is not None:
            return _neuron_slots(config, neuron_cores())
        return _neuron_slots(config, *visible_neuron_cores())
    if config.device.startswith("cuda"):
        return _cuda_slots(config, (cuda_count or _cuda_device_count)())
    if config.device != "cpu":
        raise DevicesUnavailable(f"unknown device {config.device!r}; use cpu, cuda or cuda:N")
    reserve = config.reserved_cpu_cores if reserve_cores is None else reserve_cores
    threads = max(1, ((cpu_count() or 1) - reserve) // config.replicas)
    return [DeviceSlot(index=i, kind="cpu", device="cpu", cpu_threads=threads)
            for i in range(config.replicas)]


def _cuda_slots(config: ModelConfig, gpus: int) -> list[DeviceSlot]:
    if gpus < 1:
        raise DevicesUnavailable(f"--device {config.device} but torch sees no CUDA GPU")
    first = int(config.device.partition(":")[2] or 0)
    if first >= gpus:
        raise DevicesUnavailable(f"--device {config.device} but only {gpus} GPU(s) are visible")
    # Replicas beyond the GPU count share GPUs round-robin; each keeps one CPU thread for its loop.
    return [DeviceSlot(index=i, kind="cuda", device=f"cuda:{(first + i) % gpus}", cpu_threads=1)
            for i in range(config.replicas)]


def _neuron_slots(config: ModelConfig, cores: int, first: int = 0) -> list[DeviceSlot]:
    needed = config.replicas * config.tp_degree
    if needed > cores:
        raise DevicesUnavailable(
            f"{config.replicas} replica(s) x tp-degree {config.tp_degree} need {needed} "
            f"NeuronCores, but this instance has {cores}")
    return [DeviceSlot(index=i, kind="neuron", device="neuron", cpu_threads=1,
                       neuron_cores=tuple(range(first + i * config.tp_degree,
                                                first + (i + 1) * config.tp_degree)))
            for i in range(config.replicas)]


def _cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def visible_neuron_cores(environ=None, dev: Path = Path("/dev")) -> tuple[int, int]:
    """(count, first) of the NeuronCores this process may use.

    ``NEURON_RT_VISIBLE_CORES`` (e.g. ``4-7``) is the Neuron runtime's own setting for giving a
    process a core range; where an operator set it for the worker, replicas split that range.
    Otherwise every core of the instance's ``/dev/neuronN`` devices.
    """
    visible = (os.environ if environ is None else environ).get("NEURON_RT_VISIBLE_CORES", "")
    if visible:
        low, _, high = visible.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise DevicesUnavailable(f"NEURON_RT_VISIBLE_CORES={visible!r} is not a core range "
                                     f"such as 0-3") from None
        return last - first + 1, first
    return count_neuron_cores(dev), 0


def count_neuron_cores(dev: Path = Path("/dev")) -> int:
    """NeuronCores on this instance, from its ``/dev/neuronN`` devices (0 where there are none)."""
    devices = [p for p in dev.glob("neuron*") if re.fullmatch(r"neuron\d+", p.name)]
    return len(devices) * CORES_PER_NEURON_DEVICE
