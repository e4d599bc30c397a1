"""Robotic Steering finetuning on a tiny model: only the selected heads' Q/O LoRA slices
change (everything else bit-identical), frozen modules untouched, the merged checkpoint
predicts what the unmerged LoRA model predicts."""

import json

import jax
import numpy as np
import pytest

from robosteer_assets.droid import synthetic
from robosteer_assets.droid.reader import ReadConfig
from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
from robosteer_assets.training import trainable as T
from robosteer_assets.training.trainer import FinetuneConfig, finetune, merge_lora
from robosteer_assets.vla import model as M
from robosteer_assets.vla.checkpoint import load_checkpoint, save_checkpoint
from robosteer_assets.vla.config import get_config
from robosteer_assets.vla.normalize import compute_norm_stats
from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

HEADS = [(0, 1), (1, 6)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    synthetic.write_task(root / "demos", "pick_cube", n=2, T=10, image_size=32, control_hz=6.0)
    ingest_task(root / "demos" / "pick_cube", root / "store", IngestConfig(read=ReadConfig(image_size=32),
                                                                            min_episodes=2))
    store = EpisodeStore.open(root / "store")
    cfg = get_config("pi0_micro", vocab_size=128)
    tok = train_tiny_tokenizer(["pick up the red cube"], root / "tok.model", cfg.vocab_size)
    stats = compute_norm_stats({"state": np.asarray(store.arrays["state"][:]),
                                "actions": np.asarray(store.arrays["actions"][:])})
    save_checkpoint(root / "base", cfg, M.init_params(cfg, 0), stats, tokenizer_path=tok)
    return root, store


def _obs(cfg, B=2):
    import jax.numpy as jnp

    from robosteer_assets.vla.config import IMAGE_KEYS
    from robosteer_assets.vla.observation import Observation

    r = np.random.default_rng(5)
    return Observation(images={k: jnp.asarray(r.uniform(-1, 1, (B, 224, 224, 3)), jnp.float32) for k in IMAGE_KEYS},
                       image_masks={k: jnp.ones(B, bool) for k in IMAGE_KEYS},
                       state=jnp.asarray(r.normal(size=(B, cfg.action_dim)), jnp.float32),
                       tokenized_prompt=jnp.asarray(r.integers(1, 50, (B, cfg.max_token_len)), jnp.int32),
                       tokenized_prompt_mask=jnp.ones((B, cfg.max_token_len), bool))


def _adapters(path):
    z = np.load(path / "adapters.npz")
    return {k.replace("__", "/"): z[k] for k in z.files}


def test_only_selected_head_slices_change_and_frozen_is_untouched(setup):
    root, store = setup
    cfg = FinetuneConfig(method="steering", steps=3, batch_size=2, peak_lr=1e-2, warmup_steps=1, decay_steps=3,
                         log_interval=1)
    out = finetune(root / "base", [store], root / "steer", cfg, heads=HEADS, selection_json=json.dumps({"heads": HEADS}))
    assert out["trainable_parameters"] > 0
    ad = _adapters(root / "steer")
    sel = np.zeros((2, 8), bool)
    for l, h in HEADS:
        sel[l, h] = True
    for p in T.HEAD_MASKED:
        x = ad[p]
        if p.endswith("lora_b"):  # B starts at zero: unselected slices must still be exactly zero
            assert not np.any(x[~sel]) and np.any(x[sel]), p
    # merged Q/O weights: unselected heads bit-identical to the base, selected ones changed
    base = M.flatten(load_checkpoint(root / "base").params)
    new = M.flatten(load_checkpoint(root / "steer").params)
    for name in ("attn/q_einsum/w", "attn/attn_vec_einsum/w"):
        p = f"PaliGemma/llm/layers/{name}"
        assert np.array_equal(new[p][~sel], base[p][~sel]) and not np.array_equal(new[p][sel], base[p][sel])
    for p in base:  # frozen modules bit-identical: SigLIP, embedder, K/V, the action expert
        if p.startswith(("PaliGemma/img", "PaliGemma/llm/embedder")) or "kv_einsum" in p or "_1" in p.split("/")[-2]:
            assert np.array_equal(base[p], new[p]), p
    assert (root / "steer" / "selected_heads.json").exists()


def test_merge_lora_matches_lora_forward():
    base_cfg = get_config("pi0_micro", vocab_size=128)
    for method in ("steering", "full_lora"):
        cfg = T.lora_config(base_cfg, method)
        rng = np.random.default_rng(1)
        flat = {p: (v + 0.05 * rng.standard_normal(v.shape).astype(np.float32) if "lora_b" in p else v)
                for p, v in M.flatten(M.init_params(cfg, 3)).items()}
        merged = merge_lora(cfg, flat)
        obs = _obs(base_cfg)
        noise = jax.random.normal(jax.random.key(0), (2, base_cfg.action_horizon, base_cfg.action_dim))
        a_lora = M.sample_actions(cfg, M.unflatten(flat), obs, noise=noise)
        a_merged = M.sample_actions(base_cfg, M.unflatten(merged), obs, noise=noise)
        np.testing.assert_allclose(np.asarray(a_lora), np.asarray(a_merged), rtol=1e-4, atol=1e-4)
