"""Group `embedded_default`: what stands in for a robot and a pretrained VLA on a
machine without either — simulated DROID-format demonstrations written into the
demos root (the sensor and `raw_episodes` read them like real data)."""

import json
import time

import dagster as dg

from robosteer_assets.common.plots import loss_curve_png
from robosteer_assets.defs.config import BasePolicyConfig, SimDemosConfig
from robosteer_assets.defs.metadata import md_image, path
from robosteer_assets.defs.partitions import task_partitions
from robosteer_assets.defs.resources import BaseModel, ProjectPaths
from robosteer_assets.droid.layout import find_episode_dirs


@dg.asset(
    group_name="embedded_default",
    partitions_def=task_partitions,
    description="Scripted-expert demonstrations of a simulated task (MuJoCo Panda + Robotiq), recorded in "
    "DROID's raw layout into <demos_root>/<task>/ (failures under failure/).",
    kinds={"mujoco"},
)
def sim_demos(context: dg.AssetExecutionContext, config: SimDemosConfig, paths: ProjectPaths):
    from robosteer_assets.sim.cli import render_start_png
    from robosteer_assets.sim.recorder import RecordConfig, record_demos
    from robosteer_assets.sim.tasks import TASKS

    task = context.partition_key
    if task not in TASKS:
        raise dg.Failure(f"partition {task!r} is not a simulated task; sim_demos records one of {sorted(TASKS)}")
    task_dir = paths.task_demos(task)
    existing = find_episode_dirs(task_dir) if task_dir.exists() else []
    t0 = time.monotonic()
    if len(existing) >= config.episodes:
        context.log.info(f"{task_dir} already holds {len(existing)} demos (>= {config.episodes}); nothing recorded")
        written = existing
    else:
        written = record_demos(task, config.episodes, paths.demos(), seed=config.seed, variation=config.variation,
                               cfg=RecordConfig(image_size=config.image_size))
    failures = find_episode_dirs(task_dir / "failure") if (task_dir / "failure").exists() else []
    png = render_start_png(task, paths.reports() / f"sim_{task}_{config.variation}.png", variation=config.variation)
    return dg.MaterializeResult(
        metadata={
            "demos": len(written),
            "failed_attempts": len(failures),
            "record_s": round(time.monotonic() - t0, 1),
            "variation": config.variation,
            "demos_dir": path(task_dir),
            "start_state": md_image(png.read_bytes(), f"{task} start state (exterior | wrist)"),
        }
    )


CHECKPOINT_OK = "loads_and_predicts_finite_actions"


def smoke_test_checkpoint(ckpt_dir, config_name: str = "", tokenizer_path: str = "") -> dict:
    """Load a checkpoint as a Policy and predict one chunk on a neutral DROID observation."""
    import numpy as np

    from robosteer_assets.vla.config import get_config
    from robosteer_assets.vla.policy import Policy

    kw = {}
    if config_name and not (ckpt_dir / "robosteer_config.json").exists():
        kw["cfg"] = get_config(config_name)
    if tokenizer_path:
        kw["tokenizer_path"] = tokenizer_path
    policy = Policy.from_checkpoint(ckpt_dir, **kw)
    obs = {"observation/exterior_image_1_left": np.full((224, 224, 3), 128, np.uint8),
           "observation/wrist_image_left": np.full((224, 224, 3), 128, np.uint8),
           "observation/joint_position": np.zeros(7), "observation/gripper_position": np.zeros(1),
           "prompt": "pick up red cube"}
    actions = np.asarray(policy.infer(obs)["actions"])
    return {"finite": bool(np.isfinite(actions).all()), "chunk_shape": list(actions.shape)}


@dg.asset(
    group_name="embedded_default",
    pool="gpu",
    check_specs=[dg.AssetCheckSpec(CHECKPOINT_OK, asset="base_policy", blocking=True,
                                   description="the base checkpoint loads as a Policy and predicts finite actions")],
    description="The base VLA. Embedded default: a tiny pi0 trained from scratch on a broad simulated corpus "
    "(every simulated task except the held-out target, all variations), standing in for pi0-DROID. With "
    "resources.base_model.checkpoint_dir set: the user's openpi checkpoint, validated (tree, shapes, dtypes).",
    kinds={"jax", "orbax"},
)
def base_policy(context: dg.AssetExecutionContext, config: BasePolicyConfig, paths: ProjectPaths,
                base_model: BaseModel, gpu_pipes: dg.PipesSubprocessClient):
    import sys

    ckpt = base_model.resolve_checkpoint(paths)
    md: dict = {"checkpoint": path(ckpt)}
    if base_model.is_embedded:
        spec = {"corpus_root": str(paths.root() / "corpus"), "out": str(ckpt), **config.model_dump()}
        res = gpu_pipes.run(context=context, command=[sys.executable, "-m", "robosteer_assets.remote.run_step"],
                            extras={"step": "base_policy", "spec": spec}).get_materialize_result()
        md.update(res.metadata or {})
        losses_file = ckpt.parent / f"{ckpt.name}.losses.json"
        if losses_file.exists():
            losses = json.loads(losses_file.read_text())
            md["loss_curve"] = md_image(loss_curve_png(losses, "base policy training"), "loss curve")
    else:
        from robosteer_assets.vla.checkpoint import load_checkpoint
        from robosteer_assets.vla.config import get_config
        from robosteer_assets.vla.model import param_count

        kw = {"tokenizer_path": base_model.tokenizer_path or None}
        if not (ckpt / "robosteer_config.json").exists():
            kw["cfg"] = get_config(base_model.config_name)
        loaded = load_checkpoint(ckpt, **kw)
        md.update({"model": loaded.cfg.name, "parameters": param_count(loaded.params), "asset_id": loaded.asset_id})
    smoke = smoke_test_checkpoint(ckpt, base_model.config_name, base_model.tokenizer_path)
    return dg.MaterializeResult(
        metadata=md,
        check_results=[dg.AssetCheckResult(check_name=CHECKPOINT_OK, passed=smoke["finite"], metadata=smoke)],
    )
