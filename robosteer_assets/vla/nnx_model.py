"""pi0 / pi0.5 as a Flax NNX module whose state *is* openpi's parameter tree.

``Pi0(cfg, params)`` holds every leaf of the ``vla.model`` tree as an ``nnx.Param`` under
its openpi path (``nnx.state(model)`` flattens to ``PaliGemma/img/...``,
``PaliGemma/llm/layers/attn/q_einsum/w``, ``action_in_proj/kernel``, ...), and its
methods run the same functional forward (``vla.model``), so NNX tooling — ``nnx.split`` /
``nnx.merge``, ``nnx.jit``, ``nnx.Optimizer`` with path filters as openpi's freeze filters
— works on a model that loads and saves openpi checkpoints without renaming. The math
lives in one place (``vla.model``); this class adds no parameters and no computation.

    model = Pi0(get_config("pi0_tiny"))                     # numpy init (fast)
    abstract = Pi0.abstract(get_config("pi0"))               # ShapeDtypeStruct leaves, nothing allocated
    opt = nnx.Optimizer(model, optax.adamw(1e-4), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, obs, actions, rng):
        loss, g = nnx.value_and_grad(lambda m: m.compute_loss(obs, actions, rng).mean())(model)
        opt.update(model, g)
        return loss
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from robosteer_assets.vla import model as M
from robosteer_assets.vla.checkpoint import validate_params
from robosteer_assets.vla.config import Pi0Config
from robosteer_assets.vla.observation import Observation


class Pi0(nnx.Module):
    """An NNX view of ``vla.model``: attributes = the tree's top-level keys (``PaliGemma``,
    ``action_in_proj``, ...), leaves = ``nnx.Param``. ``params=None`` initialises with
    ``vla.model.init_params(cfg, seed)``; a given tree is checked path for path and shape for shape
    (``vla.checkpoint.validate_params``; any dtype)."""

    def __init__(self, cfg: Pi0Config, params: M.Params | None = None, *, seed: int = 0, check: bool = True):
        self.cfg = cfg
        tree = M.init_params(cfg, seed) if params is None else params
        if check and params is not None:
            validate_params(tree, cfg, source=f"Pi0 params for config {cfg.name!r}", check_dtypes=False)
        self._keys = tuple(sorted(tree))
        for key in self._keys:
            setattr(self, key, nnx.data(jax.tree.map(lambda a: nnx.Param(jnp.asarray(a)), tree[key])))

    @classmethod
    def abstract(cls, cfg: Pi0Config) -> "Pi0":
        """The module with ``jax.ShapeDtypeStruct`` leaves (``nnx.eval_shape``; nothing allocated)."""
        return nnx.eval_shape(lambda: cls(cfg, M.init_params(cfg, 0, traceable=True), check=False))

    def param_tree(self) -> M.Params:
        """The plain nested dict of arrays (openpi paths) that ``vla.model`` functions take."""
        return nnx.to_pure_dict(nnx.state(self, nnx.Param))

    def compute_loss(self, obs: Observation, actions, rng, **kw):
        return M.compute_loss(self.cfg, self.param_tree(), obs, actions, rng, **kw)

    def sample_actions(self, obs: Observation, noise=None, rng=None, num_steps: int = 10):
        return M.sample_actions(self.cfg, self.param_tree(), obs, noise=noise, rng=rng, num_steps=num_steps)

    def capture_heads(self, obs: Observation, **kw):
        return M.capture_heads(self.cfg, self.param_tree(), obs, **kw)


__all__ = ["Pi0"]
