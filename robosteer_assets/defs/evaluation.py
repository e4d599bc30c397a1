"""Group `evaluation`: the 40-placement grid in the simulator for each method, per task —
`eval_trials/zero_shot` (the base policy), `eval_trials/full_lora` and `eval_trials/steering`.
Trials run through dagster-pipes in pool `gpu` (policy inference) and land as one parquet file
per task x method x run in the trial store (`<data>/trials`), which DuckDB reads without locks."""

import dagster as dg
import numpy as np

from robosteer_assets.defs.config import EvalConfig
from robosteer_assets.defs.metadata import md_image, path, table
from robosteer_assets.defs.partitions import task_partitions
from robosteer_assets.defs.resources import BaseModel, ProjectPaths
from robosteer_assets.defs.specs import run_remote

ALL_CELLS = "one_trial_per_grid_cell"
METHODS = {  # method -> the checkpoint asset it evaluates
    "zero_shot": "base_policy",
    "full_lora": "full_lora_checkpoint",
    "steering": "steering_checkpoint",
}


def eval_key(method: str) -> dg.AssetKey:
    return dg.AssetKey(["eval_trials", method])


def _evaluate(context: dg.AssetExecutionContext, method: str, config: EvalConfig, paths: ProjectPaths,
              base_model: BaseModel, gpu_pipes: dg.PipesSubprocessClient) -> dg.MaterializeResult:
    from robosteer_assets.evaluation.plots import grid_heatmap_png

    task = context.partition_key
    spec = config.to_spec(video_dir=str(paths.root() / "videos") if config.record_video else "")
    model = {}
    if method == "zero_shot":
        ckpt = base_model.resolve_checkpoint(paths)
        if not (ckpt / "robosteer_config.json").exists():  # an openpi checkpoint: name its config
            model = {"config_name": base_model.config_name}
        model["tokenizer_path"] = base_model.tokenizer_path
    else:
        ckpt = paths.checkpoints(task, method)
    res = run_remote(context, gpu_pipes, "sim_eval", spec, task=task, method=method, checkpoint=ckpt,
                     trials_root=paths.trials(), **model)
    md = dict(res.metadata or {})
    summary = {k: getattr(v, "value", v) for k, v in md.items()}
    grid = np.asarray(summary.get("success_grid", []), dtype=float)
    md.pop("success_grid", None)
    n = int(summary.get("trials", 0))
    md.update({"checkpoint": path(ckpt), "trials_file": path(summary.get("trials_file", "")),
               "success_pct": round(100.0 * float(summary.get("success_rate", 0.0)), 1)})
    if grid.size:
        md["success_grid"] = md_image(grid_heatmap_png(grid, f"{task} / {method} ({spec.variation})"),
                                      "5 x 8 success heatmap")
    reasons = summary.get("failure_reasons") or {}
    if reasons:
        md["failure_reasons"] = table([{"reason": k, "trials": int(v)} for k, v in sorted(reasons.items())])
    context.log.info(f"{task} / {method}: {summary.get('successes')}/{n} successes")
    expected = len(spec.trial_cells())
    return dg.MaterializeResult(metadata=md, check_results=[dg.AssetCheckResult(
        check_name=ALL_CELLS, passed=n == expected, metadata={"trials": n, "expected": expected})])


def _eval_asset(method: str, upstream: str):
    key = eval_key(method)

    @dg.asset(
        key=key,
        group_name="evaluation",
        partitions_def=task_partitions,
        deps=[dg.AssetKey(upstream)],
        pool="gpu",
        check_specs=[dg.AssetCheckSpec(ALL_CELLS, asset=key, blocking=True,
                                       description="one trial in each grid cell evaluated (all 40 by default)")],
        description=f"The 40-placement grid evaluation of `{upstream}` in the simulated tabletop ({method}): one "
        "trial per cell with the seeded yaw, policy queried through the client interface, first n actions of "
        "each chunk executed; parquet rows in the trial store (DuckDB view `trials`).",
        kinds={"mujoco", "parquet"},
    )
    def _asset(context: dg.AssetExecutionContext, config: EvalConfig, paths: ProjectPaths, base_model: BaseModel,
               gpu_pipes: dg.PipesSubprocessClient):
        return _evaluate(context, method, config, paths, base_model, gpu_pipes)

    return _asset


eval_trials_zero_shot = _eval_asset("zero_shot", METHODS["zero_shot"])
eval_trials_full_lora = _eval_asset("full_lora", METHODS["full_lora"])
eval_trials_steering = _eval_asset("steering", METHODS["steering"])
