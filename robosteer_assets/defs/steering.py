"""Group `steering` (paper Step 1): head activations -> k-NN head scores -> selected heads,
plus the head-overlap analysis. GPU work (activations, CMA) goes through dagster-pipes
in pool `gpu`."""

import dagster as dg
import numpy as np

from robosteer_assets.defs.config import ActivationsConfig, HeadScoresConfig, OverlapConfig, SelectionConfig
from robosteer_assets.defs.ingest import keyframes
from robosteer_assets.defs.metadata import md_image, path, table
from robosteer_assets.defs.partitions import task_partitions
from robosteer_assets.defs.resources import BaseModel, ProjectPaths
from robosteer_assets.defs.specs import run_remote
from robosteer_assets.steering import overlap
from robosteer_assets.steering.knn import read_scores_config, score_task
from robosteer_assets.steering.selection import heatmap_png
from robosteer_assets.steering.selectors import select_task_heads

ACTIVATIONS = "activations.zarr"
SCORES = "head_scores.parquet"
SELECTED = "selected_heads.json"
FINITE_ACTS, FINITE_SCORES = "finite_activations", "finite_scores"


def _activations(paths: ProjectPaths, task: str):
    from robosteer_assets.steering.activations import ActivationStore

    return ActivationStore.open(paths.steering(task) / ACTIVATIONS)


@dg.asset(
    group_name="steering",
    partitions_def=task_partitions,
    deps=[keyframes, dg.AssetKey("base_policy")],
    pool="gpu",
    check_specs=[dg.AssetCheckSpec(FINITE_ACTS, asset="head_activations", blocking=True,
                                   description="every activation is finite and not constant")],
    description="Per-head attention outputs of the frozen base VLA at the first suffix token, for every keyframe "
    "of the task's demos: zarr [N, layers, heads, head_dim] (+ normalised actions, episode ids).",
    kinds={"zarr", "jax"},
)
def head_activations(context: dg.AssetExecutionContext, config: ActivationsConfig, paths: ProjectPaths,
                     base_model: BaseModel, gpu_pipes: dg.PipesSubprocessClient):
    task = context.partition_key
    ckpt = base_model.resolve_checkpoint(paths)
    out = paths.steering(task) / ACTIVATIONS
    result = run_remote(context, gpu_pipes, "head_activations", config.to_spec(),
                        store=paths.store(task) / "episodes.zarr", keyframes=paths.store(task) / "keyframes.parquet",
                        checkpoint=ckpt, out=out, checkpoint_id=ckpt.name)
    # the step refuses non-finite values; the store opens only when complete and consistent
    attrs = _activations(paths, task).attrs
    std = float(getattr((result.metadata or {}).get("std"), "value", 0.0))
    shape = [attrs[k] for k in ("num_examples", "num_layers", "num_heads", "head_dim")]
    return dg.MaterializeResult(
        metadata={**(result.metadata or {}), "path": path(out), "shape": str(shape)},
        check_results=[dg.AssetCheckResult(check_name=FINITE_ACTS, passed=std > 0,
                                           metadata={"std": std, "finite": True})],
    )


@dg.asset(
    group_name="steering",
    partitions_def=task_partitions,
    deps=[head_activations],
    check_specs=[dg.AssetCheckSpec(FINITE_SCORES, asset="head_scores", blocking=True,
                                   description="every head score is finite")],
    description="k-NN regression score of every head for k in {10,20,30,40} (paper eqs 2-4): parquet "
    "(layer, head, k, mse), DuckDB view `head_scores`.",
    kinds={"parquet", "duckdb"},
)
def head_scores(context: dg.AssetExecutionContext, config: HeadScoresConfig, paths: ProjectPaths):
    task = context.partition_key
    out = paths.steering(task) / SCORES
    df, summary = score_task(config.to_spec(), activations=str(paths.steering(task) / ACTIVATIONS), out=str(out),
                             task=task)
    best = df.sort("mse").head(10).to_dicts()
    return dg.MaterializeResult(
        metadata={"path": path(out), "heads": summary["heads"], "examples": summary["examples"],
                  "scoring_s": summary["scoring_s"], "best_heads": table(best, ["layer", "head", "k", "mse"])},
        check_results=[dg.AssetCheckResult(check_name=FINITE_SCORES, passed=summary["finite"])],
    )


