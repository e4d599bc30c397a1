"""Typed run configuration for every tunable, with the paper's defaults.

Each class mirrors a domain dataclass; the asset converts it with
`to_domain()`. Defaults are the paper's (Mitra et al. 2025: 20 demos, 6 Hz,
224x224, first suffix token, cosine k-NN over k in {10,20,30,40}, m = 20,
LoRA rank 8, 5000 steps, batch 32, warmup-cosine 200 / 2.5e-5 / 5000 / 2.5e-6,
40-cell grid). The embedded default overrides a few for CPU (see
robosteer_assets/pipeline_cli.py).
"""

from __future__ import annotations

from typing import Literal

import dagster as dg
from pydantic import Field


class IngestConfig(dg.Config):
    image_size: int = Field(224, description="center-crop to square, resize to this size")
    target_hz: float = Field(6.0, description="resample episodes to this control rate (paper: 6 Hz)")
    min_episodes: int = Field(20, description="fail the task when fewer valid episodes (paper: 20 demos)")
    annotations_path: str = Field("", description="DROID annotations JSON (uuid -> language_instruction1..3)")
    exterior_camera: Literal["left", "right", "ext1", "ext2"] = Field("left", description="which exterior camera (metadata left_mp4_path by default)")
    feature_map: Literal["auto", "openpi_droid", "openpi_libero", "lerobot"] = Field(
        "auto", description="for a LeRobot dataset, the preset of droid.feature_map that makes the model inputs "
        "(auto: the first that fits)")


class KeyframesConfig(dg.Config):
    gripper_threshold: float = Field(0.5, description="binarise the continuous gripper position")
    velocity_threshold: float = Field(0.1, description="'stopped' when every |joint velocity| <= this (rad/s)")
    stop_buffer: int = Field(4, description="steps between two 'stopped' keyframes")
    idle_filter: bool = Field(False, description="drop openpi-style idle ranges first")


class ActivationsConfig(dg.Config):
    timesteps: Literal["keyframes", "all"] = Field("keyframes", description="paper: keyframes (Yin et al.)")
    position: Literal["first_suffix", "last_prefix"] = Field("first_suffix", description="token position")
    batch_size: int = 16
    storage_dtype: Literal["float16", "float32"] = "float16"


class HeadScoresConfig(dg.Config):
    ks: list[int] = Field(default_factory=lambda: [10, 20, 30, 40])
    metric: Literal["cosine", "euclidean"] = "cosine"
    query_chunk: int = Field(512, description="queries per similarity chunk (memory: head_chunk x query_chunk x N)")
    head_chunk: int = Field(8, description="heads per similarity chunk")
    topk: Literal["auto", "host", "device"] = Field(
        "auto", description="exact top-k: host (numpy threads, fastest on CPU), device (lax.top_k, GPU/TPU), "
        "auto picks by JAX backend")


class SelectionConfig(dg.Config):
    m: int = Field(20, description="number of heads to select (paper: 20)")
    selector: Literal["knn", "random", "classification", "cma"] = Field(
        "knn", description="knn (paper); random, classification (A.2), cma (causal noise ablation) for ablations")
    multitask: Literal["none", "joint", "non_overlapping"] = Field(
        "none", description="joint: one head set from the pooled examples of `tasks` + this task; "
        "non_overlapping: each task its own m heads, union trained")
    tasks: list[str] = Field(default_factory=list, description="other task partitions for multi-task / "
                             "classification negatives (their head_activations must exist)")
    seed: int = 0
    cma_noise_std: float = 1.0
    cma_max_examples: int = 64


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


class EvalConfig(dg.Config):
    """The 40-placement grid protocol in the simulator (evaluation.evaluator.SimEvalConfig)."""

    variation: Literal["none", "lighting", "form", "distractors"] = "none"
    actions_per_chunk: int = Field(8, description="execute the first n actions of each chunk (openpi DROID client: 8)")
    max_steps: int = Field(0, description="step limit per trial in 6 Hz steps; 0 = the task's own limit")
    post_success_steps: int = Field(3, description="steps the success must hold before the trial ends")
    num_steps: int = Field(10, description="Euler steps of the flow-matching sampler (openpi: 10)")
    workers: int = Field(1, description="trials run in this many processes (each loads the policy)")
    seed: int = Field(0, description="trial yaws and policy noise derive from (seed, row, col)")
    record_video: bool = Field(False, description="one MP4 per trial (exterior | wrist) under <data>/videos")


class SimDemosConfig(dg.Config):
    episodes: int = Field(20, description="successful scripted demonstrations to record (paper: 20)")
    seed: int = Field(0, description="placements and episode ids derive from (task, variation, seed)")
    variation: Literal["none", "lighting", "form", "distractors"] = "none"
    image_size: int = 224


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
