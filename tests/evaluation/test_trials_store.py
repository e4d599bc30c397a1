"""evaluation.trials: the trial record, its validation and the parquet trial store
(one file per task x method x run; concurrent writers; dedup on the natural key)."""

from __future__ import annotations

import multiprocessing as mp
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import polars as pl
import pytest

from robosteer_assets.evaluation import sqlrun
from robosteer_assets.evaluation.trials import (NATURAL_KEY, TRIAL_COLUMNS, Trial, TrialStoreError, existing_keys,
                                                read_trials, trial_key, validate_trials, write_trials)
from robosteer_assets.sim.grid import DEFAULT_GRID, cell_center, trial_yaw

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def make_trials(task="pick_cube", method="steering", seed=0, success=lambda r, c: (r + c) % 3 == 0,
                recorded_at=T0, **extra) -> list[Trial]:
    """One trial per grid cell at the simulator's placements."""
    out = []
    for r, c in DEFAULT_GRID.cells():
        ok = success(r, c)
        out.append(Trial(task=task, method=method, row=r, col=c, x=cell_center(r, c)[0], y=cell_center(r, c)[1],
                         yaw=trial_yaw(seed, r, c), seed=seed, success=ok, steps=10 * r + c, duration_s=1.5 * c,
                         failure_reason=None if ok else "step_limit", recorded_at=recorded_at, **extra))
    return out


def test_write_read_round_trip_keeps_schema_and_values(tmp_path):
    trials = make_trials(checkpoint_id="ckpt-7", variation="lighting", video_path="videos/t.mp4", notes="n")
    path = write_trials(tmp_path / "trials", trials, run_id="run1")
    assert path == tmp_path / "trials" / "pick_cube" / "steering" / "sim-run1.parquet"
    assert sorted(p.name for p in path.parent.iterdir()) == ["sim-run1.parquet"]  # no .tmp- leftover
    df = read_trials(tmp_path / "trials")
    assert df.schema == pl.Schema(TRIAL_COLUMNS)
    assert df.height == 40
    want = sorted((dict(t.to_row(), run_id="run1") for t in trials), key=trial_key)
    assert df.to_dicts() == want
    assert existing_keys(tmp_path / "trials") == {trial_key(r) for r in want}
    assert existing_keys(tmp_path / "trials", "pick_cube", "full_lora") == set()


def test_run_id_defaults_to_the_rows_or_a_new_one(tmp_path):
    p1 = write_trials(tmp_path, make_trials(run_id="from-rows"))
    assert p1.name == "sim-from-rows.parquet"
    p2 = write_trials(tmp_path, make_trials(seed=1))
    assert p2.name.startswith("sim-") and p2 != p1
    assert set(read_trials(tmp_path)["run_id"]) == {"from-rows", p2.stem.removeprefix("sim-")}


def test_empty_store_is_an_empty_frame_with_the_schema(tmp_path):
    for root in (tmp_path / "missing", tmp_path):
        df = read_trials(root)
        assert df.height == 0 and df.schema == pl.Schema(TRIAL_COLUMNS)
    assert existing_keys(tmp_path / "missing") == set()


def _row3(**change) -> list[dict]:
    rows = [t.to_row() for t in make_trials()[:5]]
    rows[3].update(change)
    return rows


@pytest.mark.parametrize("change, field, expected", [
    ({"row": 5}, "row", "expected an integer in [0, 5) (grid rows), found int 5"),
    ({"col": -1}, "col", "expected an integer in [0, 8) (grid columns), found int -1"),
    ({"col": 2.0}, "col", "expected an integer in [0, 8) (grid columns), found float 2.0"),
    ({"x": float("nan")}, "x", "expected a finite number, found float nan"),
    ({"yaw": float("inf")}, "yaw", "expected a finite number, found float inf"),
    ({"y": "0.1"}, "y", "expected a finite number, found str '0.1'"),
    ({"source": "robot"}, "source", "expected one of ['sim', 'real'], found 'robot'"),
    ({"variation": "fog"}, "variation", "expected one of ['none', 'lighting', 'form', 'distractors'], found 'fog'"),
    ({"task": "../evil"}, "task", "found '../evil'"),
    ({"method": "full lora"}, "method", "found 'full lora'"),
    ({"success": "yes"}, "success", "expected a bool, found str 'yes'"),
    ({"seed": True}, "seed", "found bool True"),
    ({"steps": -1}, "steps", "found int -1"),
    ({"duration_s": -0.5}, "duration_s", "expected a finite non-negative number, found float -0.5"),
    ({"recorded_at": datetime(2025, 1, 1)}, "recorded_at", "expected a timezone-aware datetime"),
    ({"success": True, "failure_reason": "step_limit"}, "failure_reason",
     "expected no failure reason on a successful trial, found 'step_limit'"),
    ({"speed": 3}, "speed", "an unknown column"),
])
def test_validation_errors_name_the_row_and_the_field(tmp_path, change, field, expected):
    with pytest.raises(TrialStoreError) as e:
        validate_trials(_row3(**change))
    assert str(e.value).startswith(f"trial row 3 [{field}]: ")
    assert expected in str(e.value)
    with pytest.raises(TrialStoreError, match=r"^trial row 3 "):
        write_trials(tmp_path / "trials", _row3(**change), run_id="r")
    assert not (tmp_path / "trials").exists()  # nothing written


