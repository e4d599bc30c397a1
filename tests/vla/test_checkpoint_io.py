"""Checkpoints in openpi's layout: bit-exact round trip, `value`-suffixed trees, readable mismatch diffs,
weight-loader merge, atomic saves that leave the previous checkpoint intact."""

import hashlib
import json
import shutil

import jax
import ml_dtypes
import numpy as np
import orbax.checkpoint as ocp
import pytest

from robosteer_assets.vla import checkpoint as ckpt_mod
from robosteer_assets.vla.checkpoint import (
    CONFIG_FILE, CheckpointError, CheckpointMismatchError, flatten, load_checkpoint, load_params, merge_params,
    restore_params, save_checkpoint, unflatten)
from robosteer_assets.vla.config import LoRAConfig, get_config
from robosteer_assets.vla.model import init_params
from robosteer_assets.vla.normalize import compute_norm_stats
from robosteer_assets.vla.tokenizer import train_tiny_tokenizer


def _stats(seed=0):
    rng = np.random.default_rng(seed)
    return compute_norm_stats({"state": rng.normal(size=(50, 8)), "actions": rng.normal(size=(50, 8))})


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def tok_file(tmp_path_factory):
    return train_tiny_tokenizer(["put the marker in the cup"], tmp_path_factory.mktemp("tok") / "t.model", 64)


@pytest.mark.parametrize("name", ["pi0_tiny", "pi05_micro"])
def test_save_load_round_trip_is_bit_exact(tmp_path, tok_file, name):
    cfg = get_config(name)
    params, stats = init_params(cfg, seed=3), _stats()
    d = save_checkpoint(tmp_path / "ck", cfg, params, stats, tokenizer_path=tok_file, extra={"step": 7})
    assert (d / "params" / "_METADATA").exists() and (d / "assets" / "droid" / "norm_stats.json").exists()
    assert (d / "assets" / "tokenizer.model").read_bytes() == tok_file.read_bytes()
    meta = json.loads((d / CONFIG_FILE).read_text())
    assert meta["name"] == name and meta["config"]["pi05"] == cfg.pi05 and meta["extra"] == {"step": 7}
    loaded = load_checkpoint(d)
    assert loaded.cfg == cfg and loaded.asset_id == "droid" and loaded.extra == {"step": 7}
    a, b = flatten(params), flatten(loaded.params)
    assert set(a) == set(b)
    for k in a:
        assert b[k].dtype == a[k].dtype and np.array_equal(b[k], a[k]), k
    for key in ("state", "actions"):
        np.testing.assert_array_equal(loaded.norm_stats[key].q99, stats[key].q99)
    cfg2, params2, stats2, tok = loaded  # documented tuple unpacking
    assert tok.tokenize("put the marker in the cup", np.zeros(8) if cfg.pi05 else None)[1].sum() > 3
    # serving dtype: cast during the restore
    bf = load_params(d, cfg, dtype="bfloat16")
    assert all(v.dtype == ml_dtypes.bfloat16 for v in flatten(bf).values())


def test_openpi_training_tree_with_trailing_value_loads(tmp_path):
    cfg = get_config("pi0_micro")
    params = init_params(cfg)
    # saved from jax arrays (the stored _sharding is ignored on restore), every leaf under `value`
    wrapped = jax.device_put(unflatten({f"{k}/value": v for k, v in flatten(params).items()}))
    (tmp_path / "ck").mkdir()
    ocp.PyTreeCheckpointer().save((tmp_path / "ck" / "params").resolve(),
                                  args=ocp.args.PyTreeSave({"params": wrapped}))
    assert (tmp_path / "ck" / "params" / "_sharding").exists()
    loaded = load_params(tmp_path / "ck", cfg)
    for k, v in flatten(params).items():
        assert np.array_equal(flatten(loaded)[k], v)
    # a checkpoint without robosteer_config.json (openpi's layout) needs the config passed in
    with pytest.raises(CheckpointError, match="pass cfg="):
        load_checkpoint(tmp_path / "ck")


