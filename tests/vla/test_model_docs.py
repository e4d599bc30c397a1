"""The Python API shown in ``robosteer_assets/vla/__init__.py`` runs as written (on pi0_micro)."""

import numpy as np

import robosteer_assets.vla as vla
from robosteer_assets.vla import config as C


def test_package_docstring_example_runs():
    doc = vla.__doc__
    api = doc.split("Python API::\n", 1)[1]
    block, rest = api.split("\nThe same as an NNX module", 1)
    block += "\n" + rest.split("::\n", 1)[1].split("\nAll entry points", 1)[0]
    code = "\n".join(line[4:] for line in block.splitlines())
    assert 'C.get_config("pi0_tiny")' in code
    code = code.replace('C.get_config("pi0_tiny")', 'C.get_config("pi0_micro")')
    cfg = C.get_config("pi0_micro")
    B, L, rng = 2, cfg.max_token_len, np.random.default_rng(0)
    env = {
        "B": B,
        "uint8_images_B_224_224_3": rng.integers(0, 256, (B, 224, 224, 3), dtype=np.uint8),
        "state_B_A": rng.normal(size=(B, cfg.action_dim)).astype(np.float32),
        "tokens_B_L": rng.integers(1, cfg.vocab_size, (B, L)),
        "mask_B_L": np.arange(L)[None].repeat(B, 0) < 4,
        "actions_B_Ta_A": rng.normal(size=(B, cfg.action_horizon, cfg.action_dim)).astype(np.float32),
        "noise_B_Ta_A": rng.normal(size=(B, cfg.action_horizon, cfg.action_dim)).astype(np.float32),
    }
    exec(compile(code, "vla/__init__.py docstring", "exec"), env)
    assert env["actions"].shape == (B, cfg.action_horizon, cfg.action_dim)
    assert env["acts"].shape == (B, cfg.num_layers, cfg.num_heads, cfg.head_dim)
    assert env["att"].shape[:2] == (B, 2)
    noisy = float(env["noisy"].mean())
    assert np.isfinite(noisy) and noisy != float(env["loss"])
    assert np.isfinite(np.asarray(env["loss_aug"])).all()
    assert abs(float(env["loss_nnx"]) - float(env["loss"])) < 1e-5
    assert "PaliGemma" in env["shapes"] and env["lcfg"].llm.lora.rank == 8