def test_a_mapping_without_a_required_column_is_named():
    rows = _row3()
    del rows[3]["seed"]
    with pytest.raises(TrialStoreError, match=r"^trial row 3 \[seed\]: expected a value \(required column\)"):
        validate_trials(rows)
    del rows[1]["checkpoint_id"]  # optional: defaults apply
    assert validate_trials(rows[:3])[1]["checkpoint_id"] == ""


def test_write_refuses_mixed_tasks_methods_and_repeated_keys(tmp_path):
    mixed_task = make_trials()[:3] + make_trials(task="push_cup")[3:5]
    with pytest.raises(TrialStoreError, match=r"^trial row 3 \[task\]: expected 'pick_cube' like row 0"):
        write_trials(tmp_path, mixed_task, run_id="r")
    mixed_method = make_trials()[:2] + make_trials(method="zero_shot")[2:3]
    with pytest.raises(TrialStoreError, match=r"^trial row 2 \[method\]: expected 'steering' like row 0"):
        write_trials(tmp_path, mixed_method, run_id="r")
    t = make_trials()
    with pytest.raises(TrialStoreError) as e:
        write_trials(tmp_path, t[:10] + [t[4]], run_id="r")
    assert str(e.value).startswith("trial row 10 [natural key]: expected each ('source', 'task', 'method', "
                                   "'checkpoint_id', 'variation', 'seed', 'row', 'col') once per batch, "
                                   "found a repeat of row 4: ('sim', 'pick_cube', 'steering', '', 'none', 0, 0, 4)")
    with pytest.raises(TrialStoreError, match=r"^write_trials \[run_id\]: expected a name matching"):
        write_trials(tmp_path, t, run_id="../x")
    with pytest.raises(TrialStoreError, match=r"^write_trials \[trials\]: expected at least one trial"):
        write_trials(tmp_path, [], run_id="r")
    assert list(tmp_path.iterdir()) == []


def test_reusing_a_run_id_replaces_that_runs_file(tmp_path):
    write_trials(tmp_path, make_trials(success=lambda r, c: False), run_id="r1")
    write_trials(tmp_path, make_trials(seed=5), run_id="r2")
    path = write_trials(tmp_path, make_trials(success=lambda r, c: True), run_id="r1")
    assert sorted(p.name for p in path.parent.iterdir()) == ["sim-r1.parquet", "sim-r2.parquet"]
    df = read_trials(tmp_path)
    assert df.height == 80
    assert df.filter(pl.col("run_id") == "r1")["success"].all()
    # a run that rewrites its file as trials finish: the file holds exactly the last write
    write_trials(tmp_path, make_trials()[:7], run_id="r1")
    assert read_trials(tmp_path).filter(pl.col("run_id") == "r1").height == 7


