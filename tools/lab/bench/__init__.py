"""The end-to-end benchmark (`modfleet bench`): the whole path against a naive worker.

Not part of the product: it drives the real worker on the embedded AWS stack, the same replica pool
directly (model only), a deliberately naive sequential worker, and the frame sampler against
decoding every frame, all on one corpus and one model, and reports the ratios.
"""
