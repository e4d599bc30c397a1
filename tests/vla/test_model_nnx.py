"""The NNX view: state paths are openpi's, methods equal the functional API, NNX training works."""

import jax
import numpy as np
import optax
import pytest
from flax import nnx

from vla_helpers import random_actions, random_obs
from robosteer_assets.vla import config as C
from robosteer_assets.vla import model as M
from robosteer_assets.vla.checkpoint import CheckpointMismatchError
from robosteer_assets.vla.nnx_model import Pi0

CFG = C.get_config("pi0_micro")


def _paths(state):
    return {"/".join(map(str, p)): tuple(v.shape) for p, v in state.flat_state()}


def test_state_is_openpi_tree_real_pi0_abstract():
    cfg = C.get_config("pi0")
    model = Pi0.abstract(cfg)
    want = {k: tuple(v.shape) for k, v in M.flatten(M.param_shapes(cfg)).items()}
    assert _paths(nnx.state(model, nnx.Param)) == want
    assert M.param_count(model.param_tree()) == 3_238_048_528


def test_methods_equal_functional_api_and_split_merge():
    params = M.init_params(CFG, seed=0)
    model = Pi0(CFG, params)
    obs, acts, rng = random_obs(CFG), random_actions(CFG), jax.random.key(1)
    np.testing.assert_array_equal(np.asarray(model.compute_loss(obs, acts, rng)),
                                  np.asarray(M.compute_loss(CFG, params, obs, acts, rng)))
    noise = jax.random.normal(jax.random.key(2), (2, CFG.action_horizon, CFG.action_dim))
    gdef, state = nnx.split(model)
    again = nnx.merge(gdef, state)
    np.testing.assert_allclose(np.asarray(again.sample_actions(obs, noise=noise)),
                               np.asarray(M.sample_actions(CFG, params, obs, noise=noise)), rtol=1e-6, atol=1e-6)
    assert again.capture_heads(obs).shape == (2, CFG.num_layers, CFG.num_heads, CFG.head_dim)


def test_bad_tree_is_reported():
    params = M.init_params(CFG, seed=0)
    params["action_in_proj"]["kernel"] = np.zeros((3, 3), np.float32)
    del params["state_proj"]
    with pytest.raises(CheckpointMismatchError) as info:
        Pi0(CFG, params)
    msg = str(info.value)
    assert msg.startswith(f"Pi0 params for config {CFG.name!r}: parameter tree does not match")
    assert "1 shape" in msg and "    state_proj/bias" in msg and "action_in_proj/kernel: (3, 3) vs" in msg
    Pi0(CFG, jax.tree.map(lambda a: a.astype(np.float16), M.init_params(CFG, seed=0)))  # any dtype passes


def test_nnx_optimizer_trains_only_lora_with_a_path_filter():
    lcfg = CFG.replace(lora=C.LoRAConfig(4, 4.0, init_b="zeros"))
    model = Pi0(lcfg)
    before = M.flatten(model.param_tree())
    lora = nnx.All(nnx.Param, lambda path, _: "lora" in str(path[-1]))  # as openpi's ".*lora.*" filter
    opt = nnx.Optimizer(model, optax.adam(1e-2), wrt=lora)
    obs, acts, rng = random_obs(CFG), random_actions(CFG), jax.random.key(0)

    @nnx.jit
    def step(model, opt):
        loss, g = nnx.value_and_grad(lambda m: m.compute_loss(obs, acts, rng).mean(), argnums=nnx.DiffState(0, lora))(
            model)
        opt.update(model, g)
        return loss

    losses = [float(step(model, opt)) for _ in range(5)]
    assert losses[-1] < losses[0]
    after = M.flatten(model.param_tree())
    changed = {k for k in before if not np.array_equal(np.asarray(before[k]), np.asarray(after[k]))}
    assert changed and all("lora" in k for k in changed)
