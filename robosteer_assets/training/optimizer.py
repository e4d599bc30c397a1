"""The mask-aware optimizer (paper B.1) as an optax chain, with openpi's defaults.

``mask grads -> global-norm clip -> AdamW -> mask updates``:

* the gradients are multiplied by the head masks *before* clipping, so the clip norm (and
  the logged grad norm) only sees what can change;
* AdamW (b1 0.9, b2 0.95, eps 1e-8, weight decay 1e-10: openpi's ``AdamW``) with the
  paper's warmup-cosine schedule (B.3: 200 warmup steps, peak 2.5e-5, 5000 decay steps,
  final 2.5e-6; optax counts decay steps from step 0, warmup included, as openpi);
* the final updates are multiplied by the masks again: Adam's ``m / (sqrt(v) + eps)`` is
  0 for a zero gradient, but the decoupled weight decay ``-lr * wd * w`` is not, so without
  the second mask the unselected heads would drift by ``lr * 1e-10 * w`` per step. After it,
  ``w + 0 == w`` bit for bit, after any number of steps.

The optimizer only ever sees the trainable subtree (``trainer`` differentiates w.r.t. it),
so frozen parameters have no optimizer state at all.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax


@dataclass(frozen=True)
class ScheduleConfig:
    """openpi's ``CosineDecaySchedule`` with the paper's values (B.3)."""

    warmup_steps: int = 200
    peak_lr: float = 2.5e-5
    decay_steps: int = 5000
    decay_lr: float = 2.5e-6

    def __post_init__(self):
        if self.warmup_steps < 0 or self.decay_steps < 1 or self.peak_lr <= 0 or self.decay_lr < 0:
            raise ValueError(f"ScheduleConfig: expected warmup_steps >= 0, decay_steps >= 1, peak_lr > 0, "
                             f"decay_lr >= 0; found {self}")


@dataclass(frozen=True)
class OptimizerConfig:
    """openpi's ``AdamW`` defaults."""

    b1: float = 0.9
    b2: float = 0.95
    eps: float = 1e-8
    weight_decay: float = 1e-10
    clip_gradient_norm: float = 1.0


def make_schedule(cfg: ScheduleConfig) -> optax.Schedule:
    """Linear warmup from peak/(warmup+1) to peak, then cosine to ``decay_lr`` at ``decay_steps``.
    A warmup longer than the decay (tiny test runs) is shortened to ``decay_steps - 1``."""
    warmup = min(cfg.warmup_steps, cfg.decay_steps - 1)
    return optax.warmup_cosine_decay_schedule(init_value=cfg.peak_lr / (warmup + 1), peak_value=cfg.peak_lr,
                                              warmup_steps=warmup, decay_steps=cfg.decay_steps,
                                              end_value=cfg.decay_lr)


def full_mask_tree(params, masks: Mapping[str, np.ndarray] | None):
    """A mask per leaf of ``params`` (nested dict): the given mask at masked paths ('/'-joined),
    the scalar 1 elsewhere (multiplying by 1.0 is exact)."""
    masks = dict(masks or {})
    seen = set()

    def leaf(path, x):
        key = "/".join(str(getattr(k, "key", k)) for k in path)
        if key in masks:
            seen.add(key)
            m = np.asarray(masks[key], np.float32)
            np.broadcast_shapes(m.shape, x.shape)  # raises on a mask that does not fit its leaf
            return m
        return np.float32(1.0)

    tree = jax.tree_util.tree_map_with_path(leaf, params)
    unknown = sorted(set(masks) - seen)
    if unknown:
        raise ValueError(f"head masks: paths not among the trainable parameters: {unknown}")
    return tree


def apply_masks(tree, mask_tree):
    return jax.tree_util.tree_map(lambda u, m: u * jnp.asarray(m, u.dtype), tree, mask_tree)


def mask_updates(mask_tree) -> optax.GradientTransformation:
    """Stateless transform multiplying each update leaf by its mask."""
    return optax.stateless(lambda updates, params=None: apply_masks(updates, mask_tree))


def mask_aware_optimizer(opt: OptimizerConfig, schedule: ScheduleConfig, mask_tree=None
                         ) -> optax.GradientTransformation:
    """mask -> clip_by_global_norm -> adamw(schedule) -> mask (no masks: openpi's plain chain)."""
    core = [optax.clip_by_global_norm(opt.clip_gradient_norm),
            optax.adamw(make_schedule(schedule), b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=opt.weight_decay)]
    if mask_tree is None:
        return optax.chain(*core)
    return optax.chain(mask_updates(mask_tree), *core, mask_updates(mask_tree))
