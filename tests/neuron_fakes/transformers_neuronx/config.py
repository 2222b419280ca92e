"""``QuantizationConfig`` and ``NeuronConfig`` with the signatures of
src/transformers_neuronx/config.py at 1ade6d7 (lines 29-55 and 148-361).

Options modfleet does not use are accepted with their defaults and refused otherwise
(NotImplementedError), so a change of options shows up in the contract tests.
"""

from typing import List, Optional

from transformers_neuronx.constants import GQA, Layout

valid_dtypes = ["float32", "float16", "bfloat16"]


class QuantizationConfig:
    """The config class that contains all quantization related settings."""

    def __init__(self, quant_dtype='s8', dequant_dtype='f16', quantize_method='vector_dynamic',
                 quantize_attn=True, no_quantize_list=[]):
        assert quant_dtype in ['s8', 'f8e4m3fn'], f"{quant_dtype} not supported"
        assert quantize_method in ['vector_dynamic', 'direct_cast'], \
            f"{quantize_method} not supported"
        self.quant_dtype = quant_dtype
        self.dequant_dtype = dequant_dtype
        self.quantize_method = quantize_method
        self.quantize_attn = quantize_attn
        self.no_quantize_list = no_quantize_list


class NeuronConfig():
    """Neuron configurations for extra features and performance optimizations."""

    def __init__(self, *,
                 sparse_attn=None,
                 quant: Optional[QuantizationConfig] = None,
                 kv_cache_quant=None,
                 continuous_batching=None,
                 attention_layout: Layout = Layout.HSB,
                 collectives_layout: Layout = Layout.HSB,
                 cache_layout: Layout = Layout.SBH,
                 padding_side: str = 'left',
                 group_query_attention: Optional[GQA] = None,
                 sequence_parallel_norm: bool = False,
                 sequence_parallel_norm_threshold: int = 2048,
                 bf16_rms_norm: bool = False,
                 on_device_embedding: bool = False,
                 on_device_generation=None,
                 all_reduce_dtype: Optional[str] = None,
                 cast_logits_dtype: str = 'float32',
                 fuse_qkv: bool = False,
                 qkv_tiling: bool = False,
                 weight_tiling: bool = False,
                 mlp_in_weight_tiling_permute_order: List[int] = [1, 2, 0, 3],
                 mlp_out_weight_tiling_permute_order: List[int] = [1, 2, 0, 3],
                 log_softmax_scores: bool = False,
                 shard_over_sequence: bool = False,
                 output_all_logits: bool = False,
                 attn_output_transposed: bool = False,
                 fused_rmsnorm_qkv: bool = False,
                 fused_rmsnorm_mlp: bool = False,
                 mlp_out_weight_transpose: bool = False,
                 fuse_mlp: bool = False,
                 is_eagle_target: bool = False,
                 is_eagle_draft: bool = False,
                 has_pre_attention_norm: bool = True,
                 compilation_worker_count: Optional[int] = None,
                 duplicate_q_weight_sos: bool = False,
                 **kwargs):
        assert cast_logits_dtype in valid_dtypes, (
            f"The `cast_logits_dtype={cast_logits_dtype}` argument must be one of {valid_dtypes}")
        assert padding_side in ['left', 'right'], (
            f"The `padding_side={padding_side}` argument must be either 'left' or 'right'")
        assert len(kwargs) == 0, f"Unexpected NeuronConfig keyword arguments: {kwargs}"
        unsupported = {"sparse_attn": sparse_attn, "kv_cache_quant": kv_cache_quant,
                       "continuous_batching": continuous_batching,
                       "on_device_embedding": on_device_embedding,
                       "on_device_generation": on_device_generation,
                       "shard_over_sequence": shard_over_sequence,
                       "log_softmax_scores": log_softmax_scores,
                       "is_eagle_target": is_eagle_target, "is_eagle_draft": is_eagle_draft,
                       "sequence_parallel_norm": sequence_parallel_norm,
                       "padding_side='right'": padding_side == 'right'}
        used = [name for name, value in unsupported.items() if value]
        if used:
            raise NotImplementedError(f"contract fake: {', '.join(used)} not implemented")
        self.quant = quant
        self.cast_logits_dtype = cast_logits_dtype
        self.attention_layout = attention_layout
        self.collectives_layout = collectives_layout
        self.cache_layout = cache_layout
        self.padding_side = padding_side
        self.lhs_aligned = padding_side == 'right'
        self.group_query_attention = group_query_attention
        self.on_device_embedding = on_device_embedding
        self.on_device_generation = on_device_generation
        self.continuous_batching = continuous_batching
        self.output_all_logits = output_all_logits
        self.fuse_qkv = fuse_qkv
        self.compilation_worker_count = compilation_worker_count
        self.shard_over_sequence = shard_over_sequence
        self.sequence_parallel_norm = sequence_parallel_norm
        self.is_eagle_target = is_eagle_target
        self.is_eagle_draft = is_eagle_draft

    @property
    def use_2d_cache_ids(self):
        return self.lhs_aligned

    @property
    def vectorize_last_token_id(self):
        return self.lhs_aligned