def test_dedup_on_the_natural_key_keeps_the_latest_recorded_at(tmp_path):
    old = make_trials(success=lambda r, c: False, recorded_at=T0)
    new = make_trials(success=lambda r, c: r == 0, recorded_at=T0 + timedelta(hours=1))
    earlier = make_trials(success=lambda r, c: True, recorded_at=T0 - timedelta(days=1))
    write_trials(tmp_path, old, run_id="b-old")
    write_trials(tmp_path, new, run_id="a-new")  # a re-run: supersedes b-old although its name sorts first
    write_trials(tmp_path, earlier, run_id="c-earlier")  # written last, recorded earliest: superseded
    df = read_trials(tmp_path)
    assert df.height == 40 and set(df["run_id"]) == {"a-new"}
    assert df["success"].to_list() == [r == 0 for r, c in DEFAULT_GRID.cells()]
    # the DuckDB view applies the same rule
    view = sqlrun.query(f"SELECT * FROM trials ORDER BY {', '.join(NATURAL_KEY)}", tmp_path)
    assert view.select(["run_id", "success", "row", "col"]).rows() == df.select(["run_id", "success", "row", "col"]).rows()
    # equal recorded_at: the larger run_id wins, in both
    write_trials(tmp_path, make_trials(success=lambda r, c: True, recorded_at=T0 + timedelta(hours=1)), run_id="z-tie")
    assert set(read_trials(tmp_path)["run_id"]) == {"z-tie"}
    assert sqlrun.query("SELECT DISTINCT run_id FROM trials", tmp_path)["run_id"].to_list() == ["z-tie"]
    assert sqlrun.query("SELECT count(*) AS n FROM trial_files", tmp_path)["n"].item() == 160


def test_tmp_leftovers_are_ignored(tmp_path):
    path = write_trials(tmp_path, make_trials(), run_id="r1")
    (path.parent / ".tmp-sim-r2.parquet-1a2b3c4d").write_bytes(b"PAR1 half written")  # what atomic_file leaves
    write_trials(tmp_path / "elsewhere", make_trials(seed=9), run_id="r3")
    (tmp_path / "elsewhere" / "pick_cube" / "steering" / "sim-r3.parquet").rename(path.parent / ".tmp-sim-r3.parquet")
    assert read_trials(tmp_path).height == 40
    assert sqlrun.query("SELECT count(*) AS n FROM trials", tmp_path)["n"].item() == 40


def test_a_foreign_parquet_file_is_named(tmp_path):
    write_trials(tmp_path, make_trials(), run_id="r1")
    bad = tmp_path / "pick_cube" / "steering" / "sim-r2.parquet"
    pl.DataFrame({"task": ["pick_cube"], "row": [1]}).write_parquet(bad)
    with pytest.raises(TrialStoreError, match=rf"^{re.escape(str(bad))} \[method\]: expected a column of type String, found nothing"):
        read_trials(tmp_path)
    bad.write_bytes(b"not parquet")
    with pytest.raises(TrialStoreError, match=rf"^{re.escape(str(bad))}: expected a readable trial parquet file, found "):
        read_trials(tmp_path)


def _writer(root: str, seed: int, run_id: str, half: mp.Event, resume: mp.Event) -> None:
    """A sim evaluation run: rewrites its run file after every trial; pauses half way until told."""
    trials = make_trials(seed=seed)
    for i in range(len(trials)):
        if i == 20:
            half.set()
            if not resume.wait(60):
                raise TimeoutError("the test never resumed the writer")
        write_trials(root, trials[: i + 1], run_id=run_id)
        time.sleep(0.005)


def test_two_processes_write_the_same_task_and_method_concurrently(tmp_path):
    ctx = mp.get_context("spawn")
    halves, resume = [ctx.Event(), ctx.Event()], ctx.Event()
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), seed, f"run-{seed}", halves[seed], resume))
             for seed in (0, 1)]
    for p in procs:
        p.start()
    try:
        for h in halves:
            assert h.wait(120), "a writer did not reach half way"
        # both runs are mid-way: 20 trials each are visible, to polars and to DuckDB
        assert read_trials(tmp_path).height == 40
        assert sqlrun.query("SELECT count(*) AS n FROM trials", tmp_path)["n"].item() == 40
        resume.set()
        seen = []
        while any(p.is_alive() for p in procs):  # keep reading while both rewrite their files
            seen.append((read_trials(tmp_path).height,
                         sqlrun.query("SELECT count(*) AS n FROM trials", tmp_path)["n"].item()))
    finally:
        resume.set()
        for p in procs:
            p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert all(40 <= a <= 80 and 40 <= b <= 80 for a, b in seen)
    assert [a for a, _ in seen] == sorted(a for a, _ in seen)  # files only grow, each replaced atomically
    df = read_trials(tmp_path)
    assert df.height == 80
    assert df.group_by("run_id").len().sort("run_id").rows() == [("run-0", 40), ("run-1", 40)]
    files = sorted(p.name for p in (tmp_path / "pick_cube" / "steering").iterdir())
    assert files == ["sim-run-0.parquet", "sim-run-1.parquet"]
