"""What each finetuning method trains (paper Table 7, B.1), as rules over openpi's paths.

``steering`` (Robotic Steering): LoRA (rank r, B = 0 at init) on expert 0's
``q_einsum`` and ``attn_vec_einsum`` with *head masks* so only the selected heads'
slices (``lora_a[l, n]``, ``lora_b[l, n]``) ever change; expert 0's feed-forward
through LoRA on ``mlp`` (openpi's LoRA FFN form: the full FFN weights would be
~1.8 B parameters for pi0, far above the paper's 78.8 M); expert 0's norm scales;
the action in/out projections, the time MLP and (pi0) the state projection.
Frozen: SigLIP, the embedder, every base weight of the LLM, K/V, and the whole
action expert (``*_1``). Table 7's pi0.5 "normalisation adapters (Dense)" are
read as expert 0's norms (pi0.5's adaRMS Dense layers belong to the action
expert, which Table 7 freezes).

``full_lora`` (the official pi0 LoRA setup the paper compares with): openpi's
``gemma_2b_lora`` + ``gemma_300m_lora`` adapters (all heads; q / kv / attn_vec
+ ffn of both experts), SigLIP trainable, projections trainable; base LLM
weights frozen.
"""

from __future__ import annotations

import re

import numpy as np

from robosteer_assets.vla.config import LoRAConfig, Pi0Config

METHODS = ("steering", "full_lora")
HEAD_MASKED = ("PaliGemma/llm/layers/attn/q_einsum/lora_a", "PaliGemma/llm/layers/attn/q_einsum/lora_b",
               "PaliGemma/llm/layers/attn/attn_vec_einsum/lora_a", "PaliGemma/llm/layers/attn/attn_vec_einsum/lora_b")


def lora_config(base: Pi0Config, method: str, rank: int = 8) -> Pi0Config:
    """The training-time config: the base config plus the method's LoRA adapters."""
    if method == "steering":
        return base.replace(lora=LoRAConfig(rank, float(rank), frozenset({"q", "attn_vec", "ffn"}), init_b="zeros"),
                            action_expert_lora=None)
    if method == "full_lora":  # openpi's gemma_2b_lora / gemma_300m_lora adapters
        return base.replace(lora=LoRAConfig(16, 16.0, init_b="zeros"), action_expert_lora=LoRAConfig(32, 32.0,
                                                                                                   init_b="zeros"))
    raise ValueError(f"finetuning method: expected one of {METHODS}, found {method!r}")


_STEERING = [
    r"PaliGemma/llm/layers/attn/(q_einsum|attn_vec_einsum)/lora_[ab]",
    r"PaliGemma/llm/layers/mlp/(gating_einsum|linear)_lora_[ab]",
    r"PaliGemma/llm/layers/(pre_attention_norm|pre_ffw_norm)/scale",
    r"PaliGemma/llm/final_norm/scale",
    r"(action_in_proj|action_out_proj|state_proj|action_time_mlp_in|action_time_mlp_out|time_mlp_in|time_mlp_out)/.*",
]
_FULL_LORA = [r".*lora.*", r"PaliGemma/img/.*",
              r"(action_in_proj|action_out_proj|state_proj|action_time_mlp_in|action_time_mlp_out|time_mlp_in|time_mlp_out)/.*"]


def is_trainable(path: str, method: str) -> bool:
    rules = {"steering": _STEERING, "full_lora": _FULL_LORA}[method]
    return any(re.fullmatch(r, path) for r in rules)


def head_masks(cfg: Pi0Config, heads: list[tuple[int, int]]) -> dict[str, np.ndarray]:
    """Per-leaf {0,1} masks broadcastable to the Q/O LoRA leaves: 1 on the selected heads' slices."""
    L, N = cfg.num_layers, cfg.num_heads
    sel = np.zeros((L, N), np.float32)
    for l, h in heads:
        if not (0 <= l < L and 0 <= h < N):
            raise ValueError(f"selected head ({l}, {h}) outside the model's {L} layers x {N} heads")
        sel[l, h] = 1.0
    return {p: sel[:, :, None, None] for p in HEAD_MASKED}


def trainable_count(flat_shapes: dict, method: str, cfg: Pi0Config, heads=None) -> int:
    """Parameters that can change: trainable leaves, Q/O LoRA counted on the selected heads only."""
    total = 0
    for p, x in flat_shapes.items():
        if not is_trainable(p, method):
            continue
        n = int(np.prod(x.shape))
        if method == "steering" and p in HEAD_MASKED and heads is not None:
            n = n // (cfg.num_layers * cfg.num_heads) * len(heads)
        total += n
    return total
