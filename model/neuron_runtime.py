"""Inside a Neuron replica process: traced vision tower + compiled decoder, batch in, outputs out.

Follows transformers-neuronx's ``Qwen2ForSampling`` (pull request #101,
``src/transformers_neuronx/qwen2/model.py``): ``from_pretrained(dir, **same kwargs as compile)``,
``load(artifacts)``, ``to_neuron()`` (loads, does not compile, when artifacts were given: see
``NeuronModelBase.to_neuron`` in ``src/transformers_neuronx/base.py``), ``preprocess_and_embed``
and ``forward(input_ids, cache_ids, start_ids, last_token_id, input_embeddings)``; logits come back
(batch, vocab) for the last position, or (batch, sequence, vocab) with ``output_all_logits``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model import neuron_sdk
from model.api import Batch, Clip, ModelIdentity, ModelOutput
from model.compile import decoder_class, decoder_kwargs
from model.generation import MAX_BLOCKED, NgramBlocker, output_from_text
from model.manifest import check_manifest, read_manifest
from model.policy import load_policy
from model.preprocess import VideoPreprocessor
from model.prompts import build_generate_prompt, build_score_prompt
from model.scoring import confidences_from_logits, output_from_confidences
from model.config import ModelConfig


class NeuronRuntime:
    """Loads the artifacts of ``config.compiled_dir`` and runs static batches."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.root = Path(config.compiled_dir)
        self.manifest = read_manifest(self.root)
        self.policy = load_policy(config.policy_file)

    def load(self) -> ModelIdentity:
        import torch
        from transformers import AutoTokenizer

        torch_neuronx = neuron_sdk.import_module("torch_neuronx")
        text_dir = self.root / self.manifest.files["decoder_checkpoint"]
        self.tokenizer = AutoTokenizer.from_pretrained(text_dir)
        self.pre = VideoPreprocessor.from_checkpoint(text_dir)
        video_tokens = self.manifest.video_tokens
        self.score_prompt = build_score_prompt(self.tokenizer, self.policy, video_tokens)
        self.generate_prompt = build_generate_prompt(self.tokenizer, self.policy, video_tokens)
        prompt = self.score_prompt if self.config.mode == "score" else self.generate_prompt
        check_manifest(self.manifest, self.config, prompt_tokens=len(prompt.input_ids))
        # The vision tower shares the replica's first core with decoder rank 0.
        with torch_neuronx.experimental.neuron_cores_context(start_nc=0, nc_count=1):
            self.vision = torch.jit.load(str(self.root / self.manifest.files["vision"]))
        self.decoder = decoder_class().from_pretrained(
            str(text_dir), **decoder_kwargs(self.config, self.manifest.n_positions,
                                            self.config.mode))
        self.decoder.load(str(self.root / self.manifest.files["decoder"]))
        self.decoder.to_neuron()
        self.video_token_id = self.tokenizer.convert_tokens_to_ids("<|video_pad|>")
        return ModelIdentity(name=self.manifest.model_name,
                             version=self.manifest.checkpoint_sha256[:23], backend="neuron",
                             quantization=self.manifest.quantize, synthetic=self.manifest.synthetic,
                             policy_version=self.policy.version)

    def infer(self, batch: Batch) -> list[ModelOutput]:
        n, s = self.config.frames_per_video, self.config.frame_size
        clips = [row or Clip(np.zeros((n, s, s, 3), np.uint8), (0,) * n, "padding")
                 for row in batch.rows]
        features = self.vision(*self.pre([c.frames for c in clips]))
        if self.config.mode == "score":
            return self._score(clips, features)
        return self._generate(clips, features)

    def _prefill(self, ids: tuple[int, ...], features):
        import torch
        from transformers_neuronx.constants import LAYOUT_HSB

        input_ids = torch.tensor([ids] * self.config.batch_size, dtype=torch.long)
        padded, _, cache_ids, start_ids, last_token_id, *_ = \
            self.decoder.preprocess_and_embed(input_ids)
        embeds = self.decoder.chkpt_model.model.embed_tokens(padded)
        mask = padded == self.video_token_id
        embeds[mask] = features.reshape(-1, embeds.shape[-1]).to(embeds.dtype)
        if self.decoder.neuron_config.attention_layout == LAYOUT_HSB:
            embeds = embeds.transpose(0, -1).contiguous()
        return self.decoder.forward(padded, cache_ids, start_ids, last_token_id,
                                    input_embeddings=embeds)

    def _score(self, clips: list[Clip], features) -> list[ModelOutput]:
        prompt = self.score_prompt
        logits = self._prefill(prompt.input_ids, features)[:, list(prompt.read_positions), :]
        table = confidences_from_logits(logits, prompt)
        return [output_from_confidences(self.policy, c, row) for c, row in zip(clips, table)]

    def _generate(self, clips: list[Clip], features) -> list[ModelOutput]:
        import torch

        ids = self.generate_prompt.input_ids
        rows = len(clips)
        blocker = NgramBlocker(self.config.ngram_size, len(ids), rows) \
            if self.config.ngram_size else None
        stop = {self.tokenizer.convert_tokens_to_ids(t) for t in ("<|im_end|>", "<|endoftext|>")}
        sequence = torch.tensor([ids] * rows, dtype=torch.long)
        logits = self._prefill(ids, features)
        ended: list[int | None] = [None] * rows  # generated length where each row stopped
        for step in range(self.config.max_new_tokens):
            if blocker is not None:
                logits = blocker(sequence, logits)
            token = logits.argmax(dim=-1)
            sequence = torch.cat([sequence, token[:, None]], dim=1)
            for r in range(rows):
                looping = blocker is not None and blocker.blocked[r] >= MAX_BLOCKED
                if ended[r] is None and (int(token[r]) in stop or looping):
                    ended[r] = step + 1
            if all(e is not None for e in ended):
                break
            # One decode step at the next cache position for every row (static batch).
            position = torch.tensor([len(ids) + step], dtype=torch.int32)
            logits = self.decoder.forward(token[:, None], cache_ids=position)
        outputs = []
        for clip, row, end in zip(clips, sequence[:, len(ids):].tolist(), ended):
            cut = end or len(row)
            text = self.tokenizer.decode(row[:cut], skip_special_tokens=True)
            outputs.append(output_from_text(self.policy, clip, text, cut))
        return outputs
