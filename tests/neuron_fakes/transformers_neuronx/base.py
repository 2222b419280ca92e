"""``NeuronModelBase``: the host-side flow of src/transformers_neuronx/base.py and module.py at
aws-neuron/transformers-neuronx 1ade6d74224a89fb6366ded52153e2f32781e20d, over CPU "graphs".

Copied in behaviour (static batching, left padding, no speculation): ``from_pretrained``
(module.py:396), ``save``/``load``/``to_neuron`` (base.py:39-89), ``context`` (base.py:213),
``_prepare_for_par_ctx_rhs_padding`` (base.py:326), ``_pad_cache_ids`` (base.py:452),
``_preprocess`` (base.py:589), ``_postprocess`` (base.py:613), ``_cast_logits`` (base.py:641) and
``_forward`` (base.py:700).  ``to_neuron`` takes the process's NeuronCores (fake_nrt.py);
``save``/``load`` name each NEFF by the hash of its graph as base.py:765-797 does, so artifacts
compiled for another configuration are not found.  The device graphs are ``_ContextGraph`` and
``_TokenGraph`` in llama/model.py: they return logits as the device does, ``(vocab, tokens,
batch)``.
"""

from __future__ import annotations

import hashlib
import json
import os

import torch
import torch.nn.functional as F

import fake_nrt
from transformers_neuronx import bucket
from transformers_neuronx.constants import LAYOUT_BSH



def hash_hlo(spec: dict) -> str:
    """base.py:792-797: the first 20 hex digits of the HLO's SHA-256, plus ``.neff``; here the
    HLO is the graph's description (shapes, dtypes, options), which is what decides it."""
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
    return digest[:20] + ".neff"


