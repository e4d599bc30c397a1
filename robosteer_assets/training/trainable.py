"""What each finetuning method trains (paper Table 7, B.1; A.2), as path-regex rules over
openpi's parameter paths (``fullmatch``, as openpi's ``nnx_utils.PathRegex``).

``steering`` (Robotic Steering, B.1 / Table 7): LoRA (rank r, default 8, alpha = r,
**B = 0 at init**) on expert 0's ``q_einsum`` and ``attn_vec_einsum``, with *head masks*
so only the selected heads' slices ``lora_a[l, n]`` / ``lora_b[l, n]`` ever change (with
B = 0 the unselected heads' merged weights equal the base exactly). Beside them:

* expert 0's feed-forward through LoRA on ``mlp`` (openpi's LoRA FFN form:
  ``gating_einsum_lora_{a,b}``, ``linear_lora_{a,b}``). We chose the LoRA form because full
  FFN weights would be ~1.81 B parameters for pi0 (18 x 3 x 2048 x 16384), far above the
  paper's 78.8 M, and B.1 says "we update only the LoRA parameters" beside the auxiliary
  modules;
* expert 0's normalisation params ``pre_attention_norm`` / ``pre_ffw_norm`` / ``final_norm``
  ``scale`` (Table 7 "normalisation adapters (scale)" for pi0);
* the action in/out projections, the time-conditioning MLP (pi0 ``action_time_mlp_*``,
  pi0.5 ``time_mlp_*``) and (pi0) the state projection.

Frozen: SigLIP (``PaliGemma/img``), the embedder, every base (non-LoRA) LLM weight, K/V
(``kv_einsum`` gets no LoRA at all: one K/V head is shared by all query heads of a layer),
and the whole action expert (``*_1``: attention, ``mlp_1``, ``*norm_1``).

pi0.5 "normalisation adapters (Dense)" (Table 7): pi0.5's expert-0 norms are plain
``scale`` norms; its only Dense normalisation parameters are the action expert's adaRMS
``*_norm_1/Dense_0``, which Table 7 freezes with the rest of the action expert ("*norm_1"
frozen) and which alone would be 116 M parameters (> the paper's 74.6 M total). We read the
entry as the Dense layers that *drive* the adaRMS modulation, pi0.5's ``time_mlp_in`` /
``time_mlp_out`` (which is also why Table 7 lists no separate time MLP for pi0.5), plus
expert 0's norm scales — i.e. the same rule set as pi0 minus the state projection (absent).

``full_lora`` (the official pi0 / pi0.5 LoRA setup the paper compares with): openpi's
``gemma_2b_lora`` (rank 16, alpha 16) + ``gemma_300m_lora`` (rank 32, alpha 32) adapters on
q / kv / attn_vec / ffn of both experts, all heads, openpi's init (A and B ~ N(0, 0.01));
the SigLIP encoder and the projections trainable; base LLM weights (and the embedder)
frozen — openpi's ``get_freeze_filter`` for that variant pair.

``steering_full`` (A.2 / Table 5, "Robotic Steering in full finetuning"): no attention
LoRA; the selected heads' slices of the base ``q_einsum/w[l, n]`` and
``attn_vec_einsum/w[l, n]`` are trained directly (head-masked), plus the same auxiliary
modules as ``steering`` (FFN through LoRA, norms, projections).

``pretrain`` (the base policy, standing in for pi0-DROID's own training): every parameter
trainable, no LoRA, from a freshly initialised tree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import numpy as np

from robosteer_assets.vla.config import LoRAConfig, Pi0Config

METHODS = ("steering", "full_lora", "steering_full", "pretrain")
LAYERS = "PaliGemma/llm/layers/"
# leaves whose head axis (1) is masked to the selected heads, per method
HEAD_MASKED_LEAVES = {
    "steering": tuple(f"{LAYERS}attn/{m}/lora_{ab}" for m in ("q_einsum", "attn_vec_einsum") for ab in "ab"),
    "full_lora": (),
    "steering_full": (f"{LAYERS}attn/q_einsum/w", f"{LAYERS}attn/attn_vec_einsum/w"),
    "pretrain": (),
}
HEAD_MASKED = HEAD_MASKED_LEAVES["steering"]  # the documented name (steering's Q/O LoRA leaves)

_PROJECTIONS = r"(action_in_proj|action_out_proj|state_proj|action_time_mlp_in|action_time_mlp_out" \
               r"|time_mlp_in|time_mlp_out)/(kernel|bias)"
_AUX = [
    rf"{LAYERS}mlp/(gating_einsum|linear)_lora_[ab]",  # expert-0 FFN through LoRA
    rf"{LAYERS}(pre_attention_norm|pre_ffw_norm)/scale",  # expert-0 norm scales
    r"PaliGemma/llm/final_norm/scale",
    _PROJECTIONS,
]
RULES: dict[str, tuple[str, ...]] = {
    "steering": (rf"{LAYERS}attn/(q_einsum|attn_vec_einsum)/lora_[ab]", *_AUX),
    "full_lora": (r"PaliGemma/llm/.*lora.*", r"PaliGemma/img/.*", _PROJECTIONS),
    "steering_full": (rf"{LAYERS}attn/(q_einsum|attn_vec_einsum)/w", *_AUX),
    "pretrain": (r".*",),
}


def check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"finetuning method: expected one of {METHODS}, found {method!r}")
    return method


def lora_config(base: Pi0Config, method: str, rank: int = 8, full_lora_init_b: str = "normal") -> Pi0Config:
    """The training-time config: the base config with the method's LoRA adapters.

    steering: rank ``rank`` (alpha = rank, scaling 1) on expert-0 q / attn_vec / ffn, B = 0;
    steering_full: the same FFN LoRA only; full_lora: openpi's gemma_2b_lora / gemma_300m_lora
    (``full_lora_init_b="normal"`` is openpi's init, ``"zeros"`` starts at the base model)."""
    check_method(method)
    if method == "pretrain":
        return base.replace(lora=None, action_expert_lora=None)
    if method == "steering":
        return base.replace(lora=LoRAConfig(rank, float(rank), frozenset({"q", "attn_vec", "ffn"}), init_b="zeros"),
                            action_expert_lora=None)
    if method == "steering_full":
        return base.replace(lora=LoRAConfig(rank, float(rank), frozenset({"ffn"}), init_b="zeros"),
                            action_expert_lora=None)
    return base.replace(lora=LoRAConfig(16, 16.0, init_b=full_lora_init_b),
                        action_expert_lora=LoRAConfig(32, 32.0, init_b=full_lora_init_b))


def is_trainable(path: str, method: str) -> bool:
    """Whether the leaf at openpi path ``path`` is trained by ``method``."""
    return any(re.fullmatch(r, path) for r in RULES[check_method(method)])


def selected_head_matrix(cfg: Pi0Config, heads: Iterable[tuple[int, int]]) -> np.ndarray:
    """[L, N] float32 {0, 1}: 1 at the selected (layer, head) pairs."""
    L, N = cfg.num_layers, cfg.num_heads
    sel = np.zeros((L, N), np.float32)
    for lh in heads:
        try:
            l, h = (int(x) for x in lh)
        except (TypeError, ValueError):
            raise ValueError(f"selected head: expected a (layer, head) pair of ints, found {lh!r}") from None
        if not (0 <= l < L and 0 <= h < N):
            raise ValueError(f"selected head ({l}, {h}) outside the model's {L} layers x {N} heads")
        sel[l, h] = 1.0
    return sel


def head_masks(cfg: Pi0Config, heads: Iterable[tuple[int, int]], method: str = "steering") -> dict[str, np.ndarray]:
    """(b) per-leaf gradient masks: path -> {0,1} float32 ``[L, N, 1, 1]`` broadcastable to the leaf
    (the head axis of every Q / O leaf is axis 1: q ``[L,N,D,*]``, attn_vec ``[L,N,H,*]``)."""
    sel = selected_head_matrix(cfg, heads)
    return {p: sel[:, :, None, None] for p in HEAD_MASKED_LEAVES[check_method(method)]}


def trainable_count(flat_shapes: Mapping, method: str, cfg: Pi0Config, heads=None) -> int:
    """Parameters that can change: trainable leaves, head-masked leaves counted on the selected heads
    only (all heads when ``heads`` is None)."""
    total = 0
    masked = HEAD_MASKED_LEAVES[check_method(method)]
    for p, x in flat_shapes.items():
        if not is_trainable(p, method):
            continue
        n = int(np.prod(x.shape))
        if p in masked and heads is not None:
            n = n // (cfg.num_layers * cfg.num_heads) * len({tuple(h) for h in heads})
        total += n
    return total
