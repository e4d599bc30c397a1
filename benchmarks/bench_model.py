"""Model benchmark: capture overhead (forward with per-head capture /
forward without, same batch; target <= 1.05), tiny configs' forward and train-step
time at batch 8 and 32 (train step = value_and_grad + optax adamw; compute_loss's default
remat, and without it for comparison), parameter counts; ``--gpu``: the real pi0 config forward in
bf16 with random weights, time and memory (run it on a GPU machine).

    .venv/bin/python benchmarks/bench_model.py [--quick] [--gpu]

Ends with ``RESULT capture_overhead=... train_step_b8_s=... ...``.
"""

from __future__ import annotations

import argparse
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from robosteer_assets.common.jaxsetup import configure_jax
from robosteer_assets.vla import model as M
from robosteer_assets.vla.config import IMAGE_KEYS, get_config
from robosteer_assets.vla.observation import Observation


def make_obs(cfg, B, seed=0):
    rng = np.random.default_rng(seed)
    return Observation(
        images={k: jnp.asarray(rng.uniform(-1, 1, (B, 224, 224, 3)), jnp.float32) for k in IMAGE_KEYS},
        image_masks={k: jnp.asarray(np.full(B, k != "right_wrist_0_rgb")) for k in IMAGE_KEYS},
        state=jnp.asarray(rng.normal(size=(B, cfg.action_dim)), jnp.float32),
        tokenized_prompt=jnp.asarray(rng.integers(1, 100, (B, cfg.max_token_len)), jnp.int32),
        tokenized_prompt_mask=jnp.asarray(np.arange(cfg.max_token_len)[None].repeat(B, 0) < 8),
    )


def timeit(fn, *args, reps=5):
    jax.block_until_ready(fn(*args))  # compile
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t0)
    return min(ts)


def forward_fns(cfg):
    def fwd(params, obs, x, capture: bool):
        prefix, suffix, cond, attn, pos, _ = M._joint(cfg, params, obs, x, jnp.full(x.shape[0], 0.5))
        idx = jnp.full(x.shape[0], prefix.shape[1], jnp.int32) if capture else None
        (_, out1), _, cap = M.transformer(cfg, params["PaliGemma"]["llm"], [prefix, suffix], attn, pos,
                                          cond=(None, cond), capture_index=idx)
        v = M._velocity(cfg, params, out1)
        return (v, cap) if capture else v

    return jax.jit(lambda p, o, x: fwd(p, o, x, False)), jax.jit(lambda p, o, x: fwd(p, o, x, True))


def train_step_fn(cfg, params, remat=True):
    tx = optax.adamw(1e-4)
    opt = tx.init(params)

    @jax.jit
    def step(p, s, obs, a, rng):
        loss, g = jax.value_and_grad(lambda p: M.compute_loss(cfg, p, obs, a, rng, remat=remat).mean())(p)
        u, s = tx.update(g, s, p)
        return optax.apply_updates(p, u), s, loss

    return step, opt


def gpu_mode(config: str) -> int:
    cfg = get_config(config, dtype="bfloat16")
    print(jax.devices(), cfg.name, cfg.dtype)
    t0 = time.perf_counter()
    params = jax.jit(lambda: jax.tree_util.tree_map(lambda x: x.astype(jnp.bfloat16), M.init_params(cfg, 0, traceable=True)))()
    jax.block_until_ready(params)
    print(f"init (bf16, random) {time.perf_counter() - t0:.1f} s, {M.param_count(params):,} params")
    res = {}
    for B in (1, 8):
        obs = make_obs(cfg, B)
        noise = jax.random.normal(jax.random.key(0), (B, cfg.action_horizon, cfg.action_dim))
        fwd, _ = forward_fns(cfg)
        t = timeit(fwd, params, obs, noise)
        samp = jax.jit(lambda p, o, n: M.sample_actions(cfg, p, o, noise=n))
        ts = timeit(samp, params, obs, noise)
        stats = jax.devices()[0].memory_stats() or {}
        print(f"{cfg.name} B={B}: forward {t * 1e3:.1f} ms, sample_actions (10 steps) {ts * 1e3:.1f} ms, "
              f"peak mem {stats.get('peak_bytes_in_use', 0) / 2**30:.1f} GiB")
        res[B] = (t, ts, stats.get("peak_bytes_in_use", 0) / 2**30)
    print(f"RESULT config={cfg.name} device={jax.devices()[0].platform} forward_b1_ms={res[1][0] * 1e3:.1f} "
          f"sample_b1_ms={res[1][1] * 1e3:.1f} forward_b8_ms={res[8][0] * 1e3:.1f} sample_b8_ms={res[8][1] * 1e3:.1f} "
          f"peak_mem_gib={res[8][2]:.1f}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="batch 8 only, pi0_tiny only")
    ap.add_argument("--gpu", action="store_true", help="real pi0 forward in bf16 (needs a GPU)")
    ap.add_argument("--config", default="pi0_droid", help="--gpu: the config (bf16), e.g. pi0_micro for a CPU smoke run")
    args = ap.parse_args()
    configure_jax()
    if args.gpu:
        return gpu_mode(args.config)
    results = {}
    names = ("pi0_tiny",) if args.quick else ("pi0_tiny", "pi05_tiny")
    batches = (8,) if args.quick else (8, 32)
    print(f"{'config':<10} {'params':>10} {'B':>3} {'forward ms':>11} {'fwd+capture ms':>15} {'overhead':>9} "
          f"{'train step s':>13} {'no remat s':>11}")
    for name in names:
        cfg = get_config(name)
        params = jax.tree_util.tree_map(jnp.asarray, M.init_params(cfg, 0))
        fwd, fwd_cap = forward_fns(cfg)
        for B in batches:
            obs = make_obs(cfg, B)
            x = jax.random.normal(jax.random.key(1), (B, cfg.action_horizon, cfg.action_dim))
            t_f = timeit(fwd, params, obs, x)
            t_c = timeit(fwd_cap, params, obs, x)
            step, opt = train_step_fn(cfg, params)
            t_s = timeit(lambda p, s: step(p, s, obs, x, jax.random.key(2)), params, opt, reps=3)
            step_nr, opt_nr = train_step_fn(cfg, params, remat=False)
            t_nr = timeit(lambda p, s: step_nr(p, s, obs, x, jax.random.key(2)), params, opt_nr, reps=3)
            results[(name, B)] = (t_f, t_c, t_s)
            print(f"{name:<10} {M.param_count(params):>10,} {B:>3} {t_f * 1e3:>11.1f} {t_c * 1e3:>15.1f} "
                  f"{t_c / t_f:>9.3f} {t_s:>13.3f} {t_nr:>11.3f}")
    t_f, t_c, t_s = results[("pi0_tiny", 8)]
    tail = f" train_step_b32_s={results[('pi0_tiny', 32)][2]:.3f}" if ("pi0_tiny", 32) in results else ""
    print(f"RESULT capture_overhead={t_c / t_f:.3f} train_step_b8_s={t_s:.3f} forward_b8_ms={t_f * 1e3:.1f}"
          f"{tail} params_pi0_tiny={M.param_count(M.param_shapes(get_config('pi0_tiny')))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
