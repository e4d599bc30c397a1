"""Group `embedded_default`: what stands in for a robot and a pretrained VLA on a
machine without either — simulated DROID-format demonstrations written into the
demos root (the sensor and `raw_episodes` read them like real data), and the base
policy trained on a simulated corpus."""

import json
from pathlib import Path

import dagster as dg

from robosteer_assets.common.plots import loss_curve_png
from robosteer_assets.defs.config import BasePolicyConfig, SimDemosConfig
from robosteer_assets.defs.metadata import md_image, path
from robosteer_assets.defs.partitions import task_partitions
from robosteer_assets.defs.resources import BaseModel, ProjectPaths
from robosteer_assets.defs.specs import run_remote
from robosteer_assets.embedded.base_policy import SHIPPED_BASE, install_base_policy
from robosteer_assets.sim.demos import record_task_demos
from robosteer_assets.vla.policy import SmokeTestConfig

CHECKPOINT_OK = "loads_and_predicts_finite_actions"


@dg.asset(
    group_name="embedded_default",
    partitions_def=task_partitions,
    description="Scripted-expert demonstrations of a simulated task (MuJoCo Panda + Robotiq), recorded in "
    "DROID's raw layout into <demos_root>/<task>/ (failures under failure/).",
    kinds={"mujoco"},
)
def sim_demos(context: dg.AssetExecutionContext, config: SimDemosConfig, paths: ProjectPaths):
    task = context.partition_key
    spec = config.to_spec()
    summary = record_task_demos(spec, task=task, demos_root=str(paths.demos()),
                                preview=str(paths.reports() / f"sim_{task}_{spec.variation}.png"))
    if not summary["recorded"]:
        context.log.info(f"{summary['demos_dir']} already holds {summary['demos']} demos (>= {spec.episodes}); "
                         "nothing recorded")
    return dg.MaterializeResult(
        metadata={
            "demos": summary["demos"],
            "failed_attempts": summary["failed_attempts"],
            "record_s": summary["record_s"],
            "variation": summary["variation"],
            "demos_dir": path(summary["demos_dir"]),
            "start_state": md_image(Path(summary["preview"]).read_bytes(), f"{task} start state (exterior | wrist)"),
        }
    )


def smoke_test(context: dg.AssetExecutionContext, gpu_pipes: dg.PipesClient, checkpoint: Path,
               base_model: BaseModel | None = None) -> tuple[dict, dg.AssetCheckResult]:
    """The blocking check of a checkpoint asset, a GPU step through dagster-pipes: the checkpoint loads as
    a Policy and predicts finite actions. ``base_model`` names the model config of an openpi checkpoint.
    Returns (the step's summary, the check result)."""
    model = {"config_name": base_model.config_name, "tokenizer_path": base_model.tokenizer_path} if base_model else {}
    res = run_remote(context, gpu_pipes, "smoke_test", SmokeTestConfig(), checkpoint=checkpoint, **model)
    smoke = {k: getattr(v, "value", v) for k, v in (res.metadata or {}).items()}
    return smoke, dg.AssetCheckResult(check_name=CHECKPOINT_OK, passed=bool(smoke.get("finite")),
                                      metadata={k: smoke[k] for k in ("finite", "chunk_shape") if k in smoke})


@dg.asset(
    group_name="embedded_default",
    pool="gpu",
    check_specs=[dg.AssetCheckSpec(CHECKPOINT_OK, asset="base_policy", blocking=True,
                                   description="the base checkpoint loads as a Policy and predicts finite actions")],
    description="The base VLA. Embedded default: the shipped tiny pi0 (models/pi0_tiny_sim_base, built by "
    "`robosteer pretrain` on a simulated corpus that leaves out the paper's target settings), installed after a "
    "config-hash check, or pretrained from scratch with rebuild=True. With resources.base_model.checkpoint_dir "
    "set: the user's openpi checkpoint, validated (tree, shapes, dtypes).",
    kinds={"jax", "orbax"},
)
def base_policy(context: dg.AssetExecutionContext, config: BasePolicyConfig, paths: ProjectPaths,
                base_model: BaseModel, gpu_pipes: dg.PipesSubprocessClient):
    ckpt = base_model.resolve_checkpoint(paths)
    md: dict = {"checkpoint": path(ckpt)}
    spec = config.to_spec()
    if base_model.is_embedded and spec.rebuild:
        res = run_remote(context, gpu_pipes, "base_policy", spec, corpus_root=paths.root() / "corpus", out=ckpt)
        md.update(res.metadata or {})
    elif base_model.is_embedded:
        md.update(install_base_policy(SHIPPED_BASE, ckpt, spec.model))
        md["shipped_from"] = path(SHIPPED_BASE)
        card = ckpt / "card.json"
        if card.exists():
            zs = json.loads(card.read_text()).get("zero_shot", {})
            md.update({f"zero_shot_{t}": f"{r['successes']}/{r['trials']}" for t, r in sorted(zs.items())})
    curve = ckpt / "loss_curve.json"
    if base_model.is_embedded and curve.exists():
        md["loss_curve"] = md_image(loss_curve_png(json.loads(curve.read_text()), "base policy pretraining"),
                                    "loss curve")
    smoke, check = smoke_test(context, gpu_pipes, ckpt, base_model)
    if not base_model.is_embedded:  # the user's checkpoint, as the smoke test loaded it
        md.update({k: smoke[k] for k in ("model", "parameters", "asset_id") if k in smoke})
    return dg.MaterializeResult(metadata=md, check_results=[check])
