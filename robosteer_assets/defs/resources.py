"""Resources: where things live on disk, which base VLA checkpoint to start from,
and how GPU steps are launched (dagster-pipes)."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

from robosteer_assets.droid.layout import safe_task_name


class ProjectPaths(dg.ConfigurableResource):
    """Every on-disk location of the pipeline, below one data root (relative paths
    resolve against the working directory, i.e. the repo root for `dagster dev`)."""

    data_root: str = "data"
    demos_root: str = ""  # default: <data_root>/demos  (one folder per task, DROID raw episodes inside)
    settle_seconds: float = 30.0  # an episode whose files changed more recently is still arriving

    def root(self) -> Path:
        return Path(self.data_root).expanduser().resolve()

    def demos(self) -> Path:
        return Path(self.demos_root).expanduser().resolve() if self.demos_root else self.root() / "demos"

    # Every per-task path goes through safe_task_name: a partition key such as
    # "../x" or "bad name" raises UnsafeTaskNameError and never becomes a path.
    def task_demos(self, task: str) -> Path:
        return self.demos() / safe_task_name(task)

    def store(self, task: str) -> Path:
        return self.root() / "store" / safe_task_name(task)

    def steering(self, task: str) -> Path:
        return self.root() / "steering" / safe_task_name(task)

    def checkpoints(self, task: str, method: str) -> Path:
        return self.root() / "checkpoints" / safe_task_name(task) / method

    def base_checkpoint(self) -> Path:
        return self.root() / "checkpoints" / "base"

    def trials(self) -> Path:
        return self.root() / "trials"

    def duckdb_path(self) -> Path:
        return self.root() / "robosteer.duckdb"

    def reports(self) -> Path:
        return self.root() / "reports"


class BaseModel(dg.ConfigurableResource):
    """The base VLA. With `checkpoint_dir` empty, the embedded default's tiny
    base policy (asset `base_policy`) is used; on a GPU box point it at an openpi
    checkpoint directory (params/ + assets/<id>/norm_stats.json) and name its
    config (`pi0_droid`, `pi05_droid`, ...) and the PaliGemma tokenizer file."""

    checkpoint_dir: str = ""
    config_name: str = "pi0_tiny"
    tokenizer_path: str = ""
    asset_id: str = "droid"

    def resolve_checkpoint(self, paths: ProjectPaths) -> Path:
        return Path(self.checkpoint_dir).expanduser().resolve() if self.checkpoint_dir else paths.base_checkpoint()

    @property
    def is_embedded(self) -> bool:
        return not self.checkpoint_dir


def gpu_pipes_client() -> dg.PipesSubprocessClient:
    """Local launcher for GPU steps: a subprocess of this interpreter. On a cluster,
    swap this resource for dagster_k8s.PipesK8sClient (see docs/scale_out.md)."""
    env = {k: v for k, v in os.environ.items() if k.startswith(("JAX", "XLA", "MUJOCO", "MENAGERIE", "ROBOSTEER", "CUDA"))}
    return dg.PipesSubprocessClient(env=env)
