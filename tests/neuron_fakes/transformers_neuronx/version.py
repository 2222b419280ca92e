# src/transformers_neuronx/version.py says '0.13.x'; the 2.25.0 wheel is 0.13.1216
# (aws-neuron/aws-neuron-sdk src/helperscripts/n2-manifest.json, "neuron_version":"2.25.0").
__version__ = "0.13.1216"
