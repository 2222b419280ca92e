"""The non-LLM screening stage: a nudity detector over every sampled frame, before the LLM."""
