"""Open-loop replay of stored demonstrations: the first rung of the closed-loop ladder.

Each episode of a task's episode store is replayed in the simulator from its recorded
start state (the ``sim_*`` fields of the episode's DROID metadata: seed, variation, object
colours, start-pose noise): the stored actions, exactly as the training pipeline reads
them back, are executed one per 6 Hz step through ``evaluator.executed_action``, as the
sim evaluator executes a policy's actions. A demo that succeeded when recorded must
succeed again; if not, the recorded action interface and the executed one disagree.
Episodes recorded with command noise are not replayable by construction (their labels
are the expert's clean commands, not what was executed) and are reported as skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def episode_metadata(episode_dir: str | Path) -> dict:
    """The DROID ``metadata_<uuid>.json`` of a raw episode folder."""
    files = sorted(Path(episode_dir).glob("metadata_*.json"))
    if not files:
        raise FileNotFoundError(f"{episode_dir}: no metadata_*.json (expected a DROID raw episode folder)")
    return json.loads(files[0].read_text())


def replay_episode(task: str, meta: dict, actions: np.ndarray, post_success_steps: int = 3,
                   binarize_gripper: bool = True) -> dict:
    """Replay ``actions`` [T, 8] from the start state recorded in ``meta``; return
    {success, steps, first_success_step, skipped}."""
    from robosteer_assets.evaluation.evaluator import executed_action
    from robosteer_assets.sim.env import TabletopEnv

    if "sim_seed" not in meta:
        raise ValueError(f"episode metadata: expected the simulator fields (sim_seed, ...), found keys {sorted(meta)}")
    if float(meta.get("sim_action_noise", 0.0)) > 0:
        return {"success": False, "steps": 0, "first_success_step": None, "skipped": "recorded with command noise"}
    env = TabletopEnv(task, variation=meta.get("sim_variation", "none"), colors=meta.get("sim_colors") or None,
                      render_images=False)
    try:
        env.reset(cell=None, seed=int(meta["sim_seed"]), home_noise=float(meta.get("sim_home_noise", 0.0)))
        first, steps = None, 0
        for a in np.asarray(actions, np.float64):
            env.step(executed_action(a, binarize_gripper))
            steps += 1
            if first is None and env.success():
                first = steps
            if first is not None and steps - first >= post_success_steps:
                break
        return {"success": bool(env.success()), "steps": steps, "first_success_step": first, "skipped": None}
    finally:
        env.close()


def replay_store(store, task: str | None = None) -> list[dict]:
    """Replay every episode of an ``EpisodeStore`` (its own task by default); one row per episode."""
    task = task or store.task
    actions = np.asarray(store.arrays["actions"][:])
    rows = []
    for ep in store.episodes:
        meta = episode_metadata(ep["path"])
        r = replay_episode(task, meta, actions[ep["start"]: ep["start"] + ep["length"]])
        rows.append({"uuid": ep["uuid"], "recorded_first_success": meta.get("sim_first_success_step"), **r})
    return rows
