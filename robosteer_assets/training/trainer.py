"""Selective finetuning (Robotic Steering) and the full-head LoRA baseline.

The base checkpoint's weights are merged into a fresh LoRA-augmented tree (LoRA
leaves new, B = 0, as openpi's weight loader does with ``.*lora.*``); only the
method's trainable leaves (``training.trainable``) are differentiated — the
frozen ones are closed over, so there is no optimizer state for them and no
backward pass through a frozen vision encoder. The optimizer is a mask-aware optax
chain: gradients are multiplied by the head masks before clipping (so the clip
norm only sees the selected heads), then global-norm clip 1.0 and AdamW with
openpi's defaults and the paper's warmup-cosine schedule, and the final updates
are multiplied by the masks again, so the unselected heads' slices (including
AdamW's weight decay) stay bit-identical forever.

Export: LoRA merged into the base weights (no inference overhead) —
``w + (alpha/r) A B`` per head for q / kv / attn_vec, ``w + A B`` for the FFN (openpi's
FFN-LoRA path is unscaled) — saved in openpi's layout with the *base* config, plus
``adapters.npz``, ``selected_heads.json``, ``train_config.json`` and
``loss_curve.json``.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from robosteer_assets.common.atomic import write_text_atomic
from robosteer_assets.common.cancel import raise_if_cancelled
from robosteer_assets.common.progress import get_logger
from robosteer_assets.training import trainable as T

log = get_logger("training")


@dataclass(frozen=True)
class FinetuneConfig:
    """Paper B.3 defaults: 5000 steps, batch 32, warmup 200, peak 2.5e-5, 5000 decay steps, final 2.5e-6;
    AdamW b1 0.9, b2 0.95, eps 1e-8, weight decay 1e-10, clip 1.0 (openpi); LoRA rank 8."""

    method: str = "steering"
    steps: int = 5000
    batch_size: int = 32
    lora_rank: int = 8
    warmup_steps: int = 200
    peak_lr: float = 2.5e-5
    decay_steps: int = 5000
    decay_lr: float = 2.5e-6
    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 1e-10
    clip_norm: float = 1.0
    log_interval: int = 100
    seed: int = 42


def schedule(cfg: FinetuneConfig):
    import optax

    warmup = min(cfg.warmup_steps, max(0, cfg.decay_steps - 1))
    return optax.warmup_cosine_decay_schedule(cfg.peak_lr / (warmup + 1), cfg.peak_lr, warmup,
                                              max(cfg.decay_steps, warmup + 1), cfg.decay_lr)


def mask_aware_optimizer(cfg: FinetuneConfig, masks: dict):
    """optax chain over the trainable leaves: mask grads -> clip -> AdamW -> mask updates.
    ``masks`` maps a trainable leaf's path to a broadcastable {0,1} array (absent = all ones)."""
    import optax

    def apply(tree):
        return {p: (v * masks[p] if p in masks else v) for p, v in tree.items()}

    mask_tx = optax.stateless(lambda updates, params=None: apply(updates))
    return optax.chain(mask_tx, optax.clip_by_global_norm(cfg.clip_norm),
                       optax.adamw(schedule(cfg), b1=cfg.b1, b2=cfg.b2, eps=cfg.eps, weight_decay=cfg.weight_decay),
                       mask_tx)


def merge_lora(lcfg, flat: dict) -> dict:
    """Fold every LoRA pair into its base weight; returns the base tree (no LoRA leaves)."""
    out = {p: np.asarray(v) for p, v in flat.items() if "lora" not in p}
    for e, lora in enumerate((lcfg.llm.lora, lcfg.expert.lora)):
        if lora is None:
            continue
        sfx = "" if e == 0 else "_1"
        base = "PaliGemma/llm/layers/"
        s = lora.scaling
        for name, eq in ((f"attn/q_einsum{sfx}", "lndr,lnrh->lndh"), (f"attn/kv_einsum{sfx}", "lckdr,lckrh->lckdh"),
                         (f"attn/attn_vec_einsum{sfx}", "lnhr,lnrd->lnhd")):
            a = flat.get(f"{base}{name}/lora_a")
            if a is not None:
                out[f"{base}{name}/w"] = out[f"{base}{name}/w"] + s * np.einsum(eq, a, flat[f"{base}{name}/lora_b"])
        a = flat.get(f"{base}mlp{sfx}/gating_einsum_lora_a")
        if a is not None:  # openpi's FFN LoRA is unscaled
            out[f"{base}mlp{sfx}/gating_einsum"] = out[f"{base}mlp{sfx}/gating_einsum"] + np.einsum(
                "lcdr,lcrf->lcdf", a, flat[f"{base}mlp{sfx}/gating_einsum_lora_b"])
            out[f"{base}mlp{sfx}/linear"] = out[f"{base}mlp{sfx}/linear"] + np.einsum(
                "lfr,lrd->lfd", flat[f"{base}mlp{sfx}/linear_lora_a"], flat[f"{base}mlp{sfx}/linear_lora_b"])
    return out


