"""The simulated demonstrations stage: scripted-expert demos of a task written in
DROID's raw layout under ``<demos_root>/<task>/`` (the embedded default's stand-in
for a robot), and a picture of the task's start state."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robosteer_assets.sim.recorder import RecordConfig
from robosteer_assets.sim.variations import VariationName


@dataclass(frozen=True)
class SimDemosConfig:
    """How many demos of which scene, and how each is recorded."""

    episodes: int = field(default=20, metadata={"description": "successful scripted demonstrations to record "
                                                               "(paper: 20)"})
    seed: int = field(default=0, metadata={"description": "placements and episode ids derive from (task, "
                                                          "variation, seed)"})
    variation: VariationName = field(default="none", metadata={"description": "scene variation of the demos"})
    record: RecordConfig = field(default_factory=RecordConfig)

    def __post_init__(self):
        if not isinstance(self.episodes, int) or self.episodes < 1:
            raise ValueError(f"SimDemosConfig.episodes: expected a positive number of demos, found {self.episodes!r}")


def render_start_png(task: str, out: str | Path, variation: str = "none", cell=(2, 3), seed: int = 0,
                     image_size: int = 224) -> Path:
    """The start state of ``task`` at grid ``cell`` from both cameras (exterior | wrist), as a PNG file."""
    from PIL import Image

    from robosteer_assets.common.atomic import write_bytes_atomic
    from robosteer_assets.sim.env import TabletopEnv

    env = TabletopEnv(task, variation=variation, image_size=image_size)
    env.reset(cell=tuple(cell), seed=seed)
    ext, wrist = env.render()
    env.close()
    buf = io.BytesIO()
    Image.fromarray(np.concatenate([ext, wrist], axis=1)).save(buf, format="PNG")
    write_bytes_atomic(out, buf.getvalue())
    return Path(out)


def record_task_demos(cfg: SimDemosConfig, *, task: str, demos_root: str, preview: str) -> dict:
    """Record ``cfg.episodes`` demos of ``task`` under ``<demos_root>/<task>/`` unless that many are there
    already; render the start state to ``preview``. Returns a summary."""
    from robosteer_assets.droid.layout import find_episode_dirs
    from robosteer_assets.sim.recorder import record_demos
    from robosteer_assets.sim.tasks import TASKS

    if task not in TASKS:
        raise ValueError(f"task: expected one of the simulated tasks {sorted(TASKS)}, found {task!r}")
    task_dir = Path(demos_root) / task
    existing = find_episode_dirs(task_dir) if task_dir.exists() else []
    t0 = time.monotonic()
    if len(existing) >= cfg.episodes:
        recorded, demos = 0, len(existing)
    else:
        demos = len(record_demos(task, cfg.episodes, demos_root, seed=cfg.seed, variation=cfg.variation,
                                 cfg=cfg.record))
        recorded = demos
    failures = find_episode_dirs(task_dir / "failure") if (task_dir / "failure").exists() else []
    render_start_png(task, preview, variation=cfg.variation)
    return {"demos": demos, "recorded": recorded, "failed_attempts": len(failures),
            "record_s": round(time.monotonic() - t0, 1), "variation": cfg.variation, "demos_dir": str(task_dir),
            "preview": str(preview)}
