"""The evaluation summary over every task and method: the queries in ``sql/`` run over the trial
store, plus the 5 x 8 success grids of each latest evaluation, and a DuckDB database file holding
them as tables for users who prefer ``duckdb data/robosteer.duckdb`` to the SQL files.

The database file is a *derived* snapshot: it is built at a temporary path and renamed into place,
so a reader holding the old file open is never blocked by (or sees half of) the new one, and the
trial store itself stays lock-free parquet.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from robosteer_assets.common.atomic import TMP_PREFIX, clean_stale_tmp
from robosteer_assets.evaluation import sqlrun
from robosteer_assets.evaluation.trials import read_trials
from robosteer_assets.sim.grid import DEFAULT_GRID, GridConfig

QUERIES = ("latest_comparison", "method_comparison", "final_measure", "improvement", "grid_cells")


@dataclass
class EvalSummary:
    tables: dict[str, pl.DataFrame]
    grids: dict[tuple[str, str, str, str], np.ndarray] = field(default_factory=dict)  # (source, task, method, var)
    trials: int = 0


def summarize(trials_root: str | os.PathLike, repo_root: str | os.PathLike | None = None,
              grid: GridConfig = DEFAULT_GRID) -> EvalSummary:
    """Every query of ``QUERIES`` over the store, and the success grid of each latest evaluation."""
    root = Path(repo_root) if repo_root else sqlrun.default_repo_root()
    tables = {}
    for name in QUERIES:
        path = root / "sql" / f"{name}.sql"
        tables[name] = sqlrun.query(path.read_text(), trials_root, root, where=path)
    trials = read_trials(trials_root)
    grids = {}
    for ev in tables["latest_comparison"].iter_rows(named=True):
        sel = trials.filter((pl.col("source") == ev["source"]) & (pl.col("task") == ev["task"])
                            & (pl.col("method") == ev["method"]) & (pl.col("variation") == ev["variation"])
                            & (pl.col("checkpoint_id") == ev["checkpoint_id"]) & (pl.col("seed") == ev["seed"]))
        g = np.full((grid.rows, grid.cols), np.nan)
        for r, c, ok in sel.select("row", "col", "success").iter_rows():
            g[r, c] = float(ok)
        grids[ev["source"], ev["task"], ev["method"], ev["variation"]] = g
    return EvalSummary(tables=tables, grids=grids, trials=trials.height)


def write_summary_db(summary: EvalSummary, trials_root: str | os.PathLike, db_path: str | os.PathLike) -> Path:
    """Write ``trials`` and every summary table into a fresh DuckDB file at ``db_path`` (atomic)."""
    import duckdb

    db_path = Path(db_path)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(db_path.parent, db_path.name)
    tmp = db_path.with_name(f"{TMP_PREFIX}{db_path.name}-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        con = duckdb.connect(str(tmp))
        try:
            frames = {"trials": read_trials(trials_root), **summary.tables}
            for name, frame in frames.items():
                con.register("_frame", frame.to_arrow())
                con.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _frame')
                con.unregister("_frame")
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.replace(tmp, db_path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        Path(f"{tmp}.wal").unlink(missing_ok=True)
        raise
    return db_path
