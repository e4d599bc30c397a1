"""Policy on a freshly saved micro checkpoint: DROID request in, unnormalised (T_a, 8) chunk out."""

import jax
import numpy as np
import pytest

from robosteer_assets.vla import model
from robosteer_assets.vla.checkpoint import save_checkpoint
from robosteer_assets.vla.config import get_config
from robosteer_assets.vla.normalize import compute_norm_stats
from robosteer_assets.vla.policy import Policy, PolicyConfig, PolicyInputError
from robosteer_assets.vla.tokenizer import train_tiny_tokenizer
from robosteer_assets.vla.transforms import make_observation, unnormalize_actions

PROMPT = "put the marker in the cup"


def _request(seed=0, size=(224, 224)):
    rng = np.random.default_rng(seed)
    return {
        "observation/exterior_image_1_left": rng.integers(0, 256, (*size, 3), dtype=np.uint8),
        "observation/wrist_image_left": rng.integers(0, 256, (224, 224, 3), dtype=np.uint8),
        "observation/joint_position": rng.normal(size=7),
        "observation/gripper_position": np.array([0.3]),
        "prompt": PROMPT,
    }


@pytest.fixture(scope="module", params=["pi0_micro", "pi05_micro"])
def ckpt(request, tmp_path_factory):
    cfg = get_config(request.param)
    tmp = tmp_path_factory.mktemp(request.param)
    rng = np.random.default_rng(0)
    stats = compute_norm_stats({"state": rng.normal(size=(64, 8)), "actions": rng.normal(size=(64, 8)) * 0.2 + 1})
    tok = train_tiny_tokenizer([PROMPT, "open the drawer"], tmp / "tok.model", cfg.vocab_size)
    return save_checkpoint(tmp / "ckpt", cfg, model.init_params(cfg, seed=1), stats, tokenizer_path=tok), cfg


def test_infer_returns_unnormalised_droid_actions(ckpt):
    d, cfg = ckpt
    policy = Policy.from_checkpoint(d, num_steps=10, seed=0)
    out = policy.infer(_request())
    assert out["actions"].shape == (cfg.action_horizon, 8) and out["actions"].dtype == np.float64
    assert np.all(np.isfinite(out["actions"])) and out["policy_timing"]["infer_ms"] > 0
    md = policy.metadata
    assert md["model"] == cfg.name and md["action_horizon"] == cfg.action_horizon and md["action_dim"] == 8

    # the same transforms as training + the model's sampler + the inverse transform, step by step
    noise = np.random.default_rng(7).normal(size=(cfg.action_horizon, cfg.action_dim)).astype(np.float32)
    req = _request()
    images = np.stack([req["observation/exterior_image_1_left"], req["observation/wrist_image_left"]])[None]
    state = np.concatenate([req["observation/joint_position"], req["observation/gripper_position"]])[None]
    obs = make_observation(cfg, policy.tokenizer, policy.norm_stats, images, state, [PROMPT])
    x = model.sample_actions(cfg, policy.params, obs, noise=noise[None], num_steps=10)
    expected = unnormalize_actions(cfg, policy.norm_stats, np.asarray(x[0]))
    np.testing.assert_allclose(policy.infer(req, noise=noise)["actions"], expected, rtol=1e-4, atol=1e-4)


def test_deterministic_for_fixed_noise_and_seeded_rng_sequence(ckpt):
    d, cfg = ckpt
    a, b = Policy.from_checkpoint(d, seed=0), Policy.from_checkpoint(d, seed=0)
    noise = np.random.default_rng(3).normal(size=(cfg.action_horizon, cfg.action_dim))
    r1 = a.infer(_request(), noise=noise)["actions"]
    r2 = a.infer(_request(), noise=noise)["actions"]
    np.testing.assert_array_equal(r1, r2)
    np.testing.assert_array_equal(b.infer(_request(), noise=noise)["actions"], r1)
    # without noise: a split per call, the same sequence from the same seed
    c, e = Policy.from_checkpoint(d, seed=0), Policy.from_checkpoint(d, seed=0)
    c1, c2 = c.infer(_request())["actions"], c.infer(_request())["actions"]
    assert not np.allclose(c1, c2)
    np.testing.assert_array_equal(e.infer(_request())["actions"], c1)
    np.testing.assert_array_equal(e.infer(_request())["actions"], c2)
    other = Policy.from_checkpoint(d, seed=1).infer(_request())["actions"]
    assert not np.allclose(other, c1)


def test_request_variants_and_validation_errors(ckpt):
    d, cfg = ckpt
    policy = Policy.from_checkpoint(d, config=PolicyConfig(max_image_side=400))
    req = _request(size=(180, 320))  # resized with pad to 224
    req["observation/gripper_position"] = 0.5  # a scalar is accepted
    req["prompt"] = PROMPT.encode()  # bytes are accepted
    assert policy.infer(req)["actions"].shape == (cfg.action_horizon, 8)

    def bad(**changes):
        r = _request()
        for k, v in changes.items():
            k = k.replace("__", "/")
            if v is None:
                del r[k]
            else:
                r[k] = v
        return r

    cases = [
        (bad(observation__wrist_image_left=None), r"missing keys \['observation/wrist_image_left'\]"),
        (bad(observation__exterior_image_1_left=np.zeros((224, 224, 3), np.float32)),
         "observation/exterior_image_1_left: expected uint8"),
        (bad(observation__wrist_image_left=np.zeros((224, 224), np.uint8)),
         r"observation/wrist_image_left: expected uint8 \[H, W, 3\], found shape \(224, 224\)"),
        (bad(observation__exterior_image_1_left=np.zeros((500, 224, 3), np.uint8)), "exceeds the limit of 400"),
        (bad(observation__joint_position=np.zeros(6)), r"observation/joint_position: expected shape \(7,\)"),
        (bad(observation__gripper_position=np.array([0.1, 0.2])), "observation/gripper_position: expected shape"),
        (bad(observation__joint_position=np.full(7, np.nan)), "expected finite values"),
        (bad(prompt=3), "prompt: expected str or bytes"),
        (bad(prompt="x" * 3000), "exceed the limit"),
    ]
    for req, msg in cases:
        with pytest.raises(PolicyInputError, match=msg):
            policy.infer(req)
    with pytest.raises(PolicyInputError, match=r"noise: expected shape"):
        policy.infer(_request(), noise=np.zeros((3, 3)))


def test_serves_in_the_config_dtype(tmp_path):
    import ml_dtypes

    cfg = get_config("pi0_micro", dtype="bfloat16")
    rng = np.random.default_rng(0)
    stats = compute_norm_stats({"state": rng.normal(size=(16, 8)), "actions": rng.normal(size=(16, 8))})
    tok = train_tiny_tokenizer([PROMPT], tmp_path / "tok.model", cfg.vocab_size)
    d = save_checkpoint(tmp_path / "ckpt", cfg, model.init_params(cfg), stats, tokenizer_path=tok)  # stored f32
    policy = Policy.from_checkpoint(d)
    leaves = jax.tree_util.tree_leaves(policy.params)
    assert all(v.dtype == ml_dtypes.bfloat16 for v in leaves)  # cast at restore, as openpi's serving
    out = policy.infer(_request())["actions"]
    assert out.shape == (cfg.action_horizon, 8) and np.all(np.isfinite(out))
