"""Output of a finetuning run: an ordinary checkpoint in openpi's layout with the LoRA merged
into the base weights (no inference overhead, servable like any pi0 checkpoint — paper
Step 3), plus what produced it.

Merge (per expert e, suffix ``""`` / ``"_1"``): ``w += (alpha / r) * A @ B`` per head for
``q_einsum`` ``[L,N,D,r]x[L,N,r,H]``, ``kv_einsum`` ``[L,2,K,D,r]x[L,2,K,r,H]`` and
``attn_vec_einsum`` ``[L,N,H,r]x[L,N,r,D]``; ``gating_einsum += A @ B`` and
``linear += A @ B`` **unscaled** for the FFN (openpi's FFN-LoRA path ignores the scaling;
harmless for alpha == r but we reproduce it exactly). Products are computed in float64 and
cast once to the base dtype.

Layout of ``out_dir`` (written atomically as one directory)::

    params/, assets/<asset_id>/norm_stats.json, robosteer_config.json   (vla.checkpoint, base config)
    adapters/             orbax PyTree {"params": <LoRA leaves, openpi paths>} (+ adapter_config.json)
    selected_heads.json   the selection the run used (steering methods)
    train_config.json     the TrainConfig
    loss_curve.json       [loss per step]  (plain list; the Dagster asset plots it)
    loss_curve.png, train_log.json (loss, grad_norm, lr, step_s per logged step)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from robosteer_assets.common.atomic import atomic_dir, write_text_atomic
from robosteer_assets.common.progress import get_logger

log = get_logger("training.export")

ADAPTERS_DIR = "adapters"
LAYERS = "PaliGemma/llm/layers/"


def _lora_terms(lcfg):
    """(lora config, suffix) per expert that has LoRA."""
    for lora, sfx in ((lcfg.llm.lora, ""), (lcfg.expert.lora, "_1")):
        if lora is not None:
            yield lora, sfx


def merge_lora(lcfg, flat: dict) -> dict:
    """Fold every LoRA pair of ``flat`` (a '/'-path dict of the LoRA-augmented config ``lcfg``)
    into its base weight; returns the base tree (no LoRA leaves), other leaves unchanged."""
    out = {p: np.asarray(v) for p, v in flat.items() if "lora" not in p}

    def add(path, delta):
        w = out[path]
        out[path] = (w.astype(np.float64) + delta).astype(w.dtype)

    def ab(prefix):
        a, b = flat.get(f"{prefix}lora_a"), flat.get(f"{prefix}lora_b")
        if (a is None) != (b is None):
            raise ValueError(f"merge_lora: {prefix}lora_a and lora_b must come together")
        return (None, None) if a is None else (np.asarray(a, np.float64), np.asarray(b, np.float64))

    for lora, sfx in _lora_terms(lcfg):
        s = lora.scaling
        for name, eq in ((f"attn/q_einsum{sfx}", "lndr,lnrh->lndh"), (f"attn/kv_einsum{sfx}", "lckdr,lckrh->lckdh"),
                         (f"attn/attn_vec_einsum{sfx}", "lnhr,lnrd->lnhd")):
            a, b = ab(f"{LAYERS}{name}/")
            if a is not None:
                add(f"{LAYERS}{name}/w", s * np.einsum(eq, a, b))
        mlp = f"{LAYERS}mlp{sfx}/"
        a, b = ab(f"{mlp}gating_einsum_")
        if a is not None:  # openpi's FFN LoRA is unscaled
            add(f"{mlp}gating_einsum", np.einsum("lcdr,lcrf->lcdf", a, b))
            a2, b2 = ab(f"{mlp}linear_")
            add(f"{mlp}linear", np.einsum("lfr,lrd->lfd", a2, b2))
    left = [p for p in flat if "lora" in p and not any(p.startswith(f"{LAYERS}{k}") for k in ("attn/", "mlp"))]
    if left:
        raise ValueError(f"merge_lora: LoRA leaves outside attention/FFN are not supported: {left}")
    return out


def save_adapters(directory: Path, lcfg, flat: dict) -> Path:
    """The LoRA leaves as an orbax PyTree ``{"params": tree}`` plus their LoRA config."""
    import orbax.checkpoint as ocp

    from robosteer_assets.vla.model import unflatten

    lora = {p: np.asarray(v) for p, v in flat.items() if "lora" in p}
    directory.mkdir(parents=True, exist_ok=True)
    if lora:
        ocp.PyTreeCheckpointer().save((directory / "params").resolve(), args=ocp.args.PyTreeSave(
            {"params": unflatten(lora)}))
    cfg = {"llm": lcfg.to_dict()["lora"], "action_expert": lcfg.to_dict()["action_expert_lora"],
           "leaves": {p: list(v.shape) for p, v in sorted(lora.items())}}
    write_text_atomic(directory / "adapter_config.json", json.dumps(cfg, indent=2))
    return directory


def load_adapters(ckpt_dir: str | os.PathLike) -> dict:
    """The exported LoRA leaves as a flat '/'-path dict of numpy arrays."""
    from robosteer_assets.vla.checkpoint import flatten, restore_params

    d = Path(ckpt_dir) / ADAPTERS_DIR / "params"
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: no exported adapters (a run without LoRA has none)")
    return {p: np.asarray(v) for p, v in flatten(restore_params(d)).items()}


def loss_png(losses: list[float], title: str) -> bytes:
    from robosteer_assets.common.plots import loss_curve_png

    return loss_curve_png(losses, title)


def export_checkpoint(out_dir: str | os.PathLike, base, lcfg, final_flat: dict, norm_stats: dict, *,
                      train_config: dict, losses: list[float], log_rows: list[dict], extra: dict,
                      selection_json: str | None = None) -> Path:
    """Write the merged checkpoint + adapters + run files to ``out_dir`` atomically.
    ``base`` is the ``LoadedCheckpoint`` of the base model (config, asset id, tokenizer)."""
    from robosteer_assets.vla.checkpoint import ASSETS_DIR, TOKENIZER_ASSET, save_checkpoint
    from robosteer_assets.vla.model import unflatten

    out_dir = Path(out_dir)
    merged = merge_lora(lcfg, final_flat)
    tok = Path(base.path) / ASSETS_DIR / TOKENIZER_ASSET if base.path is not None else None
    with atomic_dir(out_dir) as tmp:
        save_checkpoint(tmp, base.cfg, unflatten(merged), norm_stats, asset_id=base.asset_id,
                        tokenizer_path=tok if tok is not None and tok.is_file() else None, extra=extra)
        save_adapters(tmp / ADAPTERS_DIR, lcfg, final_flat)
        write_text_atomic(tmp / "train_config.json", json.dumps(train_config, indent=2))
        write_text_atomic(tmp / "loss_curve.json", json.dumps([float(x) for x in losses]))
        write_text_atomic(tmp / "train_log.json", json.dumps(log_rows, indent=1))
        if selection_json is not None:
            write_text_atomic(tmp / "selected_heads.json", selection_json)
        if losses:
            (tmp / "loss_curve.png").write_bytes(loss_png(losses, f"{extra.get('method', '')} finetuning"))
    log.info("exported %s (merged LoRA, %d adapter leaves)", out_dir, sum("lora" in p for p in final_flat))
    return out_dir
