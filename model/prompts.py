"""Prompts as token ids, built once per backend: every row of a static batch shares them.

Score mode asks one checklist question per category in a single assistant turn; the model's
next-token distribution right after each ``- Category:`` line is read for the policy's answer
words, so one prefill pass scores every category.  Generate mode asks for free text.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.exceptions import CheckpointUnusable
from model.policy import Policy

VIDEO_PAD = "<|video_pad|>"  # Qwen2-VL
VIDEO_TOKEN = "<video>"  # LLaVA-NeXT-Video


@dataclass(frozen=True)
class ScorePrompt:
    """Token ids of the score prompt, where to read each category, and the answer token ids."""

    input_ids: tuple[int, ...]
    read_positions: tuple[int, ...]  # one per policy category, in policy order
    positive_id: int
    negative_id: int


@dataclass(frozen=True)
class GeneratePrompt:
    """Token ids of the generate prompt (ending with the assistant turn's start)."""

    input_ids: tuple[int, ...]


def video_placeholder(tokenizer) -> str:
    """The family's video placeholder token: Qwen's ``<|video_pad|>`` or LLaVA's ``<video>``."""
    vocab = tokenizer.get_vocab()
    for token in (VIDEO_PAD, VIDEO_TOKEN):
        if token in vocab:
            return token
    raise CheckpointUnusable(f"the tokenizer has neither {VIDEO_PAD} nor {VIDEO_TOKEN}")


def stop_token_ids(tokenizer) -> list[int]:
    """Tokens that end an answer: the tokenizer's EOS, and Qwen's turn and text ends if present."""
    vocab = tokenizer.get_vocab()
    ids = [vocab[t] for t in ("<|im_end|>", "<|endoftext|>") if t in vocab]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


def _chat(tokenizer, system: str, user_text: str, video_tokens: int) -> str:
    messages = [{"role": "system", "content": system},
                {"role": "user",
                 "content": [{"type": "video"}, {"type": "text", "text": user_text}]}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    placeholder = video_placeholder(tokenizer)
    if text.count(placeholder) != 1:
        raise CheckpointUnusable(f"the chat template does not place one {placeholder} for a video")
    # The processor expands the single placeholder to one token per video feature; so do we.
    return text.replace(placeholder, placeholder * video_tokens)


def answer_token_id(tokenizer, word: str) -> int:
    """The first token of `` word`` as it follows a colon and a space in the model's text."""
    ids = tokenizer.encode(" " + word, add_special_tokens=False)
    if not ids:
        raise CheckpointUnusable(f"the tokenizer cannot encode the answer word {word!r}")
    return ids[0]


def build_score_prompt(tokenizer, policy: Policy, video_tokens: int) -> ScorePrompt:
    """The checklist prompt; ``read_positions`` index each category's colon token."""
    head = _chat(tokenizer, policy.score_system, policy.score_preamble, video_tokens)
    if not head[-1:].isspace():  # LLaVA's turn ends "ASSISTANT:"; the checklist starts a line
        head += "\n"
    lines = [policy.score_line.format(category=c.name) for c in policy.categories]
    text, ends = head, []
    for line in lines:
        text += line
        ends.append(len(text))
        text += "\n"
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    offsets = encoded["offset_mapping"]
    positions = []
    for end in ends:
        hits = [i for i, (_, stop) in enumerate(offsets) if stop == end]
        if not hits:
            raise CheckpointUnusable(
                f"no token ends at a checklist line's colon ({text[:end][-30:]!r})")
        positions.append(hits[-1])
    return ScorePrompt(tuple(encoded["input_ids"]), tuple(positions),
                       answer_token_id(tokenizer, policy.positive_word),
                       answer_token_id(tokenizer, policy.negative_word))


def build_generate_prompt(tokenizer, policy: Policy, video_tokens: int) -> GeneratePrompt:
    """The free-text prompt, listing the policy's categories."""
    instruction = policy.generate_instruction.format(
        categories=", ".join(c.name for c in policy.categories))
    text = _chat(tokenizer, policy.generate_system, instruction, video_tokens)
    return GeneratePrompt(tuple(tokenizer(text, add_special_tokens=False)["input_ids"]))
