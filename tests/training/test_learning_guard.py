"""Guard against changes that break learning: a short Robotic Steering finetune from the shipped base
policy, on 20 simulated demos of ``pick_cube``, must succeed clearly more often in closed loop than the
base's zero-shot on the same grid cells.

Everything runs the real path: scripted demos in DROID's layout, ingest at the model's resolution,
head activations, k-NN head selection, the steering finetune, and the sim evaluator's trials. A change
to the observation path, the data, the model, the optimiser or the chunk execution that stops the policy
from learning the task makes the finetuned policy no better than the base and fails this test.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow

TASK = "pick_cube"
# a spread of the 5 x 8 grid: every row, every column pair
CELLS = ((0, 0), (0, 5), (1, 2), (1, 7), (2, 3), (2, 6), (3, 1), (3, 4), (4, 2), (4, 7))
STEPS = 300
MARGIN = 3  # successes over the base's, out of len(CELLS)


def _successes(task, ckpt, cells) -> int:
    from robosteer_assets.evaluation.evaluator import PolicySpec, SimEvalConfig, evaluate

    rows = evaluate(task, PolicySpec(kind="checkpoint", checkpoint=str(ckpt)), "guard",
                    SimEvalConfig(cells=tuple(cells), workers=2))
    return int(sum(r["success"] for r in rows))


def test_short_steering_finetune_beats_zero_shot(tmp_path):
    from robosteer_assets.droid.reader import ReadConfig
    from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
    from robosteer_assets.embedded.base_policy import SHIPPED_BASE, install_base_policy
    from robosteer_assets.sim.recorder import record_demos
    from robosteer_assets.steering.activations import ActivationsConfig, extract_activations, ActivationStore
    from robosteer_assets.steering.selection import select_heads
    from robosteer_assets.training.optimizer import ScheduleConfig
    from robosteer_assets.training.trainer import TrainConfig, finetune
    from robosteer_assets.vla.checkpoint import load_checkpoint

    base_dir = tmp_path / "base"
    install_base_policy(SHIPPED_BASE, base_dir)  # fails with the rebuild command when the base is missing/stale
    base = load_checkpoint(base_dir)
    record_demos(TASK, 20, tmp_path / "demos", seed=0)
    ingest_task(tmp_path / "demos" / TASK, tmp_path / "store" / TASK,
                IngestConfig(read=ReadConfig(image_size=base.cfg.vision.resolution), min_episodes=20))
    store = EpisodeStore.open(tmp_path / "store" / TASK)

    extract_activations(store, np.arange(store.num_steps), base, tmp_path / "activations.zarr",
                        ActivationsConfig(timesteps="all"))
    activations, actions, episodes = ActivationStore.open(tmp_path / "activations.zarr").load()
    result, _ = select_heads(activations, actions, episodes)
    cfg = TrainConfig(method="steering", steps=STEPS, batch_size=32, log_interval=50, save_interval=STEPS,
                      schedule=ScheduleConfig(warmup_steps=30, peak_lr=5e-4, decay_steps=STEPS, decay_lr=5e-5))
    finetune(base_dir, [store], tmp_path / "steering", cfg, heads=result.heads)

    before = _successes(TASK, base_dir, CELLS)
    after = _successes(TASK, tmp_path / "steering", CELLS)
    assert after >= before + MARGIN, (f"steering finetune: {after}/{len(CELLS)} cells vs the base's zero-shot "
                                      f"{before}/{len(CELLS)}; expected at least {MARGIN} more")
