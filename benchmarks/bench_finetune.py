"""Finetuning benchmark (issue 5): step time of Robotic Steering vs full-head LoRA on the
same data, batch and model (paper: steering / LoRA = 0.79-0.86; target <= 0.6), and
their loss curves (PNG next to the log).

    .venv/bin/python benchmarks/bench_finetune.py [--quick] [--model pi0_tiny]

Ends with ``RESULT step_ratio=... steering_step_s=... lora_step_s=...``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from robosteer_assets.common.jaxsetup import configure_jax


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default="pi0_tiny")
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    configure_jax()
    from robosteer_assets.common.plots import figure_png, new_figure
    from robosteer_assets.droid import synthetic
    from robosteer_assets.droid.reader import ReadConfig
    from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
    from robosteer_assets.training.trainer import TrainConfig, finetune
    from robosteer_assets.vla import model as M
    from robosteer_assets.vla.checkpoint import save_checkpoint
    from robosteer_assets.vla.config import get_config
    from robosteer_assets.vla.normalize import compute_norm_stats
    from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

    steps = 15 if args.quick else 60
    root = Path(tempfile.mkdtemp(prefix="bench_finetune-"))
    synthetic.write_task(root / "demos", "pick_cube", n=4, T=30, image_size=64, control_hz=6.0)
    ingest_task(root / "demos" / "pick_cube", root / "store", IngestConfig(read=ReadConfig(image_size=224),
                                                                            min_episodes=4))
    store = EpisodeStore.open(root / "store")
    cfg = get_config(args.model)
    tok = train_tiny_tokenizer(["pick up the red cube"], root / "tok.model", cfg.vocab_size)
    stats = compute_norm_stats({"state": np.asarray(store.arrays["state"][:]),
                                "actions": np.asarray(store.arrays["actions"][:])})
    save_checkpoint(root / "base", cfg, M.init_params(cfg, 0), stats, tokenizer_path=tok)
    heads = [(l, h) for l in range(cfg.num_layers) for h in range(cfg.num_heads)][::3][:20]
    res, curves = {}, {}
    print(f"{'method':<10} {'steps':>6} {'batch':>6} {'median step s':>14} {'trainable params':>17} {'final loss':>11}")
    for method in ("steering", "full_lora"):
        fc = TrainConfig.from_dict({"method": method, "steps": steps, "batch_size": args.batch, "peak_lr": 1e-3,
                                    "warmup_steps": 5, "decay_steps": steps, "decay_lr": 1e-4,
                                    "log_interval": max(1, steps // 3)})
        out = finetune(root / "base", [store], root / method, fc, heads=heads if method == "steering" else None)
        res[method] = out
        curves[method] = json.loads((root / method / "loss_curve.json").read_text())
        print(f"{method:<10} {steps:>6} {args.batch:>6} {out['step_s_median']:>14.3f} "
              f"{out['trainable_parameters']:>17,} {out['final_loss']:>11.4f}")
    fig, ax = new_figure(6, 3.5)
    for m, c in curves.items():
        ax.plot(c, label=m)
    ax.set_xlabel("step")
    ax.set_ylabel("flow-matching loss")
    ax.legend()
    png = root / "loss_curves.png"
    png.write_bytes(figure_png(fig))
    print(f"loss curves: {png}")
    s, lo = res["steering"]["step_s_median"], res["full_lora"]["step_s_median"]
    print(f"RESULT step_ratio={s / lo:.3f} steering_step_s={s:.3f} lora_step_s={lo:.3f} "
          f"steering_params={res['steering']['trainable_parameters']} "
          f"lora_params={res['full_lora']['trainable_parameters']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