def finetune(base_checkpoint: str | os.PathLike, stores, out_dir: str | os.PathLike, cfg: FinetuneConfig,
             heads: list[tuple[int, int]] | None = None, selection_json: str | None = None) -> dict:
    """Finetune the base checkpoint on ``stores`` (EpisodeStores of the task) and export to ``out_dir``."""
    import jax
    import jax.numpy as jnp

    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.checkpoint import load_checkpoint, merge_params, save_checkpoint
    from robosteer_assets.vla.transforms import make_training_batch
    from robosteer_assets.training.data import ChunkSampler

    t0 = time.monotonic()
    if cfg.method == "steering" and not heads:
        raise ValueError("steering finetuning needs the selected heads (materialize selected_heads)")
    base = load_checkpoint(base_checkpoint)
    lcfg = T.lora_config(base.cfg, cfg.method, cfg.lora_rank)
    params = merge_params(base.params, M.init_params(lcfg, cfg.seed), missing_regex=".*lora.*")
    flat = {p: jnp.asarray(v, jnp.float32) for p, v in M.flatten(params).items()}
    train_keys = sorted(p for p in flat if T.is_trainable(p, cfg.method))
    trainable = {p: flat[p] for p in train_keys}
    frozen = {p: v for p, v in flat.items() if p not in trainable}
    masks = {p: jnp.asarray(m) for p, m in T.head_masks(lcfg, heads).items() if p in trainable} \
        if cfg.method == "steering" else {}
    tx = mask_aware_optimizer(cfg, masks)
    opt = tx.init(trainable)
    n_train = T.trainable_count({p: v for p, v in flat.items()}, cfg.method, lcfg, heads)
    log.info("%s finetuning of %s: %d trainable leaves, %s changeable parameters, heads %s", cfg.method, base.cfg.name,
             len(trainable), f"{n_train:,}", heads)

    def loss_fn(tr, obs, actions, rng):
        p = M.unflatten({**frozen, **tr})
        return M.compute_loss(lcfg, p, obs, actions, rng).mean()

    @jax.jit
    def step(tr, opt, obs, actions, rng):
        loss, grads = jax.value_and_grad(loss_fn)(tr, obs, actions, rng)
        updates, opt = tx.update(grads, opt, tr)
        tr = jax.tree_util.tree_map(lambda a, u: a + u, tr, updates)
        return tr, opt, loss

    sampler = ChunkSampler(stores, lcfg.action_horizon, cfg.seed)
    key = jax.random.key(cfg.seed)
    losses, step_times = [], []
    for i in range(cfg.steps):
        raise_if_cancelled(f"{cfg.method} finetuning")
        images, state, chunks, prompts = sampler.batch(cfg.batch_size)
        obs, acts = make_training_batch(lcfg, base.tokenizer, base.norm_stats, images, state, prompts, chunks)
        ts = time.monotonic()
        trainable, opt, loss = step(trainable, opt, obs, acts, jax.random.fold_in(key, i))
        losses.append(float(loss))
        step_times.append(time.monotonic() - ts)
        if (i + 1) % cfg.log_interval == 0 or i == 0:
            log.info("%s step %d/%d loss %.4f (%.3f s/step)", cfg.method, i + 1, cfg.steps,
                     float(np.mean(losses[-cfg.log_interval:])), float(np.median(step_times[-cfg.log_interval:])))
    final = {p: np.asarray(v) for p, v in {**frozen, **trainable}.items()}
    merged = merge_lora(lcfg, final)
    adapters = {p: v for p, v in final.items() if "lora" in p}
    extra = {"kind": f"robotic_steering:{cfg.method}", "base_checkpoint": str(base_checkpoint),
             "train_config": asdict(cfg), "heads": [list(h) for h in heads or []],
             "trainable_parameters": int(n_train), "final_loss": float(np.mean(losses[-max(1, cfg.log_interval):]))}
    tok = Path(base_checkpoint) / "assets" / "tokenizer.model"
    out_dir = Path(out_dir)
    save_checkpoint(out_dir, base.cfg, M.unflatten(merged), base.norm_stats, asset_id=base.asset_id,
                    tokenizer_path=tok if tok.is_file() else None, extra=extra)
    buf = out_dir / "adapters.npz"
    np.savez(buf, **{p.replace("/", "__"): v for p, v in adapters.items()})
    write_text_atomic(out_dir / "train_config.json", json.dumps(asdict(cfg), indent=2))
    write_text_atomic(out_dir / "loss_curve.json", json.dumps(losses))
    if selection_json:
        write_text_atomic(out_dir / "selected_heads.json", selection_json)
    return {**extra, "steps": cfg.steps, "step_s_median": float(np.median(step_times[1:] or step_times)),
            "wall_s": round(time.monotonic() - t0, 1), "path": str(out_dir)}


def run_step(spec: dict, logger) -> dict:
    """dagster-pipes entry: spec = {method, base_checkpoint, store, selected_heads, out, steps, batch_size, ...}."""
    from robosteer_assets.droid.store import EpisodeStore
    from robosteer_assets.steering.selection import SelectionResult

    fields = {f for f in FinetuneConfig.__dataclass_fields__}
    cfg = FinetuneConfig(**{k: v for k, v in spec.items() if k in fields})
    heads, sel_text = None, None
    if cfg.method == "steering":
        sel_text = Path(spec["selected_heads"]).read_text()
        heads = SelectionResult.from_json(sel_text).heads
    logger.info("finetuning (%s) from %s", cfg.method, spec["base_checkpoint"])
    return finetune(spec["base_checkpoint"], [EpisodeStore.open(spec["store"])], spec["out"], cfg, heads, sel_text)
