"""Training-step cost of each finetuning method on any config, real ``pi0`` / ``pi05`` included,
without allocating a parameter: the matmul/conv FLOPs of the differentiated step, counted on its
jaxpr (``jax.make_jaxpr`` over ``jax.ShapeDtypeStruct`` inputs).

Why a jaxpr count: XLA's ``cost_analysis`` counts a ``while`` body once, so a layer ``scan``
(ours, like openpi's ``nn.scan``) makes it report about one layer of 18. Here every ``scan``
body is multiplied by its length, ``remat`` bodies are counted where the backward pass
re-runs them, and only ``dot_general`` / ``conv_general_dilated`` are counted (elementwise
work is < 2 % of a transformer step's FLOPs at these widths).

What the count shows (``python -m robosteer_assets.training.step_cost``): steering skips
SigLIP's backward (activation and weight gradients) and the weight gradients of every frozen
matrix; it cannot skip the LLM's activation backward, because the selected heads and the
feed-forward LoRA sit in every layer and the loss reaches the prefix only through the K/V the
action expert reads. Measured ratios are in the README's benchmark table (``bench_finetune``).
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np

METHODS = ("steering", "full_lora")


def _sub_jaxprs(eqn):
    """The jaxprs among ``eqn``'s params (a Jaxpr, or a ClosedJaxpr's ``.jaxpr``), also inside tuples."""
    for v in eqn.params.values():
        for x in v if isinstance(v, (tuple, list)) else (v,):
            if hasattr(x, "eqns"):
                yield x
            elif hasattr(getattr(x, "jaxpr", None), "eqns"):
                yield x.jaxpr


def jaxpr_flops(jaxpr) -> float:
    """Multiply-add FLOPs (2 per MAC) of every dot_general / conv in ``jaxpr``, scans unrolled."""
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            (lc, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval.shape
            out = eqn.outvars[0].aval.shape
            total += 2.0 * math.prod(out) * math.prod(lhs[d] for d in lc)
        elif name == "conv_general_dilated":
            rhs = eqn.invars[1].aval.shape
            out = eqn.outvars[0].aval.shape
            dn = eqn.params["dimension_numbers"]
            k_spatial = math.prod(rhs[d] for d in dn.rhs_spec[2:])
            in_per_group = rhs[dn.rhs_spec[1]]
            total += 2.0 * math.prod(out) * k_spatial * in_per_group
        elif name == "scan":
            total += eqn.params["length"] * jaxpr_flops(eqn.params["jaxpr"].jaxpr)
        elif name == "cond":
            total += max(jaxpr_flops(b.jaxpr) for b in eqn.params["branches"])
        else:
            total += sum(jaxpr_flops(j) for j in _sub_jaxprs(eqn))
    return total


def _abstract_inputs(cfg, method: str, batch: int):
    import jax
    import jax.numpy as jnp

    from robosteer_assets.training import trainable as T
    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.config import IMAGE_KEYS
    from robosteer_assets.vla.observation import Observation

    shapes = M.flatten(M.param_shapes(cfg))
    frozen_dt = jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32
    tr = {p: jax.ShapeDtypeStruct(v.shape, jnp.float32) for p, v in shapes.items() if T.is_trainable(p, method)}
    fr = {p: jax.ShapeDtypeStruct(v.shape, frozen_dt) for p, v in shapes.items() if not T.is_trainable(p, method)}
    S = cfg.vision.resolution
    sds = jax.ShapeDtypeStruct
    obs = Observation(images={k: sds((batch, S, S, 3), jnp.float32) for k in IMAGE_KEYS},
                      image_masks={k: sds((batch,), jnp.bool_) for k in IMAGE_KEYS},
                      state=sds((batch, cfg.action_dim), jnp.float32),
                      tokenized_prompt=sds((batch, cfg.max_token_len), jnp.int32),
                      tokenized_prompt_mask=sds((batch, cfg.max_token_len), jnp.bool_))
    return tr, fr, obs, sds((batch, cfg.action_horizon, cfg.action_dim), jnp.float32)


def step_flops(model: str, method: str, batch: int = 32, remat: bool = True, rank: int = 8) -> dict:
    """FLOPs of ``value_and_grad`` of the flow-matching loss w.r.t. ``method``'s trainable subtree
    (what ``training.trainer`` jits), and of the forward alone."""
    import jax

    from robosteer_assets.training import trainable as T
    from robosteer_assets.training.trainer import _deep_merge
    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.config import get_config

    cfg = T.lora_config(get_config(model), T.check_method(method), rank)
    tr, fr, obs, act = _abstract_inputs(cfg, method, batch)

    def loss(tr, fr, obs, act, rng):
        params = _deep_merge(M.unflatten(fr), M.unflatten(tr))
        return M.compute_loss(cfg, params, obs, act, rng, train=True, remat=remat).mean()

    key = jax.random.key(0)
    step = jaxpr_flops(jax.make_jaxpr(jax.value_and_grad(loss))(tr, fr, obs, act, key).jaxpr)
    fwd = jaxpr_flops(jax.make_jaxpr(loss)(tr, fr, obs, act, key).jaxpr)
    return {"model": model, "method": method, "batch": batch, "remat": remat, "step_flops": step,
            "forward_flops": fwd, "trainable_leaves": len(tr)}


def report(models=("pi0", "pi05"), batch: int = 32, remat: bool = True) -> list[dict]:
    rows = []
    for m in models:
        got = {meth: step_flops(m, meth, batch, remat) for meth in METHODS}
        for meth in METHODS:
            got[meth]["ratio_to_full_lora"] = got[meth]["step_flops"] / got["full_lora"]["step_flops"]
            rows.append(got[meth])
    return rows


def format_rows(rows: list[dict]) -> str:
    lines = [f"{'model':9} {'method':10} {'batch':>5} {'step TFLOP':>11} {'fwd TFLOP':>10} {'step/fwd':>8} "
             f"{'vs full LoRA':>12}"]
    for r in rows:
        lines.append(f"{r['model']:9} {r['method']:10} {r['batch']:>5} {r['step_flops'] / 1e12:>11.2f} "
                     f"{r['forward_flops'] / 1e12:>10.2f} {r['step_flops'] / r['forward_flops']:>8.2f} "
                     f"{r['ratio_to_full_lora']:>12.3f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="training-step FLOPs: steering vs full-head LoRA (real configs)")
    ap.add_argument("--models", default="pi0,pi05")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--no-remat", action="store_true", help="count without rematerialisation (openpi remats)")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    rows = report(tuple(a.models.split(",")), a.batch, not a.no_remat)
    print(json.dumps(rows, indent=1) if a.json else format_rows(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
