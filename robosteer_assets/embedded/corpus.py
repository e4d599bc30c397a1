"""The base policy's training corpus: broad simulated experience that knows the
robot, the cameras and the scenes, but not the target setting.

Stand-in for pi0-DROID's pretraining data. The corpus holds scripted-expert
demonstrations of every simulated task EXCEPT the held-out target task(s), in
all visual variations (plain, lighting, form, distractors) and at placements
drawn over the whole grid rectangle. The base policy therefore knows the Panda,
the gripper, both camera views, the table and the other tasks' objects and
motions (reach, grasp, lift, place, press, push), but never sees the target
instruction or the target behaviour. Zero-shot success on the target is then
low and few-shot finetuning on the target's 20 demos matters, as in the
paper's Table 1 (pi0-DROID zero-shot 0-35 %).

Seeds are disjoint from the target demos' seeds (``seed_offset``), so no corpus
episode duplicates a target demonstration.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from robosteer_assets.common.progress import get_logger

log = get_logger("embedded.corpus")


@dataclass(frozen=True)
class CorpusConfig:
    held_out_tasks: tuple[str, ...] = ("pick_cube",)  # the target task(s): never in the corpus
    episodes_per_task: int = 6
    variations: tuple[str, ...] = ("none", "lighting", "form", "distractors")
    image_size: int = 224
    seed_offset: int = 10_000
    include_unseen: bool = False  # `pick_mug` is the paper's unseen task; kept out by default
    tasks: tuple[str, ...] = field(default=())  # explicit task list (default: all simulated tasks minus held out)


def corpus_tasks(cfg: CorpusConfig) -> list[str]:
    from robosteer_assets.sim.tasks import TASKS

    names = list(cfg.tasks) or [t for t, spec in TASKS.items() if spec.seen or cfg.include_unseen]
    unknown = sorted(set(names) - set(TASKS))
    if unknown:
        raise ValueError(f"CorpusConfig.tasks: unknown simulated tasks {unknown}; expected some of {sorted(TASKS)}")
    out = [t for t in names if t not in cfg.held_out_tasks]
    if not out:
        raise ValueError(f"CorpusConfig: every task is held out ({cfg.held_out_tasks}); the corpus would be empty")
    return out


def record_corpus(demos_root: str | os.PathLike, cfg: CorpusConfig = CorpusConfig()) -> dict[str, list[Path]]:
    """Record the corpus into ``<demos_root>/<task>/`` (DROID raw layout), cycling the
    variations over each task's episodes. Returns the episode folders per task.
    Tasks whose folder already holds enough episodes are left as they are."""
    from robosteer_assets.droid.layout import find_episode_dirs
    from robosteer_assets.sim.recorder import RecordConfig, record_demos

    demos_root = Path(demos_root)
    out: dict[str, list[Path]] = {}
    rec_cfg = RecordConfig(image_size=cfg.image_size, write_failures=False)
    for ti, task in enumerate(corpus_tasks(cfg)):
        existing = find_episode_dirs(demos_root / task) if (demos_root / task).exists() else []
        if len(existing) >= cfg.episodes_per_task:
            out[task] = existing
            continue
        per_var = [cfg.episodes_per_task // len(cfg.variations)] * len(cfg.variations)
        for i in range(cfg.episodes_per_task % len(cfg.variations)):
            per_var[i] += 1
        dirs: list[Path] = []
        for vi, (variation, n) in enumerate(zip(cfg.variations, per_var)):
            if n == 0:
                continue
            seed = cfg.seed_offset + 1000 * ti + 100 * vi
            dirs += record_demos(task, n, demos_root, seed=seed, variation=variation, cfg=rec_cfg)
        log.info("corpus: %s: %d episodes", task, len(dirs))
        out[task] = dirs
    return out