class NeuronModelBase:
    """What the Llama model class builds on: weights, compiled graphs, the forward flow."""

    @classmethod
    def from_pretrained(cls, pretrained_model_path, *model_args, **kwargs):
        # module.py:398 _sanity_check
        context_length_estimate = kwargs.get("context_length_estimate", None)
        n_positions = kwargs.get("n_positions", 2048)
        max_n_pos = max(n_positions) if isinstance(n_positions, list) else n_positions
        max_cle = (max(context_length_estimate) if isinstance(context_length_estimate, list)
                   else context_length_estimate)
        if isinstance(max_n_pos, int) and isinstance(max_cle, int):
            assert max_n_pos >= max_cle, \
                f"Max context_length_estimate {max_cle} cannot be more than max n_positions " \
                f"{max_n_pos}."
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(pretrained_model_path)
        model = cls(config, *model_args, **kwargs)
        model.load_state_dict_dir(pretrained_model_path)
        return model

    # ---- serialization (base.py:39-89, 162-177, 765-797) -----------------------------------------

    def save(self, directory, sharded_weights=False):
        assert not sharded_weights, "contract fake: sharded_weights not implemented"
        assert self._compiled, "cannot save a model which has not been successfully compiled"
        if os.path.isfile(directory):
            raise FileExistsError(f'Artifacts should be saved to a directory. '
                                  f'Found existing file: {directory}')
        os.makedirs(directory, exist_ok=True)
        # base.py:768-773: one file per kernel, named by the hash of its HLO (hash_hlo, :792-797).
        for spec in self._graph_specs().values():
            with open(os.path.join(directory, hash_hlo(spec)), "w") as handle:
                json.dump(spec, handle)

    def load(self, directory):
        self._compiled_artifacts_directory = directory

    def to_neuron(self):
        fake_nrt.claim()  # base.py:80 ops.init(): the runtime takes this process's NeuronCores
        self.load_weights()
        directory = getattr(self, "_compiled_artifacts_directory", None)
        if directory is not None:
            self._load_compiled_artifacts(directory)
        self._compiled = True

    def _load_compiled_artifacts(self, directory):
        if not os.path.isdir(directory):
            raise FileNotFoundError(f'Did not find directory: {directory}.')
        # base.py:775-785: the NEFF of every kernel the current configuration builds is looked up
        # by its HLO's hash; artifacts saved for another configuration have other names.
        for spec in self._graph_specs().values():
            if not os.path.isfile(os.path.join(directory, hash_hlo(spec))):
                raise FileNotFoundError(
                    'Could not find a matching NEFF for your HLO in this directory. Ensure that '
                    'the model you are trying to load is the same type and has the same '
                    'parameters as the one you saved or call "save" on this model to '
                    'reserialize it.')

    # ---- forward flow ---------------------------------------------------------------------------

    def _prepare_for_par_ctx_rhs_padding(self, input_ids, cache_ids, start_ids=None, **kwargs):
        batch_size, context_length = input_ids.shape
        block_tables = torch.tensor([0])
        context_lens = torch.tensor([0])
        last_token_id = torch.as_tensor([0], dtype=torch.int32)
        if context_length == 1:
            return input_ids, cache_ids, last_token_id, block_tables, context_lens
        if cache_ids is not None and cache_ids.flatten()[0].item() > 0:
            raise NotImplementedError("contract fake: speculative forward not implemented")
        estimate = bucket.find(self.context_buckets, context_length)
        if estimate:
            last_token_id = torch.as_tensor([min(context_length - 1, estimate - 1)],
                                            dtype=torch.int32)
            if context_length < estimate:
                input_ids = F.pad(input_ids, (0, estimate - context_length))
                cache_ids = self._pad_cache_ids(cache_ids, batch_size, context_length, estimate)
        return input_ids, cache_ids, last_token_id, block_tables, context_lens

    def _pad_cache_ids(self, cache_ids, batch_size, context_length, estimate):
        if cache_ids is None:
            return torch.arange(estimate, dtype=torch.int32)
        start_idx = cache_ids[-1].item() + 1
        end_idx = estimate + start_idx - context_length
        pad_elements = torch.arange(start_idx, end_idx, dtype=torch.int32)
        cache_ids_pad = torch.concat([cache_ids, pad_elements], dim=0)
        return torch.minimum(cache_ids_pad, torch.tensor(estimate - 1, dtype=torch.int32))

    def _preprocess(self, input_ids, start_ids=None, cache_ids=None, **kwargs):
        input_ids, cache_ids, last_token_id, block_tables, context_lens = \
            self._prepare_for_par_ctx_rhs_padding(input_ids, cache_ids, start_ids, **kwargs)
        batch_size, context_length = input_ids.shape
        if start_ids is None:
            start_ids = torch.zeros(batch_size, dtype=torch.int32)
        if cache_ids is None:
            cache_ids = torch.arange(context_length, dtype=torch.int32)
        return input_ids, cache_ids, start_ids, last_token_id, block_tables, context_lens

    def _postprocess(self, input_ids, logits, start_ids=None, **kwargs):
        if start_ids is None or (self.neuron_config.output_all_logits and logits.shape[1] > 1):
            return logits
        if not self.neuron_config.lhs_aligned or input_ids.shape[-1] > 1:
            return logits
        raise NotImplementedError("contract fake: lhs-aligned batches not implemented")

    def _cast_logits(self, logits):
        logits_dtype = torch.float32
        if self.neuron_config and self.neuron_config.cast_logits_dtype is not None:
            logits_dtype = getattr(torch, self.neuron_config.cast_logits_dtype)
        return logits.to(logits_dtype)

    def decode(self, hidden, *args):
        return self.decoder_lm_head(hidden, *args)

    def context(self, hidden, cache_ids, start_ids, last_token_id, *rest):
        context_length = hidden.shape[1]
        batch_size = start_ids.shape[0]
        all_logits = []
        current = 0
        estimate = bucket.find(self.context_buckets, context_length)
        if estimate is not None:
            hidden_context = hidden
            cache_context = cache_ids
            if context_length > estimate:
                current = estimate
                hidden_context = hidden[:, :estimate]
                cache_context = cache_ids[:estimate]
            elif context_length < estimate:
                raise ValueError(f"context_length ({context_length}) shouldn't be smaller than "
                                 f"estimate ({estimate})")
            else:
                current = estimate
            if current == estimate:
                model = self.decoder_lm_head_for_context[estimate, batch_size]
                logits = model(hidden_context, cache_context, start_ids, last_token_id, *rest)
                if self.neuron_config.output_all_logits:
                    all_logits.append(logits[:, :last_token_id + 1, :])
        # The leftovers no context bucket covers go one token per device call (base.py:281).
        for i in range(current, context_length):
            cache_ids = torch.as_tensor([i], dtype=torch.int32)
            hidden_slice = hidden[:, i:i + 1].contiguous()
            logits = self.decoder_lm_head(hidden_slice, cache_ids, start_ids, last_token_id, *rest)
            self.token_calls_in_prefill += 1
            if self.neuron_config.output_all_logits:
                all_logits.append(logits)
        if all_logits:
            logits = torch.cat(all_logits, dim=1)
        return logits

    def _forward(self, hidden, *args):
        _, context_length, *_ = hidden.shape
        if context_length > 1:
            logits = self.context(hidden, *args)
        else:
            logits = self.decode(hidden, *args)
        logits = self._cast_logits(logits)
        if self.neuron_config.output_all_logits and context_length > 1:
            logits = logits.permute(2, 1, 0)
        else:
            logits = logits[:self.config.vocab_size, -1, :]
            logits = logits.transpose(0, 1)
        return logits

    def _is_bsh(self) -> bool:
        return self.neuron_config.attention_layout == LAYOUT_BSH
