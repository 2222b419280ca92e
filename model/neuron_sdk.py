"""The AWS Neuron SDK, imported lazily, with an error that says where to get it.

The packages live only on AWS's pip index.  The releases this project targets are pinned in
setup.cfg's ``neuron`` extra: transformers-neuronx 0.13 from Neuron SDK 2.26, the last SDK release
that ships it (it entered maintenance with 2.24; AWS points new work to NxD Inference).
"""

from __future__ import annotations

import importlib
import importlib.util

from model.exceptions import SdkMissing

NEURON_INDEX = "https://pip.repos.neuron.amazonaws.com"
PACKAGES = {"torch_neuronx": "torch-neuronx", "transformers_neuronx": "transformers-neuronx",
            "neuronxcc": "neuronx-cc"}


def missing() -> list[str]:
    """Distribution names of the Neuron packages that are not installed (cheap: no import)."""
    return [dist for module, dist in PACKAGES.items() if importlib.util.find_spec(module) is None]


def require(purpose: str) -> None:
    """Raise SdkMissing naming the first absent package and the index to install it from."""
    absent = missing()
    if absent:
        raise SdkMissing(absent[0], purpose,
                         f"pip install 'modfleet[neuron]' --extra-index-url {NEURON_INDEX} "
                         f"(on an Inf2/Trn1 instance, Neuron SDK 2.26; "
                         f"missing: {', '.join(absent)})")


def sdk_versions() -> dict[str, str]:
    """Installed versions of the Neuron packages, for the compile manifest."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in [*PACKAGES.values(), "torch", "transformers"]:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "absent"
    return found


def import_module(name: str):
    """Import a Neuron module after ``require`` checked it is there."""
    return importlib.import_module(name)
