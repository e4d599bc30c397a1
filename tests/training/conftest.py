"""Shared small data for the training tests: a 2-episode synthetic task store and a micro pi0
base checkpoint (random weights, norm stats from the demos, a tiny tokenizer)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

HEADS = [(0, 1), (1, 6)]
ROOT = Path(__file__).resolve().parents[2]


def make_base(root: Path, model: str = "pi0_micro"):
    from robosteer_assets.droid import synthetic
    from robosteer_assets.droid.reader import ReadConfig
    from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.checkpoint import save_checkpoint
    from robosteer_assets.vla.config import get_config
    from robosteer_assets.vla.normalize import compute_norm_stats
    from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

    synthetic.write_task(root / "demos", "pick_cube", n=2, T=10, image_size=32, control_hz=6.0)
    ingest_task(root / "demos" / "pick_cube", root / "store", IngestConfig(read=ReadConfig(image_size=32),
                                                                            min_episodes=2))
    store = EpisodeStore.open(root / "store")
    cfg = get_config(model, vocab_size=128, max_token_len=16)
    tok = train_tiny_tokenizer(["pick up the red cube"], root / "tok.model", cfg.vocab_size)
    stats = compute_norm_stats({"state": np.asarray(store.arrays["state"][:]),
                                "actions": np.asarray(store.arrays["actions"][:])})
    save_checkpoint(root / "base", cfg, M.init_params(cfg, 0), stats, tokenizer_path=tok)
    (root / "selected_heads.json").write_text(json.dumps({"heads": [list(h) for h in HEADS]}))
    return store


@pytest.fixture(scope="session")
def micro(tmp_path_factory):
    """(root, store): ``root/base`` is the checkpoint, ``root/store`` the task store."""
    root = tmp_path_factory.mktemp("train_micro")
    return root, make_base(root)


def subprocess_env(**extra) -> dict:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    env.setdefault("ROBOSTEER_JAX_CACHE", str(ROOT / ".cache" / "jax"))
    env.update(extra)
    return env


PY = sys.executable
