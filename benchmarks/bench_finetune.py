"""Finetuning cost: Robotic Steering vs the full-head LoRA baseline on the same batches and config.

For each method a ``training.trainer.Trainer`` is built on the same base checkpoint (a random
``pi0_tiny`` unless ``--base DIR``), trained on the same seeded batches of a small synthetic task,
and measured: median step time (after compile), XLA ``memory_analysis`` of the compiled step
(arguments + outputs + temporaries), the loss curve (PNG + JSON under ``--out``) and the number of
parameters that can change. The paper reports steering/full-LoRA wall time 189/239 = 0.79 (pi0)
and 185/214 = 0.86 (pi0.5). Steering never runs SigLIP's backward
nor computes a frozen matrix's weight gradient, but it must run the LLM's whole activation
backward (the selected heads and the FFN LoRA sit in every layer; the loss reaches the prefix
only through the K/V the action expert reads), which both methods share. So the script also
prints the step FLOPs of both methods on the full-size pi0 / pi0.5 and on the benchmarked config
(``training.step_cost``, a jaxpr count): that ratio is the floor a faster implementation of the
same method can reach, measured 0.875 (pi0) / 0.891 (pi0.5) at batch 32.

    .venv/bin/python benchmarks/bench_finetune.py [--quick] [--model pi0_tiny] [--steps N] [--batch B]

Ends with ``RESULT step_ratio=... steering_step_s=... lora_step_s=...``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("JAX_PLATFORMS", "cpu")


def _cache():
    from robosteer_assets.common.jaxsetup import configure_jax

    configure_jax(os.environ.get("ROBOSTEER_JAX_CACHE", str(ROOT / ".cache" / "jax")))


def make_task(root: Path, model: str, episodes: int, T: int):
    from robosteer_assets.droid import synthetic
    from robosteer_assets.droid.reader import ReadConfig
    from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.checkpoint import save_checkpoint
    from robosteer_assets.vla.config import get_config
    from robosteer_assets.vla.normalize import compute_norm_stats
    from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

    synthetic.write_task(root / "demos", "pick_cube", n=episodes, T=T, image_size=64, control_hz=6.0)
    ingest_task(root / "demos" / "pick_cube", root / "store", IngestConfig(read=ReadConfig(image_size=64),
                                                                            min_episodes=episodes))
    store = EpisodeStore.open(root / "store")
    cfg = get_config(model)
    tok = train_tiny_tokenizer(["pick up the red cube"], root / "tok.model", cfg.vocab_size)
    stats = compute_norm_stats({"state": np.asarray(store.arrays["state"][:]),
                                "actions": np.asarray(store.arrays["actions"][:])})
    save_checkpoint(root / "base", cfg, M.init_params(cfg, 0), stats, tokenizer_path=tok)
    return store, root / "base"


def random_batch(cfg, B: int, step: int):
    """A model-ready batch (Observation, actions) of random inputs (the --gpu mode has no demo store)."""
    from robosteer_assets.vla.config import IMAGE_KEYS
    from robosteer_assets.vla.observation import Observation

    r = np.random.default_rng(step)
    S = cfg.vision.resolution
    obs = Observation(images={k: r.uniform(-1, 1, (B, S, S, 3)).astype(np.float32) for k in IMAGE_KEYS},
                      image_masks={k: np.ones(B, bool) for k in IMAGE_KEYS},
                      state=r.normal(size=(B, cfg.action_dim)).astype(np.float32),
                      tokenized_prompt=r.integers(1, cfg.vocab_size, (B, cfg.max_token_len)).astype(np.int32),
                      tokenized_prompt_mask=np.arange(cfg.max_token_len)[None].repeat(B, 0) < 20)
    return obs, r.normal(size=(B, cfg.action_horizon, cfg.action_dim)).astype(np.float32)


def measure(method: str, base, store, heads, args) -> dict:
    from robosteer_assets.training.trainer import Trainer, TrainConfig

    cfg = TrainConfig(method=method, batch_size=args.batch, seed=0, remat=args.remat,
                      schedule=dict(warmup_steps=max(1, args.steps // 10), peak_lr=args.lr,
                                    decay_steps=args.steps, decay_lr=args.lr / 10))
    t0 = time.monotonic()
    tr_obj = Trainer(cfg, base, heads)
    print(f"{method}: trainer ready in {time.monotonic() - t0:.1f} s", flush=True)
    if store is not None:
        from robosteer_assets.training.data import ChunkDataset, model_batch

        data = ChunkDataset([store], tr_obj.lcfg.action_horizon, args.batch, seed=0)

        def batch(i):
            return tr_obj.put_batch(*model_batch(tr_obj.lcfg, base.tokenizer, base.norm_stats, data.batch_at(i)))
    else:
        def batch(i):
            return tr_obj.put_batch(*random_batch(base.cfg, args.batch, i))
    obs, acts = batch(0)
    compiled = tr_obj.lower_step(obs, acts).compile()
    mem = compiled.memory_analysis()
    xla_mb = (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
              - mem.alias_size_in_bytes) / 2**20 if mem is not None else float("nan")
    temp_mb = mem.temp_size_in_bytes / 2**20 if mem is not None else float("nan")
    compile_s = time.monotonic() - t0
    print(f"{method}: compiled, {compile_s:.1f} s since start", flush=True)
    tr, opt = tr_obj.initial_state()
    losses, times = [], []
    for i in range(args.steps):
        obs, acts = batch(i % 4 if store is None else i)
        ts = time.monotonic()
        tr, opt, info = tr_obj.step(tr, opt, obs, acts, i)
        losses.append(float(info["loss"]))
        times.append(time.monotonic() - ts)
    steady = times[2:] or times
    n_trainable = tr_obj.n_trainable
    del tr, opt, tr_obj
    gc.collect()
    return {"method": method, "trainable": n_trainable, "step_s": float(np.median(steady)),
            "step_s_min": float(np.min(steady)), "xla_mb": xla_mb, "temp_mb": temp_mb, "setup_compile_s": compile_s,
            "losses": losses, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="30 steps, batch 8")
    ap.add_argument("--model", default="pi0_tiny")
    ap.add_argument("--base", help="base checkpoint dir (default: a random-init --model)")
    ap.add_argument("--steps", type=int, default=None, help="steps per method (default 200; --quick 30)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default 32; --quick 8)")
    ap.add_argument("--lr", type=float, default=1e-3, help="peak lr (scaled up for a random-init tiny model)")
    ap.add_argument("--heads", type=int, default=20, help="selected heads (paper m = 20; first m by index)")
    ap.add_argument("--out", default=str(ROOT / "artifacts" / "bench_finetune"))
    ap.add_argument("--gpu", action="store_true", help="real pi0 (bf16 frozen weights, remat), random batches, "
                    "random-init weights: step time and XLA memory only (needs an accelerator)")
    ap.add_argument("--remat", action="store_true", help="rematerialise the transformer blocks (openpi does)")
    args = ap.parse_args()
    if args.gpu:
        import logging

        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
        args.model = "pi0" if args.model == "pi0_tiny" else args.model
        args.remat = True
    args.steps = args.steps or (8 if args.gpu else 30 if args.quick else 200)
    args.batch = args.batch or (8 if args.quick else 32)
    _cache()
    import jax

    from robosteer_assets.vla.checkpoint import load_checkpoint

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if args.gpu:  # no checkpoint, no demo store: random-init real config, random batches
            from robosteer_assets.vla import model as M
            from robosteer_assets.vla.checkpoint import LoadedCheckpoint
            from robosteer_assets.vla.config import get_config

            mcfg = get_config(args.model)
            store, base = None, LoadedCheckpoint(cfg=mcfg, params=M.init_params(mcfg, 0), norm_stats={},
                                                 tokenizer=None, path=Path(tmp))
        else:
            store, base_dir = make_task(Path(tmp), args.model, episodes=4, T=30)
            base = load_checkpoint(args.base or base_dir)
        L, N = base.cfg.num_layers, base.cfg.num_heads
        rng = np.random.default_rng(0)
        heads = [(int(i // N), int(i % N)) for i in sorted(rng.choice(L * N, min(args.heads, L * N), replace=False))]
        print(f"bench_finetune: {base.cfg.name}, batch {args.batch}, {args.steps} steps/method, {len(heads)} heads, "
              f"{jax.device_count()} {jax.devices()[0].platform} device(s), lr {args.lr} (shared machine: noisy)")
        rows = [measure(m, base, store, heads, args) for m in ("steering", "full_lora")]
    print(f"{'method':10} {'trainable':>11} {'step_s':>8} {'min_s':>7} {'xla_MB':>8} {'temp_MB':>8} {'compile_s':>9} "
          f"{'loss[0:5]':>9} {'loss[-5:]':>9}")
    for r in rows:
        print(f"{r['method']:10} {r['trainable']:>11,} {r['step_s']:>8.3f} {r['step_s_min']:>7.3f} {r['xla_mb']:>8.1f} "
              f"{r['temp_mb']:>8.1f} {r['setup_compile_s']:>9.1f} {np.mean(r['losses'][:5]):>9.4f} "
              f"{np.mean(r['losses'][-5:]):>9.4f}")
    st, lo = rows
    (out / "loss_curves.json").write_text(json.dumps({r["method"]: r["losses"] for r in rows}))
    from robosteer_assets.common.plots import figure_png, new_figure

    fig, ax = new_figure(6, 3.5)
    for r in rows:
        ax.plot(np.arange(1, len(r["losses"]) + 1), r["losses"], lw=0.8, label=r["method"])
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss")
    ax.set_title(f"{base.cfg.name}: steering vs full-head LoRA")
    ax.legend()
    (out / "loss_curves.png").write_bytes(figure_png(fig))
    print(f"loss curves: {out / 'loss_curves.png'}")
    ratio = st["step_s"] / lo["step_s"]
    # the same comparison in FLOPs on the full-size configs (jaxpr count, nothing allocated), and on this one
    from robosteer_assets.training import step_cost

    cost_rows = step_cost.report((base.cfg.name, "pi0", "pi05") if base.cfg.name not in ("pi0", "pi05")
                                 else ("pi0", "pi05"), batch=32, remat=True)
    print("\ntraining-step FLOPs at batch 32 with remat (training.step_cost; steering cannot skip the LLM's "
          "activation backward):")
    print(step_cost.format_rows(cost_rows))
    flop = {(r["model"], r["method"]): r["ratio_to_full_lora"] for r in cost_rows}
    print(f"RESULT step_ratio={ratio:.3f} steering_step_s={st['step_s']:.4f} lora_step_s={lo['step_s']:.4f} "
          f"steering_xla_mb={st['xla_mb']:.1f} lora_xla_mb={lo['xla_mb']:.1f} steering_trainable={st['trainable']} "
          f"lora_trainable={lo['trainable']} batch={args.batch} model={base.cfg.name} "
          f"device={jax.devices()[0].platform} flop_ratio_pi0={flop[('pi0', 'steering')]:.3f} "
          f"flop_ratio_pi05={flop[('pi05', 'steering')]:.3f} "
          f"flop_ratio_this={flop.get((base.cfg.name, 'steering'), float('nan')):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
