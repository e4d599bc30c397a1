"""Group `steering` (paper Step 1): head activations -> k-NN head scores -> selected heads,
plus the head-overlap analysis. GPU work (activations, CMA) goes through dagster-pipes
in pool `gpu`."""

import json
import sys

import dagster as dg
import numpy as np
import polars as pl

from robosteer_assets.common.atomic import atomic_file, write_text_atomic
from robosteer_assets.defs.config import ActivationsConfig, HeadScoresConfig, SelectionConfig
from robosteer_assets.defs.ingest import keyframes
from robosteer_assets.defs.metadata import md_image, path, table
from robosteer_assets.defs.partitions import task_partitions
from robosteer_assets.defs.resources import BaseModel, ProjectPaths

ACTIVATIONS = "activations.zarr"
SCORES = "head_scores.parquet"
SELECTED = "selected_heads.json"
FINITE_ACTS, FINITE_SCORES = "finite_activations", "finite_scores"
REMOTE = [sys.executable, "-m", "robosteer_assets.remote.run_step"]


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
    spec = {"store": str(paths.store(task) / "episodes.zarr"), "keyframes": str(paths.store(task) / "keyframes.parquet"),
            "checkpoint": str(ckpt), "out": str(paths.steering(task) / ACTIVATIONS), "checkpoint_id": ckpt.name,
            **config.model_dump()}
    result = gpu_pipes.run(context=context, command=REMOTE, extras={"step": "head_activations", "spec": spec}
                           ).get_materialize_result()
    acts, _, eps = _activations(paths, task).load()
    ok = bool(np.isfinite(acts).all() and acts.std() > 0)
    return dg.MaterializeResult(
        metadata={**(result.metadata or {}), "path": path(spec["out"]), "shape": str(list(acts.shape)),
                  "episodes": int(len(np.unique(eps)))},
        check_results=[dg.AssetCheckResult(check_name=FINITE_ACTS, passed=ok,
                                           metadata={"std": float(acts.std()), "finite": bool(np.isfinite(acts).all())})],
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
    import time

    from robosteer_assets.steering.knn import KnnConfig
    from robosteer_assets.steering.knn import head_scores as score

    task = context.partition_key
    acts, actions, eps = _activations(paths, task).load()
    t0 = time.monotonic()
    df = score(acts, actions, eps, KnnConfig(ks=tuple(config.ks), metric=config.metric, query_chunk=config.query_chunk,
                                                 head_chunk=config.head_chunk, topk=config.topk))
    secs = time.monotonic() - t0
    df = df.with_columns(pl.lit(task).alias("task"))
    out = paths.steering(task) / SCORES
    with atomic_file(out) as f:
        df.write_parquet(f)
    ok = bool(np.isfinite(df["mse"].to_numpy()).all())
    best = df.sort("mse").head(10).to_dicts()
    return dg.MaterializeResult(
        metadata={"path": path(out), "heads": int(acts.shape[1] * acts.shape[2]), "examples": int(acts.shape[0]),
                  "scoring_s": round(secs, 2), "best_heads": table(best, ["layer", "head", "k", "mse"])},
        check_results=[dg.AssetCheckResult(check_name=FINITE_SCORES, passed=ok)],
    )


def _load_scores(paths, task):
    return pl.read_parquet(paths.steering(task) / SCORES)


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
    from robosteer_assets.steering import selectors
    from robosteer_assets.steering.knn import KnnConfig
    from robosteer_assets.steering.selection import SelectionConfig as DomainSel
    from robosteer_assets.steering.selection import heatmap_png, select_heads, select_joint, select_non_overlapping

    task = context.partition_key
    acts, actions, eps = _activations(paths, task).load()
    scores = _load_scores(paths, task)
    ks = tuple(sorted(set(scores["k"].to_list())))
    dcfg = DomainSel(m=config.m, knn=KnnConfig(ks=ks))
    position = _activations(paths, task).attrs.get("config", {}).get("position", "first_suffix")
    others = {t: _activations(paths, t).load() for t in config.tasks if t != task}
    if config.selector == "knn" and config.multitask == "joint":
        result, scores = select_joint({task: (acts, actions, eps), **others}, dcfg, position=position)
    elif config.selector == "knn" and config.multitask == "non_overlapping":
        result = select_non_overlapping({task: (acts, actions, eps), **others}, dcfg, position=position)
    elif config.selector == "knn":
        result, _ = select_heads(acts, actions, eps, dcfg, scores=scores.drop("task"), position=position)
    elif config.selector == "random":
        result = selectors.select_random(acts.shape[1], acts.shape[2], config.m, config.seed)
    elif config.selector == "classification":
        if not others:
            raise dg.Failure("selector 'classification' needs negative examples: name other task partitions "
                             "(with head_activations) in config.tasks")
        result, _ = selectors.select_classification(acts, np.concatenate([a for a, _, _ in others.values()]), config.m)
    else:  # cma: model inference, launched like the other GPU steps
        spec = {"store": str(paths.store(task) / "episodes.zarr"), "activations": str(paths.steering(task) / ACTIVATIONS),
                "checkpoint": str(base_model.resolve_checkpoint(paths)), "out": str(paths.steering(task) / "cma_rise.npy"),
                "noise_std": config.cma_noise_std, "max_examples": config.cma_max_examples, "seed": config.seed}
        gpu_pipes.run(context=context, command=REMOTE, extras={"step": "cma_scores", "spec": spec})
        result = selectors.select_cma(np.load(spec["out"]), config.m)
    result.tasks = result.tasks or [task]
    out = paths.steering(task) / SELECTED
    write_text_atomic(out, result.to_json())
    md = {"path": path(out), "k": result.k, "m": result.m, "selector": result.selector,
          "heads": dg.MetadataValue.json([list(h) for h in result.heads]),
          "score_cv": float(result.cv) if result.cv == result.cv else None,
          "subset_mse": dg.MetadataValue.json({str(k): v for k, v in result.subset_mse.items()})}
    if result.k:
        md["heatmap"] = md_image(heatmap_png(scores if "task" not in scores.columns else scores.drop("task"), result,
                                             title=f"{task}: head scores"), "layers x heads, selected boxed")
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
def head_overlap(context: dg.AssetExecutionContext, paths: ProjectPaths):
    from robosteer_assets.steering import overlap
    from robosteer_assets.steering.knn import KnnConfig, head_scores as score
    from robosteer_assets.steering.selection import SelectionResult, top_heads

    task = context.partition_key
    acts, actions, eps = _activations(paths, task).load()
    k = SelectionResult.from_json((paths.steering(task) / SELECTED).read_text()).k or 20
    n_heads = acts.shape[1] * acts.shape[2]
    md, report = {}, {}
    for m in (20, 40):
        m_eff = min(m, n_heads)
        sets = {}
        for name, rows in overlap.episode_subsets(eps).items():
            n_other = rows.sum() - np.bincount(eps[rows]).max()
            kk = max(1, min(k, int(n_other)))
            sets[name] = top_heads(score(acts[rows], actions[rows], eps[rows], KnnConfig(ks=(kk,))), kk, m_eff)
        names, mat = overlap.overlap_matrix(sets)
        report[f"top{m}_subsets"] = {"names": names, "overlap_pct": mat.round(1).tolist()}
        md[f"top{m}_subsets"] = md_image(overlap.heatmap_png(names, mat, f"{task}: top-{m} overlap across subsets"),
                                         f"top-{m} overlap")
    tasks = {}
    for d in sorted(paths.root().joinpath("steering").glob(f"*/{SELECTED}")):
        r = SelectionResult.from_json(d.read_text())
        if len(r.heads) == len(SelectionResult.from_json((paths.steering(task) / SELECTED).read_text()).heads):
            tasks[d.parent.name] = r.heads
    if len(tasks) > 1:
        names, mat = overlap.overlap_matrix(tasks)
        report["tasks"] = {"names": names, "overlap_pct": mat.round(1).tolist()}
        md["tasks"] = md_image(overlap.heatmap_png(names, mat, "top-m overlap across tasks"), "cross-task overlap")
    out = paths.steering(task) / "head_overlap.json"
    write_text_atomic(out, json.dumps(report, indent=2))
    md["path"] = path(out)
    md["overlap_table"] = table([{"variant": n, **{f"vs_{m}": v for m, v in zip(report["top20_subsets"]["names"], row)}}
                                 for n, row in zip(report["top20_subsets"]["names"], report["top20_subsets"]["overlap_pct"])])
    return dg.MaterializeResult(metadata=md)
