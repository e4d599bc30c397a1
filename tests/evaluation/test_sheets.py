"""evaluation.sheets: real-robot trial sheets at the simulator's placements, checked and ingested
idempotently into the trial store (source='real')."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import polars as pl
import pytest

from robosteer_assets.evaluation.sheets import (OPERATOR_COLUMNS, SHEET_COLUMNS, SheetError, ingest_sheet,
                                                sheet_run_id, write_sheet)
from robosteer_assets.evaluation.trials import read_trials, write_trials
from robosteer_assets.sim.grid import DEFAULT_GRID, GridConfig, cell_center, trial_yaw

SCORES = ["1", "0", "yes", "no", "true", "false", " Yes ", "TRUE"]  # what operators type
TRUTHY = {"1", "yes", "true"}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def save_rows(path: Path, rows: list[dict[str, str]], columns=SHEET_COLUMNS) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(columns), extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    return path


def filled_sheet(tmp_path: Path, name="sheet.csv", seed=3, **kw) -> Path:
    """A sheet scored the way an operator would: success in every spelling, some optional columns."""
    path = write_sheet(tmp_path / name, "pick_cube", "steering", checkpoint_id="ckpt-2", seed=seed, **kw)
    rows = read_rows(path)
    for i, r in enumerate(rows):
        r["success"] = SCORES[i % len(SCORES)]
        if i % 2:
            r["steps"], r["duration_s"], r["operator"] = str(100 + i), f"{12.5 + i}", "ana"
        if r["success"].strip().lower() not in TRUTHY and i % 3 == 0:
            r["failure_reason"] = "dropped the cube"
    return save_rows(path, rows)


def test_write_sheet_lists_the_simulators_placements(tmp_path):
    path = write_sheet(tmp_path / "s.csv", "pick_cube", "steering", checkpoint_id="ckpt-2", variation="form", seed=3)
    with open(path, newline="") as f:
        header = next(csv.reader(f))
    assert header == list(SHEET_COLUMNS)
    rows = read_rows(path)
    assert len(rows) == 40
    assert [(int(r["row"]), int(r["col"])) for r in rows] == DEFAULT_GRID.cells()  # row-major
    for r in rows:
        row, col = int(r["row"]), int(r["col"])
        x, y = cell_center(row, col)
        assert abs(float(r["x_m"]) - x) <= 5.1e-6 and abs(float(r["y_m"]) - y) <= 5.1e-6
        assert abs(float(r["yaw_deg"]) - math.degrees(trial_yaw(3, row, col))) <= 0.005
        assert (r["task"], r["method"], r["checkpoint_id"], r["variation"], r["seed"]) == (
            "pick_cube", "steering", "ckpt-2", "form", "3")
        assert all(r[c] == "" for c in OPERATOR_COLUMNS)
    other = read_rows(write_sheet(tmp_path / "s4.csv", "pick_cube", "steering", seed=4))
    assert [r["yaw_deg"] for r in other] != [r["yaw_deg"] for r in rows]
    small = read_rows(write_sheet(tmp_path / "g.csv", "pick_cube", "steering", grid=GridConfig(rows=2, cols=3)))
    assert len(small) == 6
    with pytest.raises(ValueError, match=r"write_sheet \[variation\]: expected one of"):
        write_sheet(tmp_path / "v.csv", "pick_cube", "steering", variation="fog")
    with pytest.raises(ValueError, match=r"write_sheet \[task\]: expected a name matching"):
        write_sheet(tmp_path / "t.csv", "../pick_cube", "steering")


def test_ingest_adds_40_real_trials_then_nothing(tmp_path):
    path = filled_sheet(tmp_path)
    rows = read_rows(path)
    store = tmp_path / "trials"
    report = ingest_sheet(path, store)
    run_id = sheet_run_id("pick_cube", "steering", "ckpt-2", "none", 3)
    assert re.fullmatch(r"sheet-[0-9a-f]{12}", run_id)
    assert (report.added, report.skipped_existing) == (40, 0)
    assert report.file == store / "pick_cube" / "steering" / f"real-{run_id}.parquet"
    df = read_trials(store)
    assert df.height == 40 and set(df["source"]) == {"real"} and set(df["run_id"]) == {run_id}
    by_cell = {(d["row"], d["col"]): d for d in df.to_dicts()}
    for r in rows:
        cell = (int(r["row"]), int(r["col"]))
        t = by_cell[cell]
        assert t["success"] == (r["success"].strip().lower() in TRUTHY)
        assert (t["x"], t["y"]) == cell_center(*cell) and t["yaw"] == trial_yaw(3, *cell)  # exact, not rounded
        assert t["steps"] == (int(r["steps"]) if r["steps"] else None)
        assert t["duration_s"] == (float(r["duration_s"]) if r["duration_s"] else None)
        assert t["failure_reason"] == (r["failure_reason"] or None)
        assert t["operator"] == (r["operator"] or None)
        assert (t["checkpoint_id"], t["variation"], t["seed"]) == ("ckpt-2", "none", 3)
    before = report.file.read_bytes()

    again = ingest_sheet(path, store)
    assert (again.added, again.skipped_existing, again.file) == (0, 40, None)
    assert report.file.read_bytes() == before
    assert read_trials(store).height == 40

    other_seed = ingest_sheet(filled_sheet(tmp_path, "seed4.csv", seed=4), store)
    assert (other_seed.added, other_seed.skipped_existing) == (40, 0)
    assert read_trials(store).height == 80


def test_a_partly_stored_sheet_adds_only_the_missing_trials_and_keeps_the_rest(tmp_path):
    path, store = filled_sheet(tmp_path), tmp_path / "trials"
    first = ingest_sheet(path, store)
    keep = read_trials(store).head(10).to_dicts()
    write_trials(store, keep, run_id=keep[0]["run_id"])  # the sheet's file holds only 10 of its trials
    again = ingest_sheet(path, store)
    assert (again.added, again.skipped_existing, again.file) == (30, 10, first.file)
    df = read_trials(store)
    assert df.height == 40 and df.filter(pl.col("recorded_at") == keep[0]["recorded_at"]).height == 10


def _mutate(tmp_path: Path, change) -> Path:
    path = filled_sheet(tmp_path)
    rows = read_rows(path)
    columns = change(rows) or SHEET_COLUMNS
    return save_rows(path, rows, columns)


def _blank_success(rows):
    rows[10]["success"] = ""


def _maybe(rows):
    rows[5]["success"] = "maybe"


def _drop_last(rows):
    rows.pop()


def _duplicate_cell(rows):
    rows[8]["row"], rows[8]["col"] = rows[7]["row"], rows[7]["col"]
    rows[8]["x_m"], rows[8]["y_m"], rows[8]["yaw_deg"] = rows[7]["x_m"], rows[7]["y_m"], rows[7]["yaw_deg"]


def _edited_x(rows):
    rows[12]["x_m"] = f"{float(rows[12]['x_m']) + 0.02:.4f}"


def _edited_yaw(rows):
    rows[3]["yaw_deg"] = f"{float(rows[3]['yaw_deg']) + 5:.2f}"


def _missing_column(rows):
    return [c for c in SHEET_COLUMNS if c != "steps"]


def _unknown_column(rows):
    for r in rows:
        r["weather"] = "sunny"
    return list(SHEET_COLUMNS) + ["weather"]


def _mixed_method(rows):
    rows[20]["method"] = "full_lora"


def _bad_steps(rows):
    rows[0]["steps"] = "twelve"


@pytest.mark.parametrize("change, expected", [
    (_maybe, ["{path}:7 [success]: expected 1/0/yes/no/true/false, found 'maybe'"]),
    (_blank_success, ["{path}:12 [success]: expected 1/0/yes/no/true/false (every trial must be scored), found blank"]),
    (_drop_last, ["{path} [rows]: expected exactly 40 trial rows, one per grid cell, found 39 rows",
                  "{path} [row/col]: expected every cell of the 5 x 8 grid once, found no valid row for cells [(4, 7)]"]),
    (_duplicate_cell, ["{path}:10 [row/col]: expected each grid cell once, found cell (0, 7) again (first on line 9)",
                       "found no valid row for cells [(1, 0)]"]),
    (_edited_x, ["{path}:14 [x_m]: expected 0.44400 (cell (1, 4) centre, within 1 mm; placements must not be edited), "
                 "found 0.46400"]),
    (_edited_yaw, ["{path}:5 [yaw_deg]: expected ", "(the trial yaw of cell (0, 3) at seed 3, within 0.5 deg"]),
    (_missing_column, ["{path}:1 [header]: expected the columns ", "found missing ['steps']"]),
    (_unknown_column, ["{path}:1 [header]: expected only the columns ", "found unknown ['weather']"]),
    (_mixed_method, ["{path}:22 [method]: expected 'steering' as on line 2 (one sheet is one task x method x "
                     "checkpoint_id x variation x seed), found 'full_lora'"]),
    (_bad_steps, ["{path}:2 [steps]: expected an integer >= 0, found 'twelve'"]),
])
def test_bad_sheets_are_rejected_naming_line_and_column_and_write_nothing(tmp_path, change, expected):
    path = _mutate(tmp_path, change)
    store = tmp_path / "trials"
    with pytest.raises(SheetError) as e:
        ingest_sheet(path, store)
    for part in expected:
        assert part.format(path=path) in str(e.value)
    assert not store.exists()


def test_every_problem_is_listed_one_per_line(tmp_path):
    def change(rows):
        _maybe(rows)
        _edited_x(rows)
    path = _mutate(tmp_path, change)
    with pytest.raises(SheetError) as e:
        ingest_sheet(path, tmp_path / "trials")
    lines = str(e.value).splitlines()
    assert [l.split(" ")[0] for l in lines] == [f"{path}:7", f"{path}:14"]
    assert [(p.line, p.column) for p in e.value.problems] == [(7, "success"), (14, "x_m")]


def test_missing_and_empty_files_are_named(tmp_path):
    with pytest.raises(SheetError, match=r"nope\.csv \[file\]: expected an existing CSV trial sheet, found nothing"):
        ingest_sheet(tmp_path / "nope.csv", tmp_path / "trials")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(SheetError, match=r"empty\.csv \[header\]: expected a header row .*found an empty file"):
        ingest_sheet(tmp_path / "empty.csv", tmp_path / "trials")
