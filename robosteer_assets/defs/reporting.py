"""Group `reporting`: `eval_summary` over every task partition — the method comparison from
DuckDB (latest evaluation of each task x method x variation), the paper's final measure,
improvement over zero-shot, 5 x 8 success heatmaps, and a DuckDB file with these tables."""

import dagster as dg

from robosteer_assets.defs.evaluation import METHODS, eval_key
from robosteer_assets.defs.metadata import md_image, path, table
from robosteer_assets.defs.resources import ProjectPaths


@dg.asset(
    group_name="reporting",
    deps=[eval_key(m) for m in METHODS],
    pool="duckdb",
    description="Every task's evaluations side by side: sql/latest_comparison.sql, final_measure.sql and "
    "improvement.sql over the trial store, success heatmaps, the method comparison plot; tables also written "
    "to <data>/robosteer.duckdb (atomically replaced).",
    kinds={"duckdb"},
)
def eval_summary(context: dg.AssetExecutionContext, paths: ProjectPaths):
    from robosteer_assets.evaluation.plots import grid_heatmap_png, method_comparison_png
    from robosteer_assets.evaluation.summary import summarize, write_summary_db

    s = summarize(paths.trials())
    if s.trials == 0:
        raise dg.Failure(f"{paths.trials()}: no trials yet; materialise eval_trials/* for a task first")
    db = write_summary_db(s, paths.trials(), paths.duckdb_path())
    latest = s.tables["latest_comparison"]
    md = {"trials": s.trials, "database": path(db), "tasks": latest["task"].n_unique()}
    for name in ("latest_comparison", "final_measure", "improvement"):
        rows = s.tables[name].to_dicts()
        if rows:
            md[name] = table(rows)
    sim = [r for r in latest.to_dicts() if r["source"] == "sim"]
    if sim:
        md["method_comparison"] = md_image(method_comparison_png(sim), "method comparison")
    for (source, task, method, variation), grid in sorted(s.grids.items()):
        md[f"grid {source}/{task}/{method}/{variation}"] = md_image(
            grid_heatmap_png(grid, f"{task} / {method} ({variation}, {source})"), "success heatmap")
    context.log.info("latest comparison:\n" + "\n".join(
        f"  {r['task']:<14} {r['variation']:<11} {r['method']:<10} {r['successes']:>3}/{r['trials']:<3} "
        f"{r['success_pct']:5.1f} %" for r in latest.to_dicts()))
    return dg.MaterializeResult(metadata=md)
