"""`robosteer model info`: config fields and parameter groups from eval_shape (nothing allocated)."""

import re
import time

import numpy as np

from robosteer_assets.cli import main
from robosteer_assets.vla.checkpoint import save_checkpoint
from robosteer_assets.vla.cli import param_groups, resolve_config
from robosteer_assets.vla.config import get_config
from robosteer_assets.vla.model import init_params, param_count
from robosteer_assets.vla.normalize import compute_norm_stats


def _row(out, label):
    m = re.search(rf"^\s+{re.escape(label)}\s+([\d,]+)\s+(\d+)", out, re.M)
    assert m, f"no row {label!r} in:\n{out}"
    return int(m.group(1).replace(",", "")), int(m.group(2))


def test_real_pi0_counts_match_openpi(capsys):
    t0 = time.monotonic()
    assert main(["model", "info", "pi0"]) == 0
    out = capsys.readouterr().out
    assert time.monotonic() - t0 < 30
    assert "paligemma_variant        gemma_2b" in out
    # openpi_facts §1.4, exact
    assert _row(out, "SigLIP encoder") == (412_442_352, 21)
    assert _row(out, "SigLIP head") == (2_361_344, 2)
    assert _row(out, "embedder") == (526_647_296, 1)
    assert _row(out, "LLM layers (expert 0)") == (1_981_884_416, 8)
    assert _row(out, "action expert") == (311_464_960, 8)
    assert _row(out, "projections") == (3_248_160, 10)
    assert _row(out, "total") == (3_238_048_528, 50)
    assert "3,238,048,528" in out


def test_pi05_lora_and_overrides(capsys):
    g = param_groups(get_config("pi05"))
    assert g["action expert"]["params"] == 427_932_672 and g["projections"]["params"] == 2_165_792
    assert g["total"]["arrays"] == 51
    lora = param_groups(get_config("pi0_lora"))
    assert lora["LoRA"]["arrays"] == 20 and lora["total"]["arrays"] == 70
    assert main(["model", "info", "pi05", "--set", "paligemma_variant=dummy", "--set",
                 "action_expert_variant=dummy", "--set", "siglip_variant=So400m/14"]) == 0
    out = capsys.readouterr().out
    assert _row(out, "SigLIP head") == (73_792, 2)
    assert _row(out, "embedder")[0] == 16_457_728
    assert _row(out, "action expert")[0] == 284_352 and _row(out, "projections")[0] == 12_512
    assert main(["model", "info", "pi0", "--set", "nope=1"]) == 2
    assert "unknown Pi0Config fields ['nope']" in capsys.readouterr().out
    assert resolve_config("pi0_tiny", {"action_horizon": 50, "siglip_variant": "Ti/16"}).action_horizon == 50
    assert main(["model", "info", "pi0_micro", "--set", 'lora={"rank": 4, "alpha": 4}']) == 0
    out = capsys.readouterr().out
    g = get_config("pi0_micro").llm  # LoRA on q, kv, attn_vec, ffn of expert 0 (L=2, N=8, K=1, D=64, H=16, F=128)
    L, N, D, H, F, r = g.depth, g.num_heads, g.width, g.head_dim, g.mlp_dim, 4
    expected = L * (N * D * r + N * r * H + 2 * D * r + 2 * r * H + N * H * r + N * r * D
                    + 2 * D * r + 2 * r * F + F * r + r * D)
    assert _row(out, "LoRA") == (expected, 10)
    assert main(["model", "info", "pi0", "--set", "lora=3"]) == 2
    assert "expected a JSON object" in capsys.readouterr().out


def test_tiny_and_checkpoint_directory_agree_with_the_real_tree(tmp_path, capsys):
    cfg = get_config("pi0_micro")
    params = init_params(cfg)
    assert param_groups(cfg)["total"]["params"] == param_count(params)
    rng = np.random.default_rng(0)
    stats = compute_norm_stats({"state": rng.normal(size=(9, 8)), "actions": rng.normal(size=(9, 8))})
    d = save_checkpoint(tmp_path / "ck", cfg, params, stats)
    assert main(["model", "info", str(d)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("config pi0_micro") and _row(out, "total")[0] == param_count(params)
