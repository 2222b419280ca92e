"""The torch backend on the LLaVA-NeXT-Video family: score and generate modes, int8, the n-gram
filter; runs under the Neuron SDK's transformers 4.47 and under 5.x."""

import pytest

from model.api import Batch
from model.config import ModelConfig
from model.devices import plan_slots
from model.registry import create_backend


def _backend(llava_checkpoint, **changes):
    config = ModelConfig(model_dir=llava_checkpoint, frames_per_video=4, frame_size=56,
                         **{"batch_size": 2, "max_new_tokens": 10, **changes})
    backend = create_backend(config, plan_slots(config)[0])
    backend.load()
    backend.warm_up()
    return backend


@pytest.mark.parametrize("quantize", ["none", "int8"])
def test_score_mode_on_llava(llava_checkpoint, make_clip, quantize):
    backend = _backend(llava_checkpoint, quantize=quantize)
    assert backend.identity.name == "synthetic-tiny-llava-next-video"
    assert backend.identity.quantization == quantize
    clip = make_clip(1)
    out, padding = backend.infer(Batch(rows=(clip, None)))
    assert padding is None and out.decision in {"allow", "review", "block"}
    scores = backend.category_scores(Batch(rows=(clip, None)))[0]
    assert len(scores) == len(backend.policy.categories)
    assert all(0 <= v <= 100 for v in scores.values())
    beside = backend.category_scores(Batch(rows=(make_clip(2), clip)))[1]
    if quantize == "none":  # dynamic int8 quantizes activations with one scale per batch
        assert beside == pytest.approx(scores, abs=0.05)  # rows do not see each other


def test_generate_mode_on_llava_with_the_ngram_filter(llava_checkpoint, make_clip):
    backend = _backend(llava_checkpoint, mode="generate", ngram_size=2)
    outputs = backend.infer(Batch(rows=(make_clip(1), make_clip(2))))
    for out, tokens in zip(outputs, backend.last_tokens):
        assert 0 < out.tokens_generated == len(tokens) <= 10
        assert out.decision in {"allow", "review", "block"}
        pairs = list(zip(tokens, tokens[1:]))
        assert len(pairs) == len(set(pairs))  # no repeated bigram among generated tokens


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_a_clips_result_does_not_depend_on_the_batch_size(llava_checkpoint, make_clip, mode):
    """Alone in a batch of 1, or beside another clip and padding in a batch of 4, a clip gets the
    same scores and the same generated tokens; what lets tests/e2e/test_neuron_fakes.py compare
    the neuron worker at both batch sizes with one torch run per mode."""
    clip, other = make_clip(1), make_clip(2)
    results = []
    for size, rows, at in ((1, (clip,), 0), (4, (other, clip, None, None), 1)):
        backend = _backend(llava_checkpoint, mode=mode, batch_size=size)
        if mode == "score":
            results.append(backend.category_scores(Batch(rows=rows))[at])
        else:
            backend.infer(Batch(rows=rows))
            results.append(backend.last_tokens[at])
    alone, in_four = results
    assert in_four == (pytest.approx(alone, abs=0.005) if mode == "score" else alone)
