"""The AWS Neuron SDK: one release pinned end to end, imported lazily, checked at start-up.

The packages live only on AWS's pip index.  Pinned: Neuron SDK 2.25.0, the last release whose
DLAMIs still ship a transformers-neuronx virtual environment (2.26 removed it and ended support);
versions from aws-neuron/aws-neuron-sdk src/helperscripts/n2-manifest.json ("neuron_version":
"2.25.0") and, for transformers, the ``transformers<4.48`` pin of transformers-neuronx since SDK
2.21.1 (release-notes/prev/rn.rst:366 at f59607bd; :443 in later docs).  setup.cfg's ``neuron``
extra carries the same pins; a test keeps the two equal.  The wheels' versions carry local labels
(``2.7.0.2.9.9357+08e1f40d``): ``pin_drift`` compares public versions, manifests exact ones.
"""

from __future__ import annotations

import importlib
import importlib.util

from model.exceptions import SdkMissing

NEURON_INDEX = "https://pip.repos.neuron.amazonaws.com"
SDK_RELEASE = "2.25.0"
PACKAGES = {"torch_neuronx": "torch-neuronx", "transformers_neuronx": "transformers-neuronx",
            "neuronxcc": "neuronx-cc"}
PINNED = {"torch-neuronx": "2.7.0.2.9.9357", "neuronx-cc": "2.20.9961.0",
          "transformers-neuronx": "0.13.1216", "transformers": "4.47.1"}
# Versions the manifest records and a worker compares: the SDK, and the libraries whose code is in
# the traced and compiled graphs.
RECORDED = ("torch-neuronx", "neuronx-cc", "transformers-neuronx", "torch", "transformers")


def missing() -> list[str]:
    """Distribution names of the Neuron packages that are not installed (cheap: no import)."""
    return [dist for module, dist in PACKAGES.items() if importlib.util.find_spec(module) is None]


def require(purpose: str) -> None:
    """Raise SdkMissing naming the first absent package and the index to install it from."""
    absent = missing()
    if absent:
        raise SdkMissing(absent[0], purpose,
                         f"pip install 'modfleet[neuron]' --extra-index-url {NEURON_INDEX} "
                         f"(on an Inf2/Trn1 instance, Neuron SDK {SDK_RELEASE}; "
                         f"missing: {', '.join(absent)})")


def sdk_versions() -> dict[str, str]:
    """Installed versions of the recorded packages, for the compile manifest and its check."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for dist in RECORDED:
        try:
            found[dist] = version(dist)
        except PackageNotFoundError:
            found[dist] = "absent"
    return found


def version_drift(recorded: dict[str, str], installed: dict[str, str],
                  source: str = "compiled with") -> list[str]:
    """One line per package whose installed version is not exactly the recorded one, local label
    included (``source`` says where the recorded one comes from: a manifest's "compiled with").

    A manifest records what ``importlib.metadata`` reported at compile time, so a match is
    character for character: ``2.7.0.2.9.9357+08e1f40d`` then is another build than ``+0acef03a``.
    """
    return [f"{name}: {source} {want}, installed {installed.get(name, 'absent')}"
            for name, want in sorted(recorded.items()) if installed.get(name, "absent") != want]


def pin_drift(installed: dict[str, str]) -> list[str]:
    """One line per pinned package whose installed public version is not the pin.

    The Neuron wheels carry a local label (torch-neuronx ``2.7.0.2.9.9357+08e1f40d``: aws-neuron/
    deep-learning-containers 0a7317b docker/pytorch/inference/2.7.0/Dockerfile.neuronx:157), which
    the pins, like pip's ``==`` without a label (PEP 440, "Version matching"), leave out.
    """
    return [f"{name}: pinned {want}, installed {installed.get(name, 'absent')}"
            for name, want in sorted(PINNED.items())
            if public_version(installed.get(name, "absent")) != want]


def public_version(version: str) -> str:
    """``version`` without its local label (``2.7.0.2.9.9357+08e1f40d`` -> ``2.7.0.2.9.9357``)."""
    return version.partition("+")[0]


def import_module(name: str):
    """Import a Neuron module after ``require`` checked it is there."""
    return importlib.import_module(name)
