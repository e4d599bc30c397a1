"""Configs speak openpi's variant vocabulary; parameter trees equal openpi's."""

import pytest

from robosteer_assets.vla import config as C
from robosteer_assets.vla import model as M

# openpi_facts.md §1.2: every path and shape of the real trees (ints are the expert widths etc.)
PI0_SHARED = {
    "PaliGemma/img/Transformer/encoder_norm/bias": (1152,),
    "PaliGemma/img/Transformer/encoder_norm/scale": (1152,),
    "PaliGemma/img/Transformer/encoderblock/LayerNorm_0/bias": (27, 1152),
    "PaliGemma/img/Transformer/encoderblock/LayerNorm_0/scale": (27, 1152),
    "PaliGemma/img/Transformer/encoderblock/LayerNorm_1/bias": (27, 1152),
    "PaliGemma/img/Transformer/encoderblock/LayerNorm_1/scale": (27, 1152),
    "PaliGemma/img/Transformer/encoderblock/MlpBlock_0/Dense_0/bias": (27, 4304),
    "PaliGemma/img/Transformer/encoderblock/MlpBlock_0/Dense_0/kernel": (27, 1152, 4304),
    "PaliGemma/img/Transformer/encoderblock/MlpBlock_0/Dense_1/bias": (27, 1152),
    "PaliGemma/img/Transformer/encoderblock/MlpBlock_0/Dense_1/kernel": (27, 4304, 1152),
    "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/key/bias": (27, 16, 72),
    "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/key/kernel": (27, 1152, 16, 72),
    "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/out/bias": (27, 1152),
    "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/out/kernel": (27, 16, 72, 1152),
    "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/query/bias": (27, 16, 72),
    "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/query/kernel": (27, 1152, 16, 72),
    "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/value/bias": (27, 16, 72),
    "PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/value/kernel": (27, 1152, 16, 72),
    "PaliGemma/img/embedding/bias": (1152,),
    "PaliGemma/img/embedding/kernel": (14, 14, 3, 1152),
    "PaliGemma/img/head/bias": (2048,),
    "PaliGemma/img/head/kernel": (1152, 2048),
    "PaliGemma/img/pos_embedding": (1, 256, 1152),
    "PaliGemma/llm/embedder/input_embedding": (257152, 2048),
    "PaliGemma/llm/final_norm/scale": (2048,),
    "PaliGemma/llm/layers/attn/attn_vec_einsum/w": (18, 8, 256, 2048),
    "PaliGemma/llm/layers/attn/attn_vec_einsum_1/w": (18, 8, 256, 1024),
    "PaliGemma/llm/layers/attn/kv_einsum/w": (18, 2, 1, 2048, 256),
    "PaliGemma/llm/layers/attn/kv_einsum_1/w": (18, 2, 1, 1024, 256),
    "PaliGemma/llm/layers/attn/q_einsum/w": (18, 8, 2048, 256),
    "PaliGemma/llm/layers/attn/q_einsum_1/w": (18, 8, 1024, 256),
    "PaliGemma/llm/layers/mlp/gating_einsum": (18, 2, 2048, 16384),
    "PaliGemma/llm/layers/mlp/linear": (18, 16384, 2048),
    "PaliGemma/llm/layers/mlp_1/gating_einsum": (18, 2, 1024, 4096),
    "PaliGemma/llm/layers/mlp_1/linear": (18, 4096, 1024),
    "PaliGemma/llm/layers/pre_attention_norm/scale": (18, 2048),
    "PaliGemma/llm/layers/pre_ffw_norm/scale": (18, 2048),
    "action_in_proj/bias": (1024,),
    "action_in_proj/kernel": (32, 1024),
    "action_out_proj/bias": (32,),
    "action_out_proj/kernel": (1024, 32),
}
PI0_ONLY = {
    "PaliGemma/llm/final_norm_1/scale": (1024,),
    "PaliGemma/llm/layers/pre_attention_norm_1/scale": (18, 1024),
    "PaliGemma/llm/layers/pre_ffw_norm_1/scale": (18, 1024),
    "action_time_mlp_in/bias": (1024,),
    "action_time_mlp_in/kernel": (2048, 1024),
    "action_time_mlp_out/bias": (1024,),
    "action_time_mlp_out/kernel": (1024, 1024),
    "state_proj/bias": (1024,),
    "state_proj/kernel": (32, 1024),
}
PI05_ONLY = {
    "PaliGemma/llm/final_norm_1/Dense_0/bias": (3072,),
    "PaliGemma/llm/final_norm_1/Dense_0/kernel": (1024, 3072),
    "PaliGemma/llm/layers/pre_attention_norm_1/Dense_0/bias": (18, 3072),
    "PaliGemma/llm/layers/pre_attention_norm_1/Dense_0/kernel": (18, 1024, 3072),
    "PaliGemma/llm/layers/pre_ffw_norm_1/Dense_0/bias": (18, 3072),
    "PaliGemma/llm/layers/pre_ffw_norm_1/Dense_0/kernel": (18, 1024, 3072),
    "time_mlp_in/bias": (1024,),
    "time_mlp_in/kernel": (1024, 1024),
    "time_mlp_out/bias": (1024,),
    "time_mlp_out/kernel": (1024, 1024),
}
LORA_2B = {  # §1.3, pi0 with gemma_2b_lora + gemma_300m_lora
    "PaliGemma/llm/layers/attn/attn_vec_einsum/lora_a": (18, 8, 256, 16),
    "PaliGemma/llm/layers/attn/attn_vec_einsum/lora_b": (18, 8, 16, 2048),
    "PaliGemma/llm/layers/attn/attn_vec_einsum_1/lora_a": (18, 8, 256, 32),
    "PaliGemma/llm/layers/attn/attn_vec_einsum_1/lora_b": (18, 8, 32, 1024),
    "PaliGemma/llm/layers/attn/kv_einsum/lora_a": (18, 2, 1, 2048, 16),
    "PaliGemma/llm/layers/attn/kv_einsum/lora_b": (18, 2, 1, 16, 256),
    "PaliGemma/llm/layers/attn/kv_einsum_1/lora_a": (18, 2, 1, 1024, 32),
    "PaliGemma/llm/layers/attn/kv_einsum_1/lora_b": (18, 2, 1, 32, 256),
    "PaliGemma/llm/layers/attn/q_einsum/lora_a": (18, 8, 2048, 16),
    "PaliGemma/llm/layers/attn/q_einsum/lora_b": (18, 8, 16, 256),
    "PaliGemma/llm/layers/attn/q_einsum_1/lora_a": (18, 8, 1024, 32),
    "PaliGemma/llm/layers/attn/q_einsum_1/lora_b": (18, 8, 32, 256),
    "PaliGemma/llm/layers/mlp/gating_einsum_lora_a": (18, 2, 2048, 16),
    "PaliGemma/llm/layers/mlp/gating_einsum_lora_b": (18, 2, 16, 16384),
    "PaliGemma/llm/layers/mlp/linear_lora_a": (18, 16384, 16),
    "PaliGemma/llm/layers/mlp/linear_lora_b": (18, 16, 2048),
    "PaliGemma/llm/layers/mlp_1/gating_einsum_lora_a": (18, 2, 1024, 32),
    "PaliGemma/llm/layers/mlp_1/gating_einsum_lora_b": (18, 2, 32, 4096),
    "PaliGemma/llm/layers/mlp_1/linear_lora_a": (18, 4096, 32),
    "PaliGemma/llm/layers/mlp_1/linear_lora_b": (18, 32, 1024),
}


