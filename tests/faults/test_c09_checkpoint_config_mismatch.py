"""Case 9: a checkpoint directory from a different model config (shape mismatch)
fails with a readable diff, path by path, and the checkpoint is left as it was."""

import shutil

import numpy as np
import pytest

from robosteer_assets.vla.checkpoint import PARAMS_DIR, CheckpointMismatchError, load_params, save_checkpoint
from robosteer_assets.vla.config import get_config
from robosteer_assets.vla.model import init_params
from robosteer_assets.vla.normalize import compute_norm_stats

from ._support import tree_digest


def _save(path, cfg):
    rng = np.random.default_rng(0)
    stats = compute_norm_stats({"state": rng.normal(size=(64, 8)), "actions": rng.normal(size=(64, 8))})
    return save_checkpoint(path, cfg, init_params(cfg), stats)


def test_checkpoint_from_another_config_gives_a_readable_diff(tmp_path):
    cfg = get_config("pi0_micro")
    ckpt = _save(tmp_path / "steering", cfg)
    before = tree_digest(ckpt)
    assert load_params(ckpt, cfg)  # the matching config loads

    # same architecture, another action_dim: shape mismatches, path by path
    wider = cfg.replace(action_dim=16)
    with pytest.raises(CheckpointMismatchError) as e:
        load_params(ckpt, wider)
    msg = str(e.value)
    assert msg.startswith(f"{ckpt / PARAMS_DIR}: parameter tree does not match the model config")
    assert "shape mismatches (path: checkpoint vs expected):" in msg
    assert e.value.shape_mismatches and not e.value.missing and not e.value.unexpected
    for path, found, expected in e.value.shape_mismatches:
        assert f"{path}: {found} vs {expected}" in msg
        assert 8 in found and 16 in expected  # the action dimension is what differs
    assert any("action_in_proj" in p for p, _, _ in e.value.shape_mismatches)
    assert tree_digest(ckpt) == before  # a failed load changes nothing

    # pi0 params in a directory now used for pi0.5: missing and unexpected paths are listed
    other = _save(tmp_path / "pi05", get_config("pi05_micro"))
    other_before = tree_digest(other)
    shutil.rmtree(ckpt / PARAMS_DIR)
    shutil.copytree(other / PARAMS_DIR, ckpt / PARAMS_DIR)  # params/ copied over from the other run
    with pytest.raises(CheckpointMismatchError) as e:
        load_params(ckpt, cfg)
    msg = str(e.value)
    assert e.value.missing and e.value.unexpected
    assert "missing paths (expected by the config, not in the checkpoint):" in msg
    assert "unexpected paths (in the checkpoint, not in the config):" in msg
    for p in e.value.missing[:5] + e.value.unexpected[:5]:
        assert f"    {p}" in msg
    assert len(msg.splitlines()) < 200  # long lists are cut ("... and N more"), still readable

    assert tree_digest(other) == other_before
