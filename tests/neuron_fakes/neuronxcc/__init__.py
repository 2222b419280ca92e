"""Contract fake of neuronx-cc 2.20.9961.0 (Neuron SDK 2.25.0): present so the SDK check passes.

modfleet never imports the compiler directly; torch-neuronx and transformers-neuronx call it.
"""

__version__ = "2.20.9961.0+fake"  # a local label as the real wheels carry
