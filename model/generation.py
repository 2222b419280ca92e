"""Generate mode: free text with a rationale, and the repeated n-gram filter.

The filter has two parts that share state, both active when ``config.ngram_size`` > 0:

- ``NgramBlocker`` (a ``LogitsProcessor``) bans any token that would repeat an n-gram the row has
  already generated.  Unlike transformers' built-in ``no_repeat_ngram_size``, it looks only at the
  generated tokens: the built-in also counts the prompt, and would forbid the model from writing
  the very category names the prompt lists.
- ``LoopStopper`` (a ``StoppingCriteria``) ends a row whose greedy choice has run into the block
  ``max_blocked`` times: the model keeps trying to loop, and what follows would be filler.  Rows end
  one by one; the batch ends when every row has, which is where the time is saved.
"""

from __future__ import annotations

from model.api import Clip, ModelOutput
from model.generated_text import Unparseable, parse_answer
from model.prompts import stop_token_ids

MAX_BLOCKED = 2


class NgramBlocker:
    """Bans tokens completing an n-gram already present in the row's generated tokens."""

    def __init__(self, ngram_size: int, prompt_length: int, rows: int) -> None:
        self.n = ngram_size
        self.prompt_length = prompt_length
        self.blocked = [0] * rows  # how often each row's top choice was banned

    def __call__(self, input_ids, scores):
        import torch

        generated = input_ids[:, self.prompt_length:].tolist()
        top = scores.argmax(dim=-1).tolist()
        for row, tokens in enumerate(generated):
            banned = self._banned(tokens)
            if not banned:
                continue
            if top[row] in banned:
                self.blocked[row] += 1
            scores[row, torch.tensor(sorted(banned), device=scores.device)] = float("-inf")
        return scores

    def _banned(self, tokens: list[int]) -> set[int]:
        if len(tokens) < self.n:
            return set()
        prefix = tuple(tokens[len(tokens) - self.n + 1:]) if self.n > 1 else ()
        return {tokens[i + self.n - 1] for i in range(len(tokens) - self.n + 1)
                if tuple(tokens[i:i + self.n - 1]) == prefix}


class LoopStopper:
    """Per-row stop once the blocker has had to turn the row away ``max_blocked`` times."""

    def __init__(self, blocker: NgramBlocker, max_blocked: int = MAX_BLOCKED) -> None:
        self.blocker = blocker
        self.max_blocked = max_blocked
        self.stopped_at: dict[int, int] = {}  # row -> generated length when stopped

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = [count >= self.max_blocked for count in self.blocker.blocked]
        length = input_ids.shape[1] - self.blocker.prompt_length
        for row, is_done in enumerate(done):
            if is_done:
                self.stopped_at.setdefault(row, length)
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def generate_outputs(backend, clips: list[Clip], vision: dict,
                     real: list[bool] | None = None) -> list[ModelOutput]:
    """Decode an answer per row, greedily, and turn each into labels and a decision.

    ``real`` marks the rows that are not padding; only they count in ``backend.stats``.
    """
    import torch
    from transformers import LogitsProcessorList, StoppingCriteriaList

    config, tokenizer = backend.config, backend.tokenizer
    ids = backend.generate_prompt.input_ids
    inputs = backend.model_inputs(ids, len(clips), vision)
    processors, criteria, stopper = LogitsProcessorList(), StoppingCriteriaList(), None
    if config.ngram_size > 0:
        blocker = NgramBlocker(config.ngram_size, len(ids), len(clips))
        stopper = LoopStopper(blocker)
        processors.append(blocker)
        criteria.append(stopper)
    stop_ids = stop_token_ids(tokenizer)
    with torch.inference_mode():
        sequences = backend.model.generate(
            **inputs, max_new_tokens=config.max_new_tokens, do_sample=False,
            logits_processor=processors, stopping_criteria=criteria, eos_token_id=stop_ids,
            pad_token_id=tokenizer.pad_token_id)
    outputs, backend.last_tokens = [], []
    for row, (clip, new) in enumerate(zip(clips, sequences[:, len(ids):].tolist())):
        tokens = _until_stop(new, stop_ids)
        loop_stopped = stopper is not None and row in stopper.stopped_at
        if loop_stopped:
            # A loop-stopped row is padded after its last token; the pad may not be a stop token.
            tokens = tokens[:stopper.stopped_at[row]]
        backend.last_tokens.append(tokens)
        if real is None or real[row]:
            if loop_stopped:
                backend.stats["loops_stopped"] += 1
                backend.stats["tokens_saved"] += config.max_new_tokens - len(tokens)
            backend.stats["tokens_generated"] += len(tokens)
        text = tokenizer.decode(tokens, skip_special_tokens=True)
        outputs.append(output_from_text(backend.policy, clip, text, len(tokens)))
    return outputs


def output_from_text(policy, clip: Clip, text: str, tokens: int) -> ModelOutput:
    """Labels and decision from a generated answer; unparseable text routes to review."""
    try:
        answer = parse_answer(text, policy)
    except Unparseable as exc:
        return ModelOutput(labels=(), decision="review", reason=f"unparseable model output: {exc}",
                           text=text, tokens_generated=tokens)
    labels = policy.labels_from_scores(answer.confidences, clip.timestamps_ms)
    return ModelOutput(labels=labels, decision=policy.decide(labels), text=text,
                       tokens_generated=tokens)


def _until_stop(tokens: list[int], stop_ids: list[int]) -> list[int]:
    """The row's generated tokens up to and including its first stop token (padding dropped)."""
    for i, token in enumerate(tokens):
        if token in stop_ids:
            return tokens[:i + 1]
    return tokens
