"""Inside a Neuron replica process: traced video encoder + compiled decoder, batch in, outputs out.

Follows transformers-neuronx's ``LlamaForSampling`` at aws-neuron/transformers-neuronx 1ade6d7:
``from_pretrained(dir, **the compile kwargs)``, ``load(artifacts)``, ``to_neuron()`` (loads, does
not compile, when artifacts were given: base.py:77) and ``forward(input_ids)`` for the prompt and
``forward(token, cache_ids=position)`` for each generated token, the calls TNx's own sampling
makes (sampling.py:387 and :28: ``model(input_ids, cache_ids, start_ids)``).  Logits come back
``(batch, vocab)`` for the last position, or ``(batch, sequence, vocab)`` with
``output_all_logits`` (base.py:700), the vocabulary padded to a multiple of ``tp_degree`` in the
latter.  The decoder's 1-D RoPE is the model's own, so the result is the torch backend's up to
bf16.

The video features reach the decoder through the host-side embedding that ``forward`` itself
calls (``preprocess_and_embed``, llama/model.py:279-288: ``chkpt_model.model.embed_tokens`` of
the right-padded prompt): for the prompt's call that module is wrapped so that the ``<video>``
placeholders come out as the features.  Not ``forward(..., last_token_id=...,
input_embeddings=...)``: with ``last_token_id`` given, ``forward`` keeps 3 of the 5 values
``_preprocess`` returns (llama/model.py:292-293) and calls the context graph with 4 inputs where
it declares 6 (layers/transformer.py:76-133); nothing in TNx calls ``forward`` that way.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from model import neuron_sdk
from model.api import Batch, Clip, ModelIdentity, ModelOutput
from model.architectures import video_token_id
from model.compile import decoder_class, decoder_kwargs, score_d2h_bytes
from model.config import ModelConfig
from model.exceptions import RejectClip
from model.generation import MAX_BLOCKED, NgramBlocker, output_from_text
from model.manifest import check_manifest, read_manifest
from model.policy import load_policy
from model.preprocess import LlavaVideoPreprocessor
from model.prompts import build_generate_prompt, build_score_prompt, stop_token_ids
from model.scoring import confidences_from_logits, output_from_confidences


@contextmanager
def video_embeddings(decoder, video_token_id: int, features):
    """Within the block, the decoder's host embedding returns ``features`` (clips, video tokens,
    hidden) at the ``<video>`` placeholders of each row, and the token embeddings elsewhere."""
    model = decoder.chkpt_model.model
    tokens = model.embed_tokens
    model.embed_tokens = VideoEmbedding(tokens, video_token_id, features)
    try:
        yield
    finally:
        model.embed_tokens = tokens


class VideoEmbedding(torch.nn.Module):
    """Token embeddings with video features (clips, video tokens, hidden) spliced in at the
    ``<video>`` placeholders, row by row."""

    def __init__(self, tokens, video_token_id: int, features) -> None:
        super().__init__()
        self.tokens, self.video_token_id, self.features = tokens, video_token_id, features

    def forward(self, input_ids):
        embeds = self.tokens(input_ids)
        mask = input_ids == self.video_token_id
        wanted = self.features.shape[0] * self.features.shape[1]
        if int(mask.sum()) != wanted:
            raise RuntimeError(f"{int(mask.sum())} <video> placeholders in the prompt for "
                               f"{wanted} video features")
        embeds = embeds.clone()
        embeds[mask] = self.features.reshape(wanted, -1).to(embeds.dtype)
        return embeds


class NeuronRuntime:
    """Loads the artifacts of ``config.compiled_dir`` and runs static batches."""

    def __init__(self, config: ModelConfig) -> None:
        self.config = config
        self.root = Path(config.compiled_dir)
        self.manifest = read_manifest(self.root)
        self.policy = load_policy(config.policy_file)
        # Per process, returned with every batch: batches, real rows, logits bytes brought from
        # the device per score batch, and the host threads torch uses here.
        self.stats = {"batches": 0, "rows": 0, "score_d2h_bytes_per_batch": 0,
                      "host_threads": torch.get_num_threads()}

    def load(self) -> ModelIdentity:
        import json

        from transformers import AutoTokenizer

        torch_neuronx = neuron_sdk.import_module("torch_neuronx")
        m = self.manifest
        text_dir = self.root / m.files["decoder_checkpoint"]
        self.tokenizer = AutoTokenizer.from_pretrained(text_dir)
        self.pre = LlavaVideoPreprocessor.from_checkpoint(text_dir)
        build = build_score_prompt if self.config.mode == "score" else build_generate_prompt
        self.prompt = build(self.tokenizer, self.policy, m.video_tokens)
        check_manifest(m, self.config, prompt_tokens=len(self.prompt.input_ids))
        # The video encoder shares the replica's first NeuronCore with decoder rank 0.
        with torch_neuronx.neuron_cores_context(start_nc=0, nc_count=1):
            self.vision = torch.jit.load(str(self.root / m.files["vision"]))
        self.decoder = decoder_class().from_pretrained(
            str(text_dir), **decoder_kwargs(self.config, m.n_positions, m.context_length_estimate,
                                            m.amp, self.config.mode))
        self.decoder.load(str(self.root / m.files["decoder"]))
        self.decoder.to_neuron()
        vlm = json.loads((text_dir / "vlm_config.json").read_text())
        self.video_token_id = video_token_id(SimpleNamespace(**vlm))
        self.vocab_size = self.decoder.config.vocab_size
        if self.config.mode == "score":
            self.stats["score_d2h_bytes_per_batch"] = score_d2h_bytes(m, self.vocab_size)
        self.stop_ids = set(stop_token_ids(self.tokenizer))  # get_vocab() is a copy: once, here
        return ModelIdentity(name=m.model_name, version=m.model_version, backend="neuron",
                             quantization=m.quantize, synthetic=m.synthetic,
                             policy_version=self.policy.version)

    def infer(self, batch: Batch) -> list[ModelOutput]:
        n, s = self.config.frames_per_video, self.config.frame_size
        clips = [row or Clip(np.zeros((n, s, s, 3), np.uint8), (0,) * n, "padding")
                 for row in batch.rows]
        for clip in clips:
            if getattr(clip.frames, "shape", None) != (n, s, s, 3):
                raise RejectClip(f"clip {clip.ref!r}: frames must be uint8 {(n, s, s, 3)}, got "
                                 f"{getattr(clip.frames, 'shape', None)}", ref=clip.ref)
        self.stats["batches"] += 1
        self.stats["rows"] += batch.real_rows
        with torch.inference_mode():
            features = self.vision(self.pre.model_kwargs([c.frames for c in clips])
                                   ["pixel_values_videos"])
            if self.config.mode == "score":
                return self._score(clips, features)
            return self._generate(clips, features)

    def _prefill(self, ids: tuple[int, ...], features):
        input_ids = torch.tensor([ids] * self.config.batch_size, dtype=torch.long)
        with video_embeddings(self.decoder, self.video_token_id, features):
            return self.decoder.forward(input_ids)

    def _score(self, clips: list[Clip], features) -> list[ModelOutput]:
        prompt = self.prompt
        logits = self._prefill(prompt.input_ids, features)
        logits = logits[:, list(prompt.read_positions), :self.vocab_size]
        table = confidences_from_logits(logits, prompt)
        return [output_from_confidences(self.policy, c, row) for c, row in zip(clips, table)]

    def _generate(self, clips: list[Clip], features) -> list[ModelOutput]:
        ids = self.prompt.input_ids
        rows = len(clips)
        blocker = NgramBlocker(self.config.ngram_size, len(ids), rows) \
            if self.config.ngram_size else None
        sequence = torch.tensor([ids] * rows, dtype=torch.long)
        logits = self._prefill(ids, features)[:, :self.vocab_size]
        ended: list[int | None] = [None] * rows  # generated length where each row stopped
        for step in range(self.config.max_new_tokens):
            if blocker is not None:
                logits = blocker(sequence, logits)
            token = logits.argmax(dim=-1)
            sequence = torch.cat([sequence, token[:, None]], dim=1)
            for r in range(rows):
                looping = blocker is not None and blocker.blocked[r] >= MAX_BLOCKED
                if ended[r] is None and (int(token[r]) in self.stop_ids or looping):
                    ended[r] = step + 1
            if all(e is not None for e in ended) or step + 1 == self.config.max_new_tokens:
                break
            # One decode step at the next cache position for every row (static batch).
            position = torch.tensor([len(ids) + step], dtype=torch.int32)
            logits = self.decoder.forward(token[:, None], cache_ids=position)[:, :self.vocab_size]
        outputs = []
        for clip, row, end in zip(clips, sequence[:, len(ids):].tolist(), ended):
            cut = end or len(row)
            text = self.tokenizer.decode(row[:cut], skip_special_tokens=True)
            outputs.append(output_from_text(self.policy, clip, text, cut))
        return outputs
