"""The SQL in sql/ (views, method comparison, final measure, grid cells, improvement) over a fixture
trial store, against numbers recomputed here from the constructed trials; and the committed files
with a plain DuckDB connection and the default relative glob."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import polars as pl
import pytest

from robosteer_assets.evaluation import sqlrun
from robosteer_assets.evaluation.trials import NATURAL_KEY, TRIAL_COLUMNS, Trial, read_trials, write_trials
from robosteer_assets.sim.grid import DEFAULT_GRID, cell_center, trial_yaw

ROOT = Path(__file__).resolve().parents[2]
SQL = ROOT / "sql"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)
TASKS = ("pick_cube", "push_cup")
METHODS = ("zero_shot", "full_lora", "steering")
# successes per 40 cells by construction (method.md Table 1 shape: steering > full LoRA > zero-shot)
THRESHOLD = {("pick_cube", "zero_shot"): 9, ("pick_cube", "full_lora"): 22, ("pick_cube", "steering"): 31,
             ("push_cup", "zero_shot"): 5, ("push_cup", "full_lora"): 17, ("push_cup", "steering"): 27}


def _run(task, method, success, variation="none", seed=0, source="sim", cells=None, recorded_at=T0, ckpt=""):
    cells = DEFAULT_GRID.cells() if cells is None else cells
    return [Trial(task=task, method=method, row=r, col=c, x=cell_center(r, c)[0], y=cell_center(r, c)[1],
                  yaw=trial_yaw(seed, r, c), seed=seed, success=success(r, c), variation=variation, source=source,
                  checkpoint_id=ckpt, recorded_at=recorded_at) for r, c in cells]


def _spread(task, method, shift=0):
    """Exactly THRESHOLD[task, method] successes, scattered over the grid (7 is coprime with 40)."""
    return lambda r, c: ((r * 8 + c) * 7 + shift) % 40 < THRESHOLD[task, method]


def write_fixture(root: Path) -> list[Trial]:
    """2 tasks x 3 methods x 40 cells, plus: a superseded older run, a lighting variation (one of
    them incomplete), a second seed, and real-robot trials. Returns every trial written."""
    runs: list[tuple[str, list[Trial]]] = []
    for ti, task in enumerate(TASKS):
        for method in METHODS:
            runs.append((f"main-{ti}", _run(task, method, _spread(task, method, ti))))
    # an older evaluation of steering on pick_cube that the main run re-did: superseded, never counted
    runs.append(("old", _run("pick_cube", "steering", lambda r, c: False, recorded_at=T0 - timedelta(days=2))))
    # lighting: zero_shot and steering complete on pick_cube, full_lora still running (25 cells)
    runs.append(("light", _run("pick_cube", "zero_shot", lambda r, c: r == 0, variation="lighting")))
    runs.append(("light", _run("pick_cube", "steering", lambda r, c: c < 5, variation="lighting")))
    runs.append(("light", _run("pick_cube", "full_lora", lambda r, c: c % 2 == 0, variation="lighting",
                               cells=DEFAULT_GRID.cells()[:25])))
    # a second seed of steering on push_cup (a different checkpoint)
    runs.append(("seed1", _run("push_cup", "steering", lambda r, c: (r + c) % 4 != 0, seed=1, ckpt="b")))
    # the real robot: steering and zero-shot on pick_cube
    runs.append(("sheet", _run("pick_cube", "steering", lambda r, c: r < 3, source="real")))
    runs.append(("sheet", _run("pick_cube", "zero_shot", lambda r, c: r == 4 and c < 3, source="real")))
    written = []
    for run_id, trials in runs:
        write_trials(root, trials, run_id=run_id)
        written += [replace(t, run_id=run_id) for t in trials]
    return written


def effective(trials: list[Trial]) -> list[Trial]:
    """Recomputed dedup: per natural key, the latest recorded_at (then the larger run_id)."""
    best: dict[tuple, Trial] = {}
    for t in trials:
        k = tuple(getattr(t, f) for f in NATURAL_KEY)
        if k not in best or (t.recorded_at, t.run_id) > (best[k].recorded_at, best[k].run_id):
            best[k] = t
    return list(best.values())


def group(trials, *keys) -> dict[tuple, list[Trial]]:
    out = defaultdict(list)
    for t in trials:
        out[tuple(getattr(t, k) for k in keys)].append(t)
    return out


def rate(ts: list[Trial]) -> float:
    return sum(t.success for t in ts) / len(ts)


def assert_rows(frame: pl.DataFrame, want: list[dict]) -> None:
    """Same rows in the same order; floats within the 1-decimal rounding (DuckDB rounds half away from 0)."""
    got = frame.to_dicts()
    assert [list(g) for g in got[:1]] == [list(w) for w in want[:1]]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        for k, v in w.items():
            if isinstance(v, float):
                assert g[k] == pytest.approx(v, abs=0.051), (k, g, w)
            else:
                assert g[k] == v, (k, g, w)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    root = tmp_path_factory.mktemp("sql") / "trials"
    return root, effective(write_fixture(root))


def q(name: str, root: Path) -> pl.DataFrame:
    return sqlrun.query((SQL / name).read_text(), root, where=SQL / name)


def test_trials_view_is_deduplicated_like_read_trials(store):
    root, eff = store
    view = sqlrun.query(f"SELECT * FROM trials ORDER BY {', '.join(NATURAL_KEY)}", root)
    assert view.columns == list(TRIAL_COLUMNS)
    py = read_trials(root)
    assert view.height == py.height == len(eff)
    assert view.drop("recorded_at").rows() == py.drop("recorded_at").rows()
    assert view["recorded_at"].dt.epoch("us").to_list() == py["recorded_at"].dt.epoch("us").to_list()
    assert "old" not in set(view["run_id"])
    assert sqlrun.query("SELECT count(*) AS n FROM trial_files", root)["n"].item() == len(eff) + 40
    assert sqlrun.query("SELECT grid_num_cells() AS n", root)["n"].item() == DEFAULT_GRID.num_cells


def test_method_comparison(store):
    root, eff = store
    want = []
    for (source, task, method, variation), ts in group(eff, "source", "task", "method", "variation").items():
        s = sum(t.success for t in ts)
        want.append({"source": source, "task": task, "method": method, "variation": variation,
                     "trials": len(ts), "successes": s, "success_pct": 100.0 * s / len(ts)})
    want.sort(key=lambda w: (w["source"], w["task"], w["variation"], w["method"]))
    got = q("method_comparison.sql", root)
    assert_rows(got, want)
    row = got.filter((pl.col("source") == "sim") & (pl.col("task") == "pick_cube") & (pl.col("method") == "steering")
                     & (pl.col("variation") == "none")).to_dicts()
    assert row[0]["trials"] == 40 and row[0]["successes"] == THRESHOLD["pick_cube", "steering"]  # old run superseded


def test_final_measure_averages_complete_evaluations_over_tasks(store):
    root, eff = store
    evals = group(eff, "source", "task", "method", "checkpoint_id", "variation", "seed")
    per_task: dict[tuple, list] = defaultdict(list)
    incomplete: dict[tuple, int] = defaultdict(int)
    for (source, task, method, _, variation, _), ts in evals.items():
        if len(ts) == DEFAULT_GRID.num_cells:
            per_task[source, method, variation, task].append(ts)
        else:
            incomplete[source, method, variation] += 1
    want = []
    for key in sorted({(s, m, v) for s, _, m, _, v, _ in evals}, key=lambda k: (k[0], k[2], k[1])):
        tasks = [ev for (s, m, v, _), ev in per_task.items() if (s, m, v) == key]
        task_rates = [sum(rate(ts) for ts in ev) / len(ev) for ev in tasks]
        want.append({"source": key[0], "method": key[1], "variation": key[2], "tasks": len(tasks),
                     "evaluations": sum(len(ev) for ev in tasks),
                     "trials": sum(len(ts) for ev in tasks for ts in ev),
                     "success_pct": 100.0 * sum(task_rates) / len(task_rates) if task_rates else None,
                     "incomplete_evaluations": incomplete[key]})
    got = q("final_measure.sql", root)
    assert_rows(got, want)
    by = {(r["source"], r["method"], r["variation"]): r for r in got.to_dicts()}
    # the incomplete lighting run of full_lora is left out, and shown as such
    assert by["sim", "full_lora", "lighting"] == {"source": "sim", "method": "full_lora", "variation": "lighting",
                                                   "tasks": 0, "evaluations": 0, "trials": 0, "success_pct": None,
                                                   "incomplete_evaluations": 1}
    # push_cup steering has two complete seeds: each object still weighs the same
    st = by["sim", "steering", "none"]
    assert (st["tasks"], st["evaluations"], st["trials"]) == (2, 3, 120)


def test_grid_cells(store):
    root, eff = store
    want = [{"source": k[0], "task": k[1], "method": k[2], "variation": k[3], "row": k[4], "col": k[5],
             "trials": len(ts), "successes": sum(t.success for t in ts), "success_rate": rate(ts)}
            for k, ts in sorted(group(eff, "source", "task", "method", "variation", "row", "col").items())]
    got = q("grid_cells.sql", root)
    assert_rows(got, want)
    assert got.filter((pl.col("task") == "push_cup") & (pl.col("method") == "steering"))["trials"].unique().to_list() == [2]


def test_improvement_over_zero_shot(store):
    root, eff = store
    rates = {k: rate(ts) for k, ts in group(eff, "source", "task", "method", "variation").items()}
    want = []
    for (source, task, method, variation), r in rates.items():
        if method == "zero_shot":
            continue
        z = rates.get((source, task, "zero_shot", variation))
        want.append({"source": source, "task": task, "variation": variation, "method": method,
                     "success_pct": 100.0 * r, "zero_shot_pct": None if z is None else 100.0 * z,
                     "improvement_pp": None if z is None else 100.0 * (r - z)})
    want.sort(key=lambda w: (w["source"], w["task"], w["variation"], w["method"]))
    got = q("improvement.sql", root)
    assert_rows(got, want)
    pc = got.filter((pl.col("source") == "sim") & (pl.col("task") == "pick_cube") & (pl.col("variation") == "none"))
    assert dict(zip(pc["method"], pc["improvement_pp"])) == {
        m: pytest.approx(100.0 * (THRESHOLD["pick_cube", m] - THRESHOLD["pick_cube", "zero_shot"]) / 40, abs=0.051)
        for m in ("full_lora", "steering")}


@pytest.mark.parametrize("name, columns", [
    ("method_comparison.sql", ["source", "task", "method", "variation", "trials", "successes", "success_pct"]),
    ("final_measure.sql", ["source", "method", "variation", "tasks", "evaluations", "trials", "success_pct",
                           "incomplete_evaluations"]),
    ("grid_cells.sql", ["source", "task", "method", "variation", "row", "col", "trials", "successes",
                        "success_rate"]),
    ("improvement.sql", ["source", "task", "variation", "method", "success_pct", "zero_shot_pct",
                         "improvement_pp"]),
    ("latest_comparison.sql", ["source", "task", "method", "variation", "checkpoint_id", "seed", "trials",
                               "successes", "success_pct", "complete"]),
])
def test_every_query_runs_on_an_empty_store(tmp_path, store, name, columns):
    got = q(name, tmp_path / "no_trials_yet")
    assert got.height == 0 and got.columns == columns
    assert q(name, store[0]).columns == columns
    text = (SQL / name).read_text()
    assert text.startswith("-- ") and "robosteer sql" in text and "| duckdb" in text  # documented, both ways


def test_empty_view_has_the_trial_schema(tmp_path, store):
    empty = sqlrun.connect(tmp_path / "none").execute("DESCRIBE trials").fetchall()
    full = sqlrun.connect(store[0]).execute("DESCRIBE trials").fetchall()
    assert [(r[0], r[1]) for r in empty] == [(r[0], r[1]) for r in full]
    assert [r[0] for r in empty] == list(TRIAL_COLUMNS)


def test_committed_files_run_with_plain_duckdb_and_the_default_glob(tmp_path, store):
    write_fixture(tmp_path / "data" / "trials")
    leftover = tmp_path / "data" / "trials" / "pick_cube" / "steering" / ".tmp-sim-crashed.parquet"
    write_trials(tmp_path / "x", _run("pick_cube", "steering", lambda r, c: True, recorded_at=T0 + timedelta(days=1)),
                 run_id="crashed")
    (tmp_path / "x" / "pick_cube" / "steering" / "sim-crashed.parquet").rename(leftover)
    old = os.getcwd()
    os.chdir(tmp_path)
    try:
        con = duckdb.connect()
        con.execute((SQL / "views.sql").read_text())
        plain = con.sql((SQL / "method_comparison.sql").read_text()).pl()
        n_files = con.sql("SELECT count(DISTINCT filename) AS n FROM trial_files").fetchall()[0][0]
    finally:
        os.chdir(old)
    assert plain.equals(q("method_comparison.sql", store[0]))
    assert n_files == len(list((tmp_path / "data" / "trials").rglob("*.parquet"))) - 1  # the leftover is not read


def test_run_sql_file_prints_an_aligned_table(store):
    root, eff = store
    text = sqlrun.run_sql_file(SQL / "method_comparison.sql", trials_root=root)
    lines = text.splitlines()
    assert lines[0].split() == ["source", "task", "method", "variation", "trials", "successes", "success_pct"]
    assert set(lines[1]) == {"-", " "}
    assert lines[-1] == f"({len(lines) - 3} rows)" and len(lines) - 3 == q("method_comparison.sql", root).height
    widths = [len(w) for w in lines[1].split("  ")]
    cols = [m.start() for m in re.finditer(r"-+", lines[1])]
    for line in lines[2:-1]:  # every right-aligned number ends where its column ends
        assert line[cols[-1] + widths[-1] - 1] != " "
    assert re.search(r"^sim\s+pick_cube\s+steering\s+none\s+40\s+31\s+77\.5$", text, re.M)


def test_sql_errors_name_the_file(tmp_path, store):
    with pytest.raises(sqlrun.SqlError, match=r"nope\.sql: expected a SQL file, found nothing"):
        sqlrun.run_sql_file(tmp_path / "nope.sql", trials_root=store[0])
    bad = tmp_path / "bad.sql"
    bad.write_text("SELECT no_such_column FROM trials;")
    with pytest.raises(sqlrun.SqlError, match=rf"^{re.escape(str(bad))}: SQL error: Binder Error: .*no_such_column"):
        sqlrun.run_sql_file(bad, trials_root=store[0])
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "views.sql").write_text("CREATE VIEW trials AS SELECT 1;")
    with pytest.raises(sqlrun.SqlError, match=r"views\.sql: expected exactly one read_parquet\('data/trials/"):
        sqlrun.query("SELECT 1", store[0], repo_root=tmp_path)


def test_latest_comparison_takes_each_methods_newest_evaluation(store):
    root, eff = store
    evals = group(eff, "source", "task", "method", "variation", "checkpoint_id", "seed")
    newest: dict[tuple, tuple] = {}
    for (source, task, method, variation, ckpt, seed), ts in evals.items():
        stamp = (max(t.recorded_at for t in ts), max(t.run_id for t in ts))
        k = (source, task, method, variation)
        if k not in newest or stamp > newest[k][0]:
            newest[k] = (stamp, ckpt, seed, ts)
    order = {"zero_shot": 0, "full_lora": 1, "steering": 2}
    want = []
    for (source, task, method, variation), (_, ckpt, seed, ts) in sorted(
            newest.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][3], order.get(kv[0][2], 3), kv[0][2])):
        s = sum(t.success for t in ts)
        want.append({"source": source, "task": task, "method": method, "variation": variation, "checkpoint_id": ckpt,
                     "seed": seed, "trials": len(ts), "successes": s, "success_pct": 100.0 * s / len(ts),
                     "complete": len(ts) == DEFAULT_GRID.num_cells})
    got = q("latest_comparison.sql", root)
    assert_rows(got, want)
    # push_cup steering: the seed-1 evaluation of checkpoint "b" (run "seed1") is the newest; not pooled with seed 0
    row = got.filter((pl.col("task") == "push_cup") & (pl.col("method") == "steering")).to_dicts()[0]
    assert (row["checkpoint_id"], row["seed"], row["trials"]) == ("b", 1, 40)
    light = got.filter((pl.col("variation") == "lighting") & (pl.col("method") == "full_lora")).to_dicts()[0]
    assert light["trials"] == 25 and light["complete"] is False
