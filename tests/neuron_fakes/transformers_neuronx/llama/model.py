"""``LlamaForSampling`` with the signatures of src/transformers_neuronx/llama/model.py at
aws-neuron/transformers-neuronx 1ade6d74224a89fb6366ded52153e2f32781e20d:

- ``__init__(self, config, *, n_positions=2048, batch_size=1, amp='f32', tp_degree=2,
  context_length_estimate=None, context_unroll=None, unroll=None, neuron_config=None,
  prefixed_length=0, **kwargs)`` (line 32), buckets from ``bucket.token_sizes(n_positions)`` and
  ``bucket.context_sizes(context_length_estimate, token_buckets)`` (lines 68-69);
- ``preprocess_and_embed(self, input_ids, cache_ids=None, start_ids=None, **kwargs)`` (line 279);
- ``forward(self, input_ids, cache_ids=None, start_ids=None, last_token_id=None,
  input_embeddings=None, **kwargs)`` (line 290).

The graphs run transformers' ``LlamaModel`` with ``inputs_embeds`` on a copy of the weights cast to
``amp`` (int8 weights, if asked, as a per-output-channel quantize/dequantize round trip), with a KV
cache indexed by ``cache_ids``.  Logits come back ``(vocab padded to tp_degree, tokens, batch)``.

As strict as the SDK where modfleet could go wrong:

- Every decoder graph declares six parameters (layers/transformer.py:76-133: hidden, cache_ids,
  start_ids, last_token_id, block_table, context_lens; for 1-D cache ids ``s32[n_active]``,
  ``s32[batch]``, ``s32[1]``, ``s32[1]``, ``s32[1]``), and decoder.py:2382-2395 hands whatever the
  host passes to the native ParallelExecutor (closed source).  A call with another number, shape
  or kind of inputs fails here with RuntimeError (the executor's own message is not public; the
  text here is ours).  Kinds, not widths: see ``graph_parameters``.
- A weight the checkpoint lacks fails at ``to_neuron`` (module.py:129-140 leaves it without a
  file, and module.py:63-85 never fills it; :80 raises for a key missing from a safetensors file)
  instead of being filled at random as transformers' ``from_pretrained`` would.
"""

from __future__ import annotations

import copy

import torch

from transformers_neuronx import bucket
from transformers_neuronx.base import NeuronModelBase
from transformers_neuronx.config import NeuronConfig
from transformers_neuronx.constants import LAYOUT_HSB

