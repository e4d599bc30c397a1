"""Guard against changes that break learning: a Robotic Steering finetune from the shipped base
policy, on 20 ``press_button`` demos recorded at four grid cells, must succeed clearly more often in
closed loop on those cells than the base's zero-shot.

Everything runs the real path with the main job's settings (``pipeline_cli.EMBEDDED_RUN_CONFIG``):
scripted demos in DROID's layout, ingest at the model's resolution, head activations at every
timestep, k-NN head selection, the steering finetune with ``robosteer run``'s schedule, and the sim
evaluator's trials with the main job's workers and flow noise scale. The demos put the button at the cells' centres with
their own yaws and start poses; the trials use each cell's trial yaw for two eval seeds. The start
pose does not tell the cells apart, so the finetuned policy must read the button's place from the
images: a change to the observation path, the data, the model, the optimiser or the chunk execution
that stops the policy from learning leaves it near the base's score.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TASK = "press_button"
CELLS = ((0, 1), (1, 6), (3, 2), (4, 5))  # spread over the 5 x 8 grid
DEMOS = 20  # the paper's count, 5 per cell
SEEDS = (0, 1)  # eval seeds: two trial yaws per cell
MARGIN = 4  # successes over the base's, out of len(CELLS) * len(SEEDS)


def _successes(task, ckpt, cells, seeds) -> int:
    from robosteer_assets.evaluation.evaluator import PolicySpec, SimEvalConfig, evaluate
    from robosteer_assets.pipeline_cli import EMBEDDED_RUN_CONFIG

    ok = 0
    for seed in seeds:  # the main job's eval settings (workers, flow noise scale) on these cells and seed
        rows = evaluate(task, PolicySpec(kind="checkpoint", checkpoint=str(ckpt)), "guard",
                        SimEvalConfig(cells=tuple(cells), seed=seed, **EMBEDDED_RUN_CONFIG["eval_trials__steering"]))
        ok += int(sum(r["success"] for r in rows))
    return ok


def test_steering_finetune_on_four_cells_beats_zero_shot(tmp_path):
    from robosteer_assets.droid.layout import metadata_path
    from robosteer_assets.droid.reader import ReadConfig
    from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
    from robosteer_assets.embedded.base_policy import SHIPPED_BASE, install_base_policy
    from robosteer_assets.pipeline_cli import EMBEDDED_RUN_CONFIG
    from robosteer_assets.sim.recorder import RecordConfig, record_demos
    from robosteer_assets.steering.activations import ActivationsConfig, ActivationStore, extract_activations
    from robosteer_assets.steering.selection import select_heads
    from robosteer_assets.training.trainer import TrainConfig, finetune
    from robosteer_assets.vla.checkpoint import load_checkpoint

    base_dir = tmp_path / "base"
    install_base_policy(SHIPPED_BASE, base_dir)  # fails with the rebuild command when the base is missing/stale
    base = load_checkpoint(base_dir)
    record_demos(TASK, DEMOS, tmp_path / "demos", seed=0, cells=CELLS, cfg=RecordConfig(write_failures=False))
    ingest_task(tmp_path / "demos" / TASK, tmp_path / "store" / TASK,
                IngestConfig(read=ReadConfig(image_size=base.cfg.vision.resolution), min_episodes=DEMOS))
    store = EpisodeStore.open(tmp_path / "store" / TASK)
    placements = [json.loads(metadata_path(Path(ep["path"])).read_text())["sim_placement"] for ep in store.episodes]
    assert sorted({tuple(p["cell"]) for p in placements}) == sorted(CELLS)

    extract_activations(store, np.arange(store.num_steps), base, tmp_path / "activations.zarr",
                        ActivationsConfig(**EMBEDDED_RUN_CONFIG["head_activations"]))
    activations, actions, episodes = ActivationStore.open(tmp_path / "activations.zarr").load()
    result, _ = select_heads(activations, actions, episodes)
    cfg = TrainConfig(method="steering", **EMBEDDED_RUN_CONFIG["steering_checkpoint"])
    finetune(base_dir, [store], tmp_path / "steering", cfg, heads=result.heads)

    before = _successes(TASK, base_dir, CELLS, SEEDS)
    after = _successes(TASK, tmp_path / "steering", CELLS, SEEDS)
    trials = len(CELLS) * len(SEEDS)
    print(f"learning guard: base {before}/{trials}, steering finetune {after}/{trials}")
    assert after >= before + MARGIN, (f"steering finetune: {after}/{trials} trials vs the base's zero-shot "
                                      f"{before}/{trials} on {TASK} cells {CELLS}; expected at least {MARGIN} more")
