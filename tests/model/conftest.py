"""Model-layer fixtures (the shared checkpoints and clips are in tests/conftest.py): the Neuron
SDK's contract fakes, importable in this process."""

from __future__ import annotations

from pathlib import Path

import pytest

FAKES = Path(__file__).resolve().parents[1] / "neuron_fakes"
FAKE_MODULES = ("torch_neuronx", "transformers_neuronx", "neuronxcc", "fake_nrt")


@pytest.fixture()
def neuron_fakes(monkeypatch, tmp_path):
    """The contract fakes of the Neuron SDK 2.25 importable in this process (and in the replica
    processes it spawns), on an instance of two NeuronCores of their own; afterwards this process
    gives its cores back (``nrt_close``) and forgets the fakes, so that later tests see no SDK."""
    import importlib
    import sys

    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.setenv("NEURON_RT_VISIBLE_CORES", "0-1")
    monkeypatch.setenv("MODFLEET_FAKE_NEURON_DIR", str(tmp_path / "neuron-devices"))
    importlib.invalidate_caches()
    yield FAKES
    if "fake_nrt" in sys.modules:
        sys.modules["fake_nrt"].release()
    for name in [n for n in sys.modules if n.split(".")[0] in FAKE_MODULES]:
        del sys.modules[name]
    importlib.invalidate_caches()
