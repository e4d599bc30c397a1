"""sql/episodes.sql and sql/head_scores.sql run against small fixture tables and return
the expected numbers."""

import os

import duckdb
import polars as pl
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(sql_file: str, cwd: Path):
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return duckdb.sql((ROOT / "sql" / sql_file).read_text()).pl()
    finally:
        os.chdir(old)


def test_episodes_and_head_scores_queries(tmp_path):
    for task, ok, bad in (("pick_cube", 3, 1), ("push_cup", 2, 0)):
        d = tmp_path / "data" / "store" / task
        d.mkdir(parents=True)
        pl.DataFrame({"task": [task] * (ok + bad), "uuid": [f"u{i}" for i in range(ok + bad)],
                      "status": ["ok"] * ok + ["quarantined"] * bad, "reason": [None] * ok + ["bad h5"] * bad,
                      "length": [10] * (ok + bad)}).write_parquet(d / "manifest.parquet")
        s = tmp_path / "data" / "steering" / task
        s.mkdir(parents=True)
        rows = [(l, h, k, (0.5 if k == 20 else 1.0) + 0.01 * (l * 8 + h)) for k in (10, 20) for l in range(3)
                for h in range(8)]
        pl.DataFrame(rows, schema=["layer", "head", "k", "mse"], orient="row").with_columns(
            pl.lit(task).alias("task")).write_parquet(s / "head_scores.parquet")
    ep = _run("episodes.sql", tmp_path)
    assert ep.rows() == [("pick_cube", 3, 1, 30, "bad h5"), ("push_cup", 2, 0, 20, None)]
    hs = _run("head_scores.sql", tmp_path)
    assert hs.height == 40 and set(hs["k"]) == {20}
    first = hs.filter(pl.col("task") == "pick_cube").row(0, named=True)
    assert (first["layer"], first["head"], first["rank"]) == (0, 0, 1)
