import pytest

from model.devices import count_neuron_cores, plan_slots
from model.exceptions import DevicesUnavailable
from model.config import ModelConfig


def test_cpu_threads_split_across_replicas_at_least_one_each():
    slots = plan_slots(ModelConfig(replicas=2, reserved_cpu_cores=2), cpu_count=lambda: 10)
    assert [(s.index, s.kind, s.device, s.cpu_threads) for s in slots] == [
        (0, "cpu", "cpu", 4), (1, "cpu", "cpu", 4)]  # 2 cores left to the decode threads
    three = plan_slots(ModelConfig(replicas=3), cpu_count=lambda: 2)
    assert [s.cpu_threads for s in three] == [1, 1, 1]
    alone = plan_slots(ModelConfig(replicas=1), cpu_count=lambda: 8, reserve_cores=0)
    assert [s.cpu_threads for s in alone] == [8]


def test_cuda_one_gpu_each_round_robin_from_the_named_one():
    slots = plan_slots(ModelConfig(device="cuda:1", replicas=3), cuda_count=lambda: 2)
    assert [s.device for s in slots] == ["cuda:1", "cuda:0", "cuda:1"]
    with pytest.raises(DevicesUnavailable, match="no CUDA GPU"):
        plan_slots(ModelConfig(device="cuda"), cuda_count=lambda: 0)


def test_neuron_contiguous_core_ranges_of_tp_degree(tmp_path):
    settings = ModelConfig(backend="neuron", compiled_dir=tmp_path, replicas=3, tp_degree=2)
    slots = plan_slots(settings, neuron_cores=lambda: 8)
    assert [s.neuron_cores for s in slots] == [(0, 1), (2, 3), (4, 5)]
    with pytest.raises(DevicesUnavailable, match="need 6 NeuronCores, but this instance has 2"):
        plan_slots(settings, neuron_cores=lambda: 2)


def test_neuron_cores_counted_from_dev_entries(tmp_path):
    for name in ("neuron0", "neuron1", "neuronx", "null"):
        (tmp_path / name).touch()
    assert count_neuron_cores(tmp_path) == 4


def test_unknown_device_refused():
    with pytest.raises(DevicesUnavailable, match="unknown device"):
        plan_slots(ModelConfig(device="tpu"))