AMP_DTYPES = {"f32": torch.float32, "bf16": torch.bfloat16, "f16": torch.float16}
QUANTIZED = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class LlamaForSampling(NeuronModelBase):

    def __init__(self, config, *, n_positions=2048, batch_size=1, amp='f32', tp_degree=2,
                 context_length_estimate=None, context_unroll=None, unroll=None,
                 neuron_config=None, prefixed_length=0, **kwargs):
        if config.model_type != "llama":
            raise ValueError(f"LlamaForSampling loads llama checkpoints, not {config.model_type}")
        if amp not in AMP_DTYPES:
            raise NotImplementedError(f"contract fake: amp {amp!r}")
        if prefixed_length:
            raise NotImplementedError("contract fake: prefixed_length not implemented")
        self.config = config
        self.config.n_positions, self.config.batch_size = n_positions, batch_size
        self.config.amp, self.config.tp_degree = amp, tp_degree
        self.neuron_config = neuron_config if neuron_config else NeuronConfig()
        self.token_buckets = bucket.token_sizes(n_positions)
        self.context_buckets = bucket.context_sizes(context_length_estimate, self.token_buckets)
        self.batch_sizes = bucket.batch_sizes(batch_size)
        self.context_batch_sizes = self.batch_sizes
        self.chkpt_model = None
        self._compiled = False
        self.token_calls_in_prefill = 0  # prompt tokens that no context bucket covered

    def load_state_dict_dir(self, pretrained_model_path):
        from transformers import LlamaForCausalLM

        # The checkpoint model on the host: TNx keeps its embed_tokens there (off-device
        # embedding) and moves every other weight to the NeuronCores in to_neuron().
        self.chkpt_model, info = LlamaForCausalLM.from_pretrained(pretrained_model_path,
                                                                 output_loading_info=True)
        # module.py:63-85: the host copy is materialised into float32 parameters, whatever the
        # checkpoint's dtype.
        self.chkpt_model.float().eval()
        self._missing_weights = sorted(info["missing_keys"])

    def _materialize(self):
        if self._missing_weights:  # module.py:80
            raise FileNotFoundError(f"Could not find a weight for {self._missing_weights[0]} in "
                                    f"the checkpoint ({len(self._missing_weights)} missing)")

    def load_weights(self):
        self._materialize()
        device = copy.deepcopy(self.chkpt_model).to(AMP_DTYPES[self.config.amp])
        if self.neuron_config.quant is not None:
            _int8_round_trip(device.model)
        vocab = device.lm_head.weight.shape[0]
        padded = -(-vocab // self.config.tp_degree) * self.config.tp_degree
        head = torch.zeros(padded, device.lm_head.weight.shape[1], dtype=device.lm_head.weight.dtype)
        head[:vocab] = device.lm_head.weight.detach()
        self._device = _Device(device.model, head, max(self.token_buckets), self._is_bsh())
        hidden = self.config.hidden_size
        self.decoder_lm_head = _TokenGraph(self._device, self.token_buckets, self.batch_sizes,
                                           hidden)
        self.decoder_lm_head_for_context = {
            (estimate, b): _ContextGraph(self._device, estimate, b,
                                         self.neuron_config.output_all_logits, hidden)
            for estimate in self.context_buckets for b in self.context_batch_sizes}

    def _graph_specs(self) -> dict:
        common = {"hidden": self.config.hidden_size, "layers": self.config.num_hidden_layers,
                  "heads": self.config.num_attention_heads,
                  "kv_heads": getattr(self.config, "num_key_value_heads", None),
                  "intermediate": self.config.intermediate_size,
                  "vocab": self.config.vocab_size,
                  "amp": self.config.amp, "tp_degree": self.config.tp_degree,
                  "quant": self.neuron_config.quant is not None,
                  "layout": str(self.neuron_config.attention_layout),
                  "output_all_logits": self.neuron_config.output_all_logits}
        specs = {f"token-{n}x{b}": {**common, "n_positions": n, "batch": b}
                 for n in self.token_buckets for b in self.batch_sizes}
        specs.update({f"context-{e}x{b}": {**common, "estimate": e, "batch": b}
                      for e in self.context_buckets for b in self.context_batch_sizes})
        return specs

    def reset(self):
        self._device.cache = None

    def preprocess_and_embed(self, input_ids, cache_ids=None, start_ids=None, **kwargs):
        padded_inputs, *rst = self._preprocess(input_ids, start_ids=start_ids, cache_ids=cache_ids,
                                               **kwargs)
        input_embeddings = self.chkpt_model.model.embed_tokens(padded_inputs)
        if self.neuron_config.attention_layout == LAYOUT_HSB:
            input_embeddings = input_embeddings.transpose(0, -1).contiguous()
        return padded_inputs, input_embeddings, *rst

    def forward(self, input_ids, cache_ids=None, start_ids=None, last_token_id=None,
                input_embeddings=None, **kwargs):
        if not self._compiled:
            raise RuntimeError("forward() before to_neuron()")
        original_input_ids = input_ids
        if last_token_id is not None:  # preprocess_and_embed() has already been invoked
            rst = cache_ids, start_ids, last_token_id
        else:
            input_ids, input_embeddings, *rst = self.preprocess_and_embed(input_ids, cache_ids,
                                                                          start_ids, **kwargs)
        inputs = input_embeddings if input_embeddings is not None else input_ids
        with torch.inference_mode():
            logits = self._forward(inputs, *rst)
        return self._postprocess(original_input_ids, logits, start_ids=start_ids, **kwargs)


def _int8_round_trip(model) -> None:
    """QuantizationConfig(quant_dtype='s8', quantize_method='vector_dynamic'): int8 weights with
    one scale per output channel, dequantized to the compute dtype."""
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear) and name.rsplit(".", 1)[-1] in QUANTIZED:
                weight = module.weight.float()
                scale = weight.abs().amax(dim=1, keepdim=True).clamp(min=1e-8) / 127.0
                module.weight.copy_((weight / scale).round().clamp(-127, 127) * scale)


class _Device:
    """The weights on the "NeuronCores" and the KV cache, shared by every graph (one model)."""

    def __init__(self, body, head, max_positions: int, bsh: bool) -> None:
        self.body, self.head, self.max_positions, self.bsh = body, head, max_positions, bsh
        self.cache = None  # transformers cache covering positions [0, cache length)

    def run(self, hidden, cache_ids, start_ids):
        """Hidden in the attention layout, tokens at ``cache_ids``; logits (vocab, tokens, batch)."""
        from transformers import DynamicCache

        embeds = hidden if self.bsh else hidden.permute(2, 1, 0)  # HSB -> BSH
        embeds = embeds.to(self.head.dtype)
        batch, tokens, _ = embeds.shape
        first = int(cache_ids[0])
        if int(cache_ids[-1]) >= self.max_positions:
            raise ValueError(f"cache_ids {int(cache_ids[-1])} beyond n_positions "
                             f"{self.max_positions}")
        if first == 0:
            self.cache = DynamicCache()
        else:
            held = 0 if self.cache is None else self.cache.get_seq_length()
            if first > held:
                raise ValueError(f"cache_ids start at {first}, but positions {held}..{first - 1} "
                                 f"were never written")
            if first < held:  # positions >= first are rewritten, as the device cache is
                # A negative count removes from the end in transformers 4.47 and 5.x alike.
                self.cache.crop(first - held)
        positions = cache_ids.long().view(1, -1).expand(batch, -1)
        keys = torch.arange(first + tokens).view(1, -1)
        mask = (keys >= start_ids.long().view(-1, 1)).long()  # left padding before start_ids
        out = self.body(inputs_embeds=embeds, position_ids=positions, attention_mask=mask,
                        past_key_values=self.cache, use_cache=True)
        self.cache = out.past_key_values
        logits = out.last_hidden_state @ self.head.T  # (batch, tokens, vocab padded)
        return logits.permute(2, 1, 0)


