import threading

import pytest

from model.api import Batch
from model.devices import plan_slots
from model.registry import create_backend


def _run_replicas(settings, batches):
    """Each replica thread loads its own backend on its slot and takes every other batch."""
    slots = plan_slots(settings)
    results: dict[int, list] = {}
    errors = []

    def replica(slot):
        try:
            backend = create_backend(settings, slot)
            backend.load()
            backend.warm_up()
            for i in range(slot.index, len(batches), len(slots)):
                results[i] = backend.infer(batches[i])
            backend.shutdown()
        except Exception as exc:  # surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=replica, args=(slot,)) for slot in slots]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return [out for i in sorted(results) for out in results[i]]


def _same(a, b):
    assert (a is None) == (b is None)
    if a is not None:
        assert a.decision == b.decision
        # Thread counts differ (2 vs 1 each), so float sums may round differently in the last bits.
        assert [(lab.name, pytest.approx(lab.confidence, abs=0.05)) for lab in a.labels] == [
            (lab.name, lab.confidence) for lab in b.labels]


@pytest.mark.parametrize("mode", ["score", "generate"])
def test_two_replicas_give_the_same_results_as_one(model_config, make_clip, mode):
    batches = [Batch(rows=(make_clip(i), make_clip(i + 10))) for i in range(3)]
    batches.append(Batch(rows=(make_clip(7), None)))
    settings = model_config.with_changes(mode=mode)
    one = _run_replicas(settings, batches)
    two = _run_replicas(settings.with_changes(replicas=2), batches)
    assert len(one) == len(two) == 8
    for a, b in zip(one, two):
        _same(a, b)
    if mode == "generate":
        assert [o.text for o in one if o] == [o.text for o in two if o]
