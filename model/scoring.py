"""Score mode's arithmetic: answer-word probabilities to confidences, confidences to outputs."""

from __future__ import annotations

from model.api import Clip, ModelOutput
from model.policy import Policy
from model.prompts import ScorePrompt


def confidences_from_logits(logits, prompt: ScorePrompt) -> list[list[float]]:
    """Per row, per category: 100 * P(yes) / (P(yes) + P(no)) at the category's read position.

    ``logits`` is (rows, len(read_positions), vocab), already gathered at the read positions.
    Renormalising over the two answer words makes the score independent of how much probability
    the model puts on other tokens (an instruct model may prefer "Yes" or a space first).
    """
    import torch

    pair = logits.float()[..., [prompt.positive_id, prompt.negative_id]]
    return (torch.softmax(pair, dim=-1)[..., 0] * 100.0).tolist()


def output_from_confidences(policy: Policy, clip: Clip, confidences: list[float]) -> ModelOutput:
    """Labels above the review thresholds, with the clip's frame timestamps, and the decision."""
    scores = {c.name: value for c, value in zip(policy.categories, confidences)}
    labels = policy.labels_from_scores(scores, clip.timestamps_ms)
    return ModelOutput(labels=labels, decision=policy.decide(labels))