def graph_parameters(batch: int, n_active: int, hidden: int, bsh: bool) -> tuple:
    """(name, shape, kind) of the six parameters of a decoder graph, layers/transformer.py:76-133
    at 1ade6d7 (1-D cache ids, no paged attention, no chunked prefill).

    The graph declares ``amp`` for hidden and ``s32`` for the rest; the kind checked is floating
    or integer, because TNx's own host code passes other widths to those parameters and must work:
    float32 embeddings (module.py:63-85) and int64 ``block_tables``/``context_lens``
    (base.py:345-346, ``torch.tensor([0])``), so the executor converts widths.
    """
    hidden_shape = (batch, n_active, hidden) if bsh else (hidden, n_active, batch)
    return (("hidden", hidden_shape, "float"), ("cache_ids", (n_active,), "int"),
            ("start_ids", (batch,), "int"), ("last_token_id", (1,), "int"),
            ("block_table", (1,), "int"), ("context_lens", (1,), "int"))


def check_inputs(graph: str, parameters: tuple, inputs: tuple) -> None:
    """Refuse what the native executor cannot bind: another count, shape or dtype of inputs."""
    if len(inputs) != len(parameters):
        raise RuntimeError(f"{graph}: the compiled graph declares {len(parameters)} parameters "
                           f"({', '.join(p[0] for p in parameters)}), the executor was given "
                           f"{len(inputs)} inputs")
    for (name, shape, dtype), tensor in zip(parameters, inputs):
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != shape:
            raise RuntimeError(f"{graph}: parameter {name} is {list(shape)}, got "
                               f"{list(getattr(tensor, 'shape', [])) or type(tensor).__name__}")
        if tensor.is_floating_point() != (dtype == "float") or tensor.is_complex():
            kind = "amp floating" if dtype == "float" else "s32"
            raise RuntimeError(f"{graph}: parameter {name} is {kind}, got {tensor.dtype}")


class _TokenGraph:
    """The token-generation graphs (one per n_positions bucket): one token per row."""

    def __init__(self, device: _Device, buckets, batch_sizes, hidden: int) -> None:
        self.device, self.buckets, self.batch_sizes = device, buckets, batch_sizes
        self.hidden = hidden
        self.calls = 0
        self.d2h_bytes = 0  # logits brought to the host, as the graph returns them

    def __call__(self, hidden, *args):
        cache_ids, start_ids = args[0], args[1]
        if start_ids.shape[0] not in self.batch_sizes:
            raise ValueError(f"Model not compiled for batch_size : {start_ids.shape[0]}. "
                             f"Acceptable batch_size is one of the following {self.batch_sizes}")
        check_inputs("token graph", graph_parameters(start_ids.shape[0], 1, self.hidden,
                                                     self.device.bsh), (hidden, *args))
        bucket.find(self.buckets, int(cache_ids[0]) + 1)  # the bucket the runtime would pick
        self.calls += 1
        logits = self.device.run(hidden, cache_ids, start_ids)
        self.d2h_bytes += logits.numel() * logits.element_size()
        return logits


class _ContextGraph:
    """A context-encoding graph for ``estimate`` tokens: logits at ``last_token_id`` only, or at
    every position with ``output_all_logits``."""

    def __init__(self, device: _Device, estimate: int, batch_size: int, all_logits: bool,
                 hidden: int) -> None:
        self.device, self.estimate, self.batch_size = device, estimate, batch_size
        self.all_logits, self.hidden = all_logits, hidden
        self.calls = 0
        self.d2h_bytes = 0  # logits brought to the host, as the graph returns them

    def __call__(self, hidden, *args):
        check_inputs(f"context graph {self.estimate}x{self.batch_size}",
                     graph_parameters(self.batch_size, self.estimate, self.hidden,
                                      self.device.bsh), (hidden, *args))
        cache_ids, start_ids, last_token_id = args[0], args[1], args[2]
        self.calls += 1
        logits = self.device.run(hidden, cache_ids, start_ids)
        if not self.all_logits:  # layers/transformer.py:263-265: the last token's only
            logits = logits[:, int(last_token_id[0]):int(last_token_id[0]) + 1, :]
        self.d2h_bytes += logits.numel() * logits.element_size()  # what reaches the host
        return logits
