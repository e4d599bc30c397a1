"""Robotic Steering finetuning on a micro pi0: only the selected heads' Q/O LoRA slices (and merged
Q/O weights) change, frozen modules stay bit-identical, frozen leaves have no optimizer state, the
merged checkpoint predicts what the unmerged LoRA model predicts."""

import json

import jax
import numpy as np
import pytest
from conftest import HEADS

from robosteer_assets.training import trainable as T
from robosteer_assets.training.export import load_adapters, merge_lora
from robosteer_assets.training.trainer import Trainer, TrainConfig, finetune
from robosteer_assets.vla import model as M
from robosteer_assets.vla.checkpoint import load_checkpoint
from robosteer_assets.vla.config import get_config

FAST = dict(steps=3, batch_size=2, log_interval=1,
            schedule=dict(warmup_steps=1, peak_lr=1e-2, decay_steps=3, decay_lr=1e-3))


def _sel():
    sel = np.zeros((2, 8), bool)
    for l, h in HEADS:
        sel[l, h] = True
    return sel


@pytest.fixture(scope="module")
def steered(micro):
    root, store = micro
    cfg = TrainConfig(method="steering", **FAST)
    out = finetune(root / "base", [store], root / "steer", cfg, heads=HEADS,
                   selection_json=(root / "selected_heads.json").read_text())
    return root, out


def test_only_selected_head_slices_change(steered):
    root, out = steered
    assert out["trainable_parameters"] > 0 and out["resumed_from"] is None
    base_cfg = load_checkpoint(root / "base").cfg
    init = M.flatten(M.init_params(T.lora_config(base_cfg, "steering"), TrainConfig().seed))
    ad = load_adapters(root / "steer")
    sel = _sel()
    for p in T.HEAD_MASKED:  # lora_a from its init, lora_b from zero: unselected slices untouched
        assert np.array_equal(ad[p][~sel], init[p][~sel]), p
        assert not np.array_equal(ad[p][sel], init[p][sel]), p
    assert not np.any(ad[f"{T.LAYERS}attn/q_einsum/lora_b"][~sel])
    for p in ("gating_einsum_lora_b", "linear_lora_b"):  # the FFN LoRA trains
        assert np.any(ad[f"{T.LAYERS}mlp/{p}"])
    base = M.flatten(load_checkpoint(root / "base").params)
    new = M.flatten(load_checkpoint(root / "steer").params)
    assert set(base) == set(new)  # the export is a plain base-config checkpoint (LoRA merged)
    for name in ("attn/q_einsum/w", "attn/attn_vec_einsum/w"):
        p = f"{T.LAYERS}{name}"
        assert np.array_equal(new[p][~sel], base[p][~sel]) and not np.array_equal(new[p][sel], base[p][sel])
    for p in base:  # frozen modules bit-identical: SigLIP, embedder, K/V, the whole action expert
        if p.startswith(("PaliGemma/img", "PaliGemma/llm/embedder")) or "kv_einsum" in p or "_1/" in p + "/":
            assert np.array_equal(base[p], new[p]), p
    for p in ("action_in_proj/kernel", "state_proj/kernel", f"{T.LAYERS}pre_ffw_norm/scale"):
        assert not np.array_equal(base[p], new[p]), p
    files = {f.name for f in (root / "steer").iterdir()}
    assert {"params", "assets", "adapters", "selected_heads.json", "train_config.json", "loss_curve.json",
            "loss_curve.png", "train_log.json", "robosteer_config.json"} <= files
    losses = json.loads((root / "steer" / "loss_curve.json").read_text())
    assert len(losses) == 3 and all(np.isfinite(losses))
    rows = json.loads((root / "steer" / "train_log.json").read_text())
    assert {"loss", "grad_norm", "lr", "step_s"} <= set(rows[0])
    assert not (root / ".steer.train_state").exists()  # removed after a successful export


def test_frozen_leaves_have_no_optimizer_state(micro):
    root, _ = micro
    base = load_checkpoint(root / "base")
    for method in ("steering", "full_lora"):
        tr = Trainer(TrainConfig(method=method, batch_size=2), base, HEADS)
        opt = jax.eval_shape(tr.tx.init, tr.train_init)
        n_opt = len([x for x in jax.tree_util.tree_leaves(opt) if x.ndim > 0])
        n_tr = len(tr.train_paths)
        assert n_opt == 2 * n_tr  # Adam's mu and nu for the trainable leaves only
        frozen = M.flatten(jax.device_get(tr.frozen))
        assert not set(frozen) & set(tr.train_paths)
        img = [p for p in frozen if p.startswith("PaliGemma/img")]
        assert (len(img) > 0) == (method == "steering")  # SigLIP frozen only for steering


def test_merged_equals_unmerged_actions():
    base_cfg = get_config("pi0_micro", vocab_size=128)
    from robosteer_assets.vla.config import IMAGE_KEYS
    from robosteer_assets.vla.observation import Observation

    r = np.random.default_rng(5)
    B = 2
    obs = Observation(images={k: r.uniform(-1, 1, (B, 224, 224, 3)).astype(np.float32) for k in IMAGE_KEYS},
                      image_masks={k: np.ones(B, bool) for k in IMAGE_KEYS},
                      state=r.normal(size=(B, base_cfg.action_dim)).astype(np.float32),
                      tokenized_prompt=r.integers(1, 50, (B, base_cfg.max_token_len)).astype(np.int32),
                      tokenized_prompt_mask=np.ones((B, base_cfg.max_token_len), bool))
    noise = jax.random.normal(jax.random.key(0), (B, base_cfg.action_horizon, base_cfg.action_dim))
    merged_fn = jax.jit(lambda p: M.sample_actions(base_cfg, p, obs, noise=noise))
    for method in ("steering", "full_lora"):
        cfg = T.lora_config(base_cfg, method, full_lora_init_b="normal")
        flat = {p: (v + 0.05 * r.standard_normal(v.shape).astype(np.float32) if "lora_b" in p else v)
                for p, v in M.flatten(M.init_params(cfg, 3)).items()}
        a_lora = jax.jit(lambda p: M.sample_actions(cfg, p, obs, noise=noise))(M.unflatten(flat))
        a_merged = merged_fn(M.unflatten(merge_lora(cfg, flat)))
        assert not np.allclose(np.asarray(a_merged),
                               np.asarray(merged_fn(M.unflatten({p: v for p, v in flat.items() if "lora" not in p}))))
        np.testing.assert_allclose(np.asarray(a_lora), np.asarray(a_merged), rtol=1e-4, atol=1e-4)


def test_steering_needs_heads_and_valid_config(micro):
    root, store = micro
    with pytest.raises(ValueError, match="needs the selected heads"):
        finetune(root / "base", [store], root / "x", TrainConfig(batch_size=2), heads=None)
    with pytest.raises(ValueError, match="batch_size"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="finetuning method"):
        TrainConfig(method="adapters")
