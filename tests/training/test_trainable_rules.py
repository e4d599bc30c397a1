"""Trainability rules (paper Table 7) over openpi paths: which leaves each method trains, head masks."""

import numpy as np
import pytest

from robosteer_assets.training import trainable as T
from robosteer_assets.vla import model as M
from robosteer_assets.vla.config import get_config

L = "PaliGemma/llm/layers/"


def _paths(method, model="pi0_micro"):
    cfg = T.lora_config(get_config(model), method)
    return cfg, sorted(M.flatten(M.param_shapes(cfg)))


def test_steering_trains_selected_qo_lora_ffn_lora_norms_projections_only():
    cfg, paths = _paths("steering")
    tr = {p for p in paths if T.is_trainable(p, "steering")}
    assert tr == {
        f"{L}attn/q_einsum/lora_a", f"{L}attn/q_einsum/lora_b", f"{L}attn/attn_vec_einsum/lora_a",
        f"{L}attn/attn_vec_einsum/lora_b", f"{L}mlp/gating_einsum_lora_a", f"{L}mlp/gating_einsum_lora_b",
        f"{L}mlp/linear_lora_a", f"{L}mlp/linear_lora_b", f"{L}pre_attention_norm/scale", f"{L}pre_ffw_norm/scale",
        "PaliGemma/llm/final_norm/scale",
        *(f"{m}/{k}" for m in ("action_in_proj", "action_out_proj", "state_proj", "action_time_mlp_in",
                               "action_time_mlp_out") for k in ("kernel", "bias"))}
    # no K/V LoRA and no action-expert LoRA exist at all; B starts at zero
    assert not any("kv_einsum/lora" in p or ("_1" in p and "lora" in p) for p in paths)
    assert cfg.lora.init_b == "zeros" and cfg.lora.rank == 8 and cfg.lora.scaling == 1.0
    frozen = set(paths) - tr
    assert {f"{L}attn/q_einsum/w", f"{L}attn/kv_einsum/w", f"{L}attn/q_einsum_1/w", f"{L}mlp/gating_einsum",
            "PaliGemma/llm/embedder/input_embedding", "PaliGemma/img/head/kernel"} <= frozen


def test_pi05_reads_dense_norm_adapters_as_time_mlp_and_freezes_adarms():
    _, paths = _paths("steering", "pi05_micro")
    tr = {p for p in paths if T.is_trainable(p, "steering")}
    assert {"time_mlp_in/kernel", "time_mlp_out/kernel", f"{L}pre_ffw_norm/scale"} <= tr
    assert not any("Dense_0" in p for p in tr) and any("Dense_0" in p for p in paths)
    assert not any("state_proj" in p for p in paths)


def test_full_lora_is_openpi_setup():
    cfg, paths = _paths("full_lora")
    tr = {p for p in paths if T.is_trainable(p, "full_lora")}
    lora = {p for p in paths if "lora" in p}
    assert len(lora) == 20 and lora <= tr  # q/kv/attn_vec/ffn x 2 experts (openpi_facts §1.3)
    assert {p for p in paths if p.startswith("PaliGemma/img/")} <= tr
    assert not any(p.endswith("/w") or p.endswith("gating_einsum") or "embedder" in p or "norm" in p
                   for p in tr if p.startswith("PaliGemma/llm"))
    assert (cfg.lora.rank, cfg.lora.alpha, cfg.action_expert_lora.rank) == (16, 16.0, 32)


def test_steering_full_trains_base_qo_weights_not_lora():
    _, paths = _paths("steering_full")
    tr = {p for p in paths if T.is_trainable(p, "steering_full")}
    assert {f"{L}attn/q_einsum/w", f"{L}attn/attn_vec_einsum/w"} <= tr
    assert not any("attn" in p and "lora" in p for p in paths)
    assert f"{L}attn/kv_einsum/w" not in tr and f"{L}attn/q_einsum_1/w" not in tr


def test_head_masks_and_counts():
    base = get_config("pi0_micro")
    cfg = T.lora_config(base, "steering")
    m = T.head_masks(cfg, [(0, 1), (1, 6)])
    assert set(m) == set(T.HEAD_MASKED)
    for v in m.values():
        assert v.shape == (2, 8, 1, 1) and v.sum() == 2 and v[0, 1, 0, 0] == 1 and v[1, 6, 0, 0] == 1
    shapes = M.flatten(M.param_shapes(cfg))
    all_heads = T.trainable_count(shapes, "steering", cfg)
    two = T.trainable_count(shapes, "steering", cfg, [(0, 1), (1, 6)])
    per_head = sum(int(np.prod(shapes[p].shape)) for p in T.HEAD_MASKED) // 16
    assert all_heads - two == 14 * per_head
    with pytest.raises(ValueError, match=r"outside the model's 2 layers x 8 heads"):
        T.head_masks(cfg, [(2, 0)])
    with pytest.raises(ValueError, match="finetuning method"):
        T.lora_config(base, "everything")
