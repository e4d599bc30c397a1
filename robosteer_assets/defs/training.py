"""Group `training` (paper Step 2): Robotic Steering (selective LoRA on the selected heads'
Q/O slices + auxiliary modules) and the full-head LoRA baseline, per task. Training runs
through dagster-pipes in pool `gpu`, so moving it to a GPU box or cluster changes the
`gpu_pipes` resource, not this code."""

import json

import dagster as dg

from robosteer_assets.common.plots import loss_curve_png
from robosteer_assets.defs.config import FinetuneConfig
from robosteer_assets.defs.embedded import CHECKPOINT_OK, smoke_test
from robosteer_assets.defs.metadata import md_image, path
from robosteer_assets.defs.partitions import task_partitions
from robosteer_assets.defs.resources import BaseModel, ProjectPaths
from robosteer_assets.defs.specs import run_remote
from robosteer_assets.defs.steering import SELECTED, selected_heads
from robosteer_assets.droid.scan import task_fingerprint


def _finetune(context, method: str, config: FinetuneConfig, paths: ProjectPaths, base_model: BaseModel,
              gpu_pipes: dg.PipesSubprocessClient):
    task = context.partition_key
    out = paths.checkpoints(task, method)
    from robosteer_assets.training.trainer import default_state_dir

    # the object-position objective is part of pretraining only (it trains the vision tower on sim labels)
    spec = config.to_spec(method=method, train_state_dir=str(default_state_dir(out)), object_aux_weight=0.0)
    res = run_remote(context, gpu_pipes, "finetune", spec, base_checkpoint=base_model.resolve_checkpoint(paths),
                     store=paths.store(task) / "episodes.zarr", selected_heads=paths.steering(task) / SELECTED,
                     out=out)
    md = {**(res.metadata or {}), "checkpoint": path(out),
          "demos_fingerprint": task_fingerprint(paths.demos(), task)}
    curve = out / "loss_curve.json"
    if curve.exists():
        losses = json.loads(curve.read_text())
        md["loss_curve"] = md_image(loss_curve_png(losses, f"{task}: {method}"), "loss curve")
    _, check = smoke_test(context, gpu_pipes, out)
    return dg.MaterializeResult(metadata=md, check_results=[check])


@dg.asset(
    group_name="training",
    partitions_def=task_partitions,
    deps=[selected_heads, dg.AssetKey("base_policy")],
    pool="gpu",
    check_specs=[dg.AssetCheckSpec(CHECKPOINT_OK, asset="steering_checkpoint", blocking=True)],
    description="Robotic Steering: LoRA (rank 8) on the selected heads' query/output slices (mask-aware optimizer) "
    "+ LLM feed-forward LoRA, norms, action/time/state projections; SigLIP, action expert and K/V frozen. "
    "Merged into an ordinary openpi-layout checkpoint (+ adapters, norm stats, heads, config).",
    kinds={"jax", "orbax"},
)
def steering_checkpoint(context: dg.AssetExecutionContext, config: FinetuneConfig, paths: ProjectPaths,
                        base_model: BaseModel, gpu_pipes: dg.PipesSubprocessClient):
    return _finetune(context, "steering", config, paths, base_model, gpu_pipes)


@dg.asset(
    group_name="training",
    partitions_def=task_partitions,
    deps=[dg.AssetKey("raw_episodes"), dg.AssetKey("base_policy")],
    pool="gpu",
    check_specs=[dg.AssetCheckSpec(CHECKPOINT_OK, asset="full_lora_checkpoint", blocking=True)],
    description="Baseline: the official pi0 LoRA setup (LoRA on all heads and feed-forward of both experts, "
    "SigLIP trainable), same data and schedule; merged openpi-layout checkpoint.",
    kinds={"jax", "orbax"},
)
def full_lora_checkpoint(context: dg.AssetExecutionContext, config: FinetuneConfig, paths: ProjectPaths,
                         base_model: BaseModel, gpu_pipes: dg.PipesSubprocessClient):
    return _finetune(context, "full_lora", config, paths, base_model, gpu_pipes)