def test_other_config_fails_with_a_path_by_path_diff(tmp_path):
    cfg = get_config("pi0_micro")
    d = save_checkpoint(tmp_path / "ck", cfg, init_params(cfg), _stats())
    with pytest.raises(CheckpointMismatchError) as e:
        load_params(d, get_config("pi0_tiny"))
    msg = str(e.value)
    assert "PaliGemma/llm/layers/attn/q_einsum/w: (2, 8, 64, 16) vs (6, 8, 128, 32)" in msg
    assert "PaliGemma/img/embedding/kernel: (56, 56, 3, 32) vs (28, 28, 3, 32)" in msg and len(msg.splitlines()) < 100
    with pytest.raises(CheckpointMismatchError) as e:
        load_params(d, get_config("pi05_micro"))
    assert "time_mlp_in/kernel" in e.value.missing and "state_proj/kernel" in e.value.unexpected
    assert "    PaliGemma/llm/final_norm_1/scale" in str(e.value)
    # dtypes are validated too (float16 is neither the reference float32 nor the config dtype)
    half = {k: v.astype(np.float16) for k, v in flatten(init_params(cfg)).items()}
    with pytest.raises(CheckpointMismatchError, match="50 dtype mismatches") as e:
        save_checkpoint(tmp_path / "half", cfg, unflatten(half), _stats())
    assert ("action_in_proj/kernel", "float16", "float32") in e.value.dtype_mismatches
    assert "    ... and 10 more" in str(e.value)  # long lists are cut
    assert not (tmp_path / "half").exists()
    with pytest.raises(CheckpointError, match="parameter checkpoint directory not found"):
        restore_params(tmp_path / "nowhere")
    (d / "params" / "_METADATA").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"ck/params: no readable orbax metadata"):
        load_params(d, cfg)


def test_merge_params_keeps_fresh_lora_and_requires_the_rest():
    base = get_config("pi0_micro")
    lora_cfg = base.replace(lora=LoRAConfig(4, 4.0))
    loaded, ref = init_params(base, seed=1), init_params(lora_cfg, seed=2)
    merged = flatten(merge_params(loaded, ref, ".*lora.*"))
    assert set(merged) == set(flatten(ref))
    for k, v in flatten(loaded).items():
        assert np.array_equal(merged[k], v)
    lora_keys = [k for k in merged if "lora" in k]
    assert lora_keys and all(np.array_equal(merged[k], flatten(ref)[k]) for k in lora_keys)
    partial = {k: v for k, v in flatten(loaded).items() if not k.startswith("action_in_proj")}
    with pytest.raises(CheckpointMismatchError, match="action_in_proj/bias"):
        merge_params(unflatten(partial), ref, ".*lora.*")


def test_failed_save_leaves_the_previous_checkpoint_intact(tmp_path, tok_file, monkeypatch):
    cfg = get_config("pi0_micro")
    d = save_checkpoint(tmp_path / "ck", cfg, init_params(cfg, seed=0), _stats(0))
    before = _digest(d)

    real_write = ckpt_mod._write_params

    def disk_full(path, params):  # writes part of the checkpoint, then the disk fills up
        real_write(path, params)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ckpt_mod, "_write_params", disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(d, cfg, init_params(cfg, seed=1), _stats(1))
    monkeypatch.undo()

    def copy_denied(src, dst):
        raise PermissionError(13, "Permission denied", str(dst))

    monkeypatch.setattr(shutil, "copyfile", copy_denied)
    with pytest.raises(PermissionError):
        save_checkpoint(d, cfg, init_params(cfg, seed=1), _stats(1), tokenizer_path=tok_file)
    monkeypatch.undo()

    assert _digest(d) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]  # no temporary leftovers
    np.testing.assert_array_equal(flatten(load_params(d, cfg))["action_in_proj/kernel"],
                                  flatten(init_params(cfg, seed=0))["action_in_proj/kernel"])
    # a successful save replaces it
    save_checkpoint(d, cfg, init_params(cfg, seed=1), _stats(1))
    assert _digest(d) != before


def test_refuses_to_replace_a_directory_that_is_not_a_checkpoint(tmp_path):
    cfg = get_config("pi0_micro")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "precious.txt").write_text("x")
    with pytest.raises(CheckpointError, match="is not a checkpoint directory"):
        save_checkpoint(tmp_path / "data", cfg, init_params(cfg), _stats())
    with pytest.raises(CheckpointError, match="asset_id"):
        save_checkpoint(tmp_path / "ck", cfg, init_params(cfg), _stats(), asset_id="../x")
    assert (tmp_path / "data" / "precious.txt").read_text() == "x"
