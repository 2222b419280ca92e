"""Contract fake of transformers-neuronx 0.13.1216 (Neuron SDK 2.25.0), executing on the CPU.

Public names as ``src/transformers_neuronx/__init__.py`` exports them at aws-neuron/
transformers-neuronx 1ade6d74224a89fb6366ded52153e2f32781e20d (the 0.13 line's last public sync).
Only what modfleet uses is implemented; see tests/neuron_fakes/README.md.
"""

from transformers_neuronx.version import __version__  # noqa: F401
from transformers_neuronx.constants import GQA, Layout  # noqa: F401
from transformers_neuronx.config import NeuronConfig, QuantizationConfig  # noqa: F401
from transformers_neuronx.llama.model import LlamaForSampling  # noqa: F401
