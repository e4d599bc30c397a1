"""Case 13: two evaluation runs write trials of the same task and method at the same time, each
rewriting its own run file after every trial (as a sim evaluator does), while a user runs
``robosteer sql sql/method_comparison.sql`` on the store.

What the user sees: every query succeeds, with no lock error (the store is parquet, one file per
task x method x run, written to a ``.tmp-`` sibling and renamed; DuckDB is in-memory and reads a
hard-linked snapshot of the files, so a file replaced mid-query cannot break it). Mid-way the
table shows what both runs have finished; at the end, both runs in full.
What is kept: every trial of both runs (80 rows, two files), no ``.tmp-`` leftover.

The writers are real child processes (``python -c``), paused half way on a marker file so that
one query is known to run while both are mid-run.
"""

import subprocess
import sys
import time
from pathlib import Path

from robosteer_assets.evaluation.sqlrun import run_sql_file
from robosteer_assets.evaluation.trials import read_trials

ROOT = Path(__file__).resolve().parents[2]

WRITER = r"""
import sys, time
from pathlib import Path
from robosteer_assets.evaluation.trials import Trial, write_trials
from robosteer_assets.sim.grid import DEFAULT_GRID, cell_center, trial_yaw

root, seed, run_id, half, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], Path(sys.argv[4]), Path(sys.argv[5])
done = []
for i, (r, c) in enumerate(DEFAULT_GRID.cells()):
    if i == 20:
        half.touch()
        t0 = time.monotonic()
        while not go.exists():
            if time.monotonic() - t0 > 120:
                sys.exit("never resumed")
            time.sleep(0.01)
    x, y = cell_center(r, c)
    done.append(Trial("pick_cube", "steering", r, c, x, y, trial_yaw(seed, r, c), seed, success=(r + c) % 2 == 0,
                      steps=50, duration_s=2.0))
    write_trials(root, done, run_id=run_id)
    time.sleep(0.01)
print("WROTE", len(done))
"""


def _steering_row(table: str) -> list[str]:
    rows = [l.split() for l in table.splitlines() if l.startswith("sim ")]
    assert len(rows) == 1, table
    return rows[0]


def test_two_runs_write_trials_at_once_while_a_query_runs(tmp_path):
    trials = tmp_path / "data" / "trials"
    sql = ROOT / "sql" / "method_comparison.sql"
    halves = [tmp_path / f"half-{s}" for s in (0, 1)]
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(trials), str(s), f"eval-seed{s}", str(halves[s]),
                               str(go)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for s in (0, 1)]
    tables = []
    try:
        t0 = time.monotonic()
        while not all(h.exists() for h in halves):
            assert time.monotonic() - t0 < 120 and all(p.poll() is None for p in procs), "a writer died early"
            tables.append(run_sql_file(sql, trials_root=trials))  # queries while the runs start writing
            time.sleep(0.05)
        mid = run_sql_file(sql, trials_root=trials)
        assert _steering_row(mid) == ["sim", "pick_cube", "steering", "none", "40", "20", "50.0"]
        go.touch()
        while any(p.poll() is None for p in procs):
            tables.append(run_sql_file(sql, trials_root=trials))
    finally:
        go.touch()
        outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
        assert out.strip() == "WROTE 40"
        assert "lock" not in err.lower() and "error" not in err.lower(), err
    assert len(tables) >= 2
    counts = [int(_steering_row(t)[4]) if "sim " in t else 0 for t in tables]
    assert counts == sorted(counts) and all(0 <= n <= 80 for n in counts)

    final = run_sql_file(sql, trials_root=trials)
    assert _steering_row(final) == ["sim", "pick_cube", "steering", "none", "80", "40", "50.0"]
    df = read_trials(trials)
    assert df.height == 80
    assert df.group_by("run_id").len().sort("run_id").rows() == [("eval-seed0", 40), ("eval-seed1", 40)]
    names = sorted(p.name for p in (trials / "pick_cube" / "steering").iterdir())
    assert names == ["sim-eval-seed0.parquet", "sim-eval-seed1.parquet"]