@dg.asset(
    group_name="steering",
    partitions_def=task_partitions,
    deps=[head_scores],
    description="The m = 20 task heads (paper eq. 5) at the k whose top-m subset regresses the actions best; "
    "JSON with heads, k, per-k subset MSE and the score CV (Table 4). Ablation selectors and multi-task modes "
    "via config.",
    kinds={"json"},
)
def selected_heads(context: dg.AssetExecutionContext, config: SelectionConfig, paths: ProjectPaths,
                   base_model: BaseModel, gpu_pipes: dg.PipesSubprocessClient):
    task = context.partition_key
    scores = paths.steering(task) / SCORES
    spec = config.to_spec(knn=read_scores_config(scores))
    cma_rise = ""
    if spec.selector == "cma":  # model inference: a GPU step, launched like the others
        cma_rise = str(paths.steering(task) / "cma_rise.npy")
        run_remote(context, gpu_pipes, "cma_scores", spec, store=paths.store(task) / "episodes.zarr",
                   activations=paths.steering(task) / ACTIVATIONS, checkpoint=base_model.resolve_checkpoint(paths),
                   out=cma_rise)
    out = paths.steering(task) / SELECTED
    result, table_used = select_task_heads(
        spec, task=task, activations=str(paths.steering(task) / ACTIVATIONS), scores=str(scores), out=str(out),
        other_activations={t: str(paths.steering(t) / ACTIVATIONS) for t in spec.tasks}, cma_rise=cma_rise)
    md = {"path": path(out), "k": result.k, "m": result.m, "selector": result.selector, "metric": result.metric,
          "heads": dg.MetadataValue.json([list(h) for h in result.heads]),
          "score_cv": float(result.cv) if result.cv == result.cv else None,
          "subset_mse": dg.MetadataValue.json({str(k): v for k, v in result.subset_mse.items()})}
    if result.k:
        md["heatmap"] = md_image(heatmap_png(table_used, result, title=f"{task}: head scores"),
                                 "layers x heads, selected boxed")
    context.log.info(f"selected {len(result.heads)} heads at k={result.k}: {result.heads}")
    return dg.MaterializeResult(metadata=md)


@dg.asset(
    group_name="steering",
    partitions_def=task_partitions,
    deps=[selected_heads],
    description="Consistency of head selection (paper Figs 6-7): top-20 / top-40 overlap between data subsets "
    "(all, random halves seeds 42/24, first/last half) and with other tasks' selections.",
    kinds={"json"},
)
def head_overlap(context: dg.AssetExecutionContext, config: OverlapConfig, paths: ProjectPaths):
    task = context.partition_key
    out = paths.steering(task) / "head_overlap.json"
    selections = {d.parent.name: str(d) for d in sorted(paths.root().joinpath("steering").glob(f"*/{SELECTED}"))}
    report = overlap.overlap_report(config.to_spec(), activations=str(paths.steering(task) / ACTIVATIONS),
                                    scores=str(paths.steering(task) / SCORES),
                                    selected=str(paths.steering(task) / SELECTED), task_selections=selections,
                                    out=str(out))
    md = {"path": path(out)}
    for key, entry in report.items():
        what = "cross-task overlap" if key == "tasks" else f"{key.split('_')[0]} overlap across subsets"
        md[key] = md_image(overlap.heatmap_png(entry["names"], np.asarray(entry["overlap_pct"]), f"{task}: {what}"),
                           what)
    first = report[next(k for k in report if k != "tasks")]
    md["overlap_table"] = table([{"variant": n, **{f"vs_{m}": v for m, v in zip(first["names"], row)}}
                                 for n, row in zip(first["names"], first["overlap_pct"])])
    return dg.MaterializeResult(metadata=md)
