"""`robosteer pretrain`: build the embedded base policy that ships with the project.

Records the simulated corpus (``embedded.corpus``), pretrains ``pi0_tiny`` on it with the
project's training loop (resumable: rerun the same command after a kill), exports the
checkpoint in openpi's layout, measures zero-shot success on the paper's target tasks over
the 40-cell grid, and writes the model card next to the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
from dataclasses import asdict, replace

from robosteer_assets.embedded.base_policy import EMBEDDED_EVAL_NOISE_SCALE, SHIPPED_BASE, BasePolicyConfig
from robosteer_assets.embedded.corpus import PAPER_TARGETS, CorpusConfig


def register(sub) -> None:
    d, dc = BasePolicyConfig(), CorpusConfig()
    p = sub.add_parser("pretrain", help="build the embedded base policy (corpus, pretraining, zero-shot eval, card)",
                       description=__doc__)
    p.add_argument("--out", default=str(SHIPPED_BASE), help="checkpoint directory (default: the shipped base)")
    p.add_argument("--corpus-root", default="data/corpus", help="where the corpus demos and stores go")
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--peak-lr", type=float, default=d.peak_lr)
    p.add_argument("--augment", default=d.augment, choices=("none", "color", "openpi"))
    p.add_argument("--object-aux-weight", type=float, default=d.object_aux_weight,
                   help="weight of the object-position probe loss (0: flow matching alone)")
    p.add_argument("--episodes-per-task", type=int, default=dc.episodes_per_task)
    p.add_argument("--held-out", default=",".join(dc.held_out_tasks),
                   help="tasks whose paper setting never appears in the corpus (comma separated)")
    p.add_argument("--eval-tasks", default=",".join(PAPER_TARGETS),
                   help="tasks to measure zero-shot success on (comma separated; empty: none)")
    p.add_argument("--workers", type=int, default=2,
                   help="processes recording the corpus and running the zero-shot evaluation")
    p.add_argument("--eval-noise-scale", type=float, default=EMBEDDED_EVAL_NOISE_SCALE,
                   help="flow noise scale of the zero-shot evaluation (openpi: 1)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.set_defaults(handler=_pretrain)


def _pretrain(args) -> int:
    import logging

    from robosteer_assets.common.jaxsetup import configure_jax
    from robosteer_assets.embedded.base_policy import build_base_policy
    from robosteer_assets.embedded.card import write_card
    from robosteer_assets.embedded.corpus import corpus_settings

    configure_jax()
    log = logging.getLogger("robosteer.pretrain")
    corpus = replace(CorpusConfig(), episodes_per_task=args.episodes_per_task,
                     held_out_tasks=tuple(t for t in args.held_out.split(",") if t))
    cfg = replace(BasePolicyConfig(), corpus=corpus, steps=args.steps, batch_size=args.batch_size,
                  peak_lr=args.peak_lr, augment=args.augment, seed=args.seed,
                  object_aux_weight=args.object_aux_weight)
    res = build_base_policy(args.corpus_root, args.out, cfg, workers=args.workers)
    rows = res.get("log_rows") or []
    card = {"command": " ".join(["robosteer pretrain", *(shlex.quote(a) for a in sys.argv[2:])]),
            "corpus": json.loads(json.dumps(asdict(corpus), default=list)),
            "settings": [s.folder for s in corpus_settings(corpus)],
            "episodes": res["episodes"], "steps_of_data": res["steps_of_data"],
            "train": json.loads(json.dumps(asdict(cfg.train_config()), default=list)),
            "steps": cfg.steps, "wall_s": res["wall_s"], "final_loss": res["final_loss"],
            "machine": f"{platform.machine()} CPU x{os.cpu_count()}",
            "loss_every": [[r["step"], r["loss"]] for r in rows][:: max(1, len(rows) // 20)]}
    zero_shot = {}
    for task in [t for t in args.eval_tasks.split(",") if t]:
        from robosteer_assets.evaluation.evaluator import PolicySpec, SimEvalConfig, evaluate

        trials = evaluate(task, PolicySpec(kind="checkpoint", checkpoint=str(args.out)), "zero_shot",
                          SimEvalConfig(workers=args.workers, noise_scale=args.eval_noise_scale))
        zero_shot[task] = {"successes": int(sum(r["success"] for r in trials)), "trials": len(trials)}
        log.info("zero-shot %s: %d/%d", task, zero_shot[task]["successes"], zero_shot[task]["trials"])
    card["zero_shot"] = zero_shot
    card["eval_noise_scale"] = args.eval_noise_scale
    path = write_card(args.out, card)
    print(f"base policy: {args.out} (card: {path})")
    for task, r in zero_shot.items():
        print(f"  zero-shot {task}: {r['successes']}/{r['trials']}")
    return 0