def _shapes(name, **kw):
    return {k: tuple(v.shape) for k, v in M.flatten(M.param_shapes(C.get_config(name, **kw))).items()}


def test_pi0_tree_equals_openpi():
    got = _shapes("pi0")
    assert got == {**PI0_SHARED, **PI0_ONLY}
    assert M.param_count(M.param_shapes(C.get_config("pi0"))) == 3_238_048_528


def test_pi05_tree_equals_openpi():
    got = _shapes("pi05")
    assert got == {**PI0_SHARED, **PI05_ONLY}
    assert M.param_count(M.param_shapes(C.get_config("pi05"))) == 3_353_433_872


def test_lora_tree_equals_openpi():
    got = _shapes("pi0_lora")
    assert len(got) == 70
    assert {k: v for k, v in got.items() if "lora" in k} == LORA_2B


@pytest.mark.parametrize("name,total", [("pi0_dummy", 429_337_808), ("pi05_dummy", 429_443_344)])
def test_dummy_trees(name, total):
    got = _shapes(name)
    assert got["PaliGemma/llm/layers/attn/q_einsum/w"] == (4, 8, 64, 16)
    assert got["PaliGemma/llm/layers/attn/kv_einsum_1/w"] == (4, 2, 1, 64, 16)
    assert got["PaliGemma/img/head/kernel"] == (1152, 64)
    assert M.param_count(M.param_shapes(C.get_config(name))) == total


def test_any_combination_builds_dummy_with_ti16():
    cfg = C.Pi0Config(paligemma_variant="dummy", action_expert_variant="dummy", siglip_variant="Ti/16",
                      dtype="float32")
    shapes = M.flatten(M.param_shapes(cfg))
    assert shapes["PaliGemma/img/Transformer/encoderblock/MultiHeadDotProductAttention_0/query/kernel"].shape == (
        12, 192, 3, 64)
    assert shapes["PaliGemma/img/pos_embedding"].shape == (1, 196, 192)
    assert 22_000_000 < M.param_count(M.param_shapes(cfg)) < 23_000_000  # ~22.4M, mostly the embedding table


def test_variants_and_errors():
    assert C.siglip_variant("So400m/14").num_patches == 256
    assert C.gemma_variant("gemma_2b").width == 2048
    assert C.get_config("pi05").max_token_len == 200 and C.get_config("pi0").max_token_len == 48
    with pytest.raises(ValueError, match="did you mean"):
        C.get_config("pi0_tinny")
    with pytest.raises(ValueError, match="share"):
        C.Pi0Config(paligemma_variant="gemma_2b", action_expert_variant="dummy")
    with pytest.raises(ValueError, match="SigLIP"):
        C.siglip_variant("Huge/14")
    cfg = C.get_config("pi0_tiny", lora=C.LoRAConfig(8, 8.0, frozenset({"q", "attn_vec", "ffn"}), init_b="zeros"))
    assert C.Pi0Config.from_dict(cfg.to_dict()) == cfg


def test_field_errors_name_the_field():
    with pytest.raises(ValueError, match="action_horizon"):
        C.get_config("pi0_tiny", action_horizon=0)
    with pytest.raises(ValueError, match="dtype"):
        C.get_config("pi0_tiny", dtype="float16")
    with pytest.raises(ValueError, match="init_b"):
        C.LoRAConfig(4, 4.0, init_b="uniform")
    with pytest.raises(ValueError, match="unknown fields"):
        C.Pi0Config.from_dict({**C.get_config("pi0").to_dict(), "horizon": 3})
    assert C.get_config("pi0_droid").action_horizon == 10 and C.get_config("pi05_droid").action_horizon == 15
    lora = C.get_config("pi0_lora")
    assert (lora.llm.lora.rank, lora.llm.lora.alpha, lora.expert.lora.rank) == (16, 16.0, 32)
