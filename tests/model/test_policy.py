import json
from importlib import resources

import pytest

from model.api import Label
from model.exceptions import PolicyInvalid
from model.policy import load_policy

REKOGNITION_TOP_LEVEL = ["Explicit", "Non-Explicit Nudity", "Swimwear or Underwear", "Violence",
                         "Visually Disturbing", "Drugs & Tobacco", "Alcohol", "Rude Gestures",
                         "Gambling", "Hate Symbols"]


def _label(name, confidence, parent=""):
    return Label(name, parent, 2 if parent else 1, confidence, (0,), "llm")


def test_default_policy_has_rekognition_taxonomy_and_version():
    policy = load_policy()
    assert [c.name for c in policy.categories] == REKOGNITION_TOP_LEVEL
    assert policy.version and policy.positive_word == "yes" and policy.negative_word == "no"


def test_labels_only_at_or_above_review_threshold():
    policy = load_policy()
    scores = {c.name: 0.0 for c in policy.categories}
    scores["Violence"] = policy.category("Violence").review
    scores["Alcohol"] = policy.category("Alcohol").review - 0.01
    labels = policy.labels_from_scores(scores, (100, 200))
    assert [(lab.name, lab.timestamps_ms, lab.stage) for lab in labels] == [
        ("Violence", (100, 200), "llm")]


def test_decision_from_thresholds_including_child_labels():
    policy = load_policy()
    violence = policy.category("Violence")
    assert policy.decide([]) == "allow"
    assert policy.decide([_label("Violence", violence.review)]) == "review"
    assert policy.decide([_label("Violence", violence.block)]) == "block"
    # A level-2 label is judged by its parent's thresholds.
    explicit = policy.category("Explicit")
    assert policy.decide([_label("Exposed Male Genitalia", explicit.block, "Explicit")]) == "block"


def test_malformed_policy_names_the_problem(tmp_path):
    raw = json.loads(resources.files("model").joinpath("policies/default.json").read_text())
    raw["categories"][0]["review"] = 95  # above its block threshold of 80
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(PolicyInvalid, match="Explicit"):
        load_policy(path)
    with pytest.raises(PolicyInvalid, match="cannot read"):
        load_policy(tmp_path / "missing.json")
