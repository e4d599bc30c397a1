"""Typed run configuration for every tunable, with the paper's defaults.

Each stage's configuration is one frozen dataclass in its domain module; the
run config below is generated from it (``defs.specs.spec_config``: same fields,
defaults and descriptions) and ``config.to_spec(...)`` gives the dataclass back.
Defaults are the paper's (Mitra et al. 2025: 20 demos, 6 Hz, 224x224, first
suffix token, cosine k-NN over k in {10,20,30,40}, m = 20, LoRA rank 8, 5000
steps, batch 32, warmup-cosine 200 / 2.5e-5 / 5000 / 2.5e-6, 40-cell grid). The
embedded default overrides a few for CPU (see robosteer_assets/pipeline_cli.py).
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field

from robosteer_assets.defs.specs import spec_config
from robosteer_assets.droid.keyframes import KeyframeConfig
from robosteer_assets.droid.store import IngestConfig as IngestSpec
from robosteer_assets.evaluation.evaluator import SimEvalConfig
from robosteer_assets.sim.demos import SimDemosConfig as SimDemosSpec
from robosteer_assets.steering.activations import ActivationsConfig as ActivationsSpec
from robosteer_assets.steering.knn import KnnConfig
from robosteer_assets.steering.overlap import OverlapConfig as OverlapSpec
from robosteer_assets.steering.selection import SelectionConfig as SelectionSpec

IngestConfig = spec_config(IngestSpec)
KeyframesConfig = spec_config(KeyframeConfig, name="KeyframesConfig")
ActivationsConfig = spec_config(ActivationsSpec)
HeadScoresConfig = spec_config(KnnConfig, name="HeadScoresConfig")
# the k-NN regression of selection is the one head_scores recorded with the scores
SelectionConfig = spec_config(SelectionSpec, resolved=("knn",))
OverlapConfig = spec_config(OverlapSpec)
# trial videos go under the data root
EvalConfig = spec_config(SimEvalConfig, resolved=("video_dir",), name="EvalConfig")
SimDemosConfig = spec_config(SimDemosSpec)


class FinetuneConfig(dg.Config):
    steps: int = 5000
    batch_size: int = 32
    lora_rank: int = 8
    warmup_steps: int = 200
    peak_lr: float = 2.5e-5
    decay_steps: int = 5000
    decay_lr: float = 2.5e-6
    save_interval: int = Field(1000, description="orbax training state every N steps (a killed run resumes there)")
    log_interval: int = 100
    seed: int = 42
    fsdp_devices: int = Field(1, description="FSDP shards over the local devices; the rest is data parallel "
                              "(batch_size must divide by the device count)")
    remat: bool = Field(False, description="rematerialise each transformer block (openpi does; saves memory on GPU)")
    norm_stats: Literal["checkpoint", "demos"] = Field("checkpoint", description="the base checkpoint's norm "
                                                       "stats (openpi) or stats computed from the task's demos")


class BasePolicyConfig(dg.Config):
    """The embedded default's base policy (ignored when resources.base_model.checkpoint_dir is set)."""

    model: str = Field("pi0_tiny", description="model preset trained from scratch on the simulated corpus")
    held_out_tasks: list[str] = Field(default_factory=lambda: ["pick_cube"],
                                      description="target task(s) never shown to the base policy")
    episodes_per_task: int = 6
    steps: int = 600
    batch_size: int = 8
    peak_lr: float = 1e-3
    seed: int = 0
