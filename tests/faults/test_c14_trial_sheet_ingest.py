"""Case 14: real-robot trial sheets. The same filled-in sheet is ingested twice; and sheets with the
wrong number of cells or bad values reach ``evaluation.sheets.ingest_sheet``.

What the user sees: the second ingest reports ``added=0, skipped_existing=40`` and writes nothing
(the sheet's trials are keyed on the natural primary key, its run id is a digest of its key
columns), so the method comparison counts 40 real trials, not 80. A bad sheet is rejected with
``SheetError``, one line per problem naming ``<sheet>:<line> [<column>]`` (the header is line 1):
``<sheet> [rows]: expected exactly 40 trial rows, one per grid cell, found 39 rows`` plus the
missing or repeated cells, ``<sheet>:7 [success]: expected 1/0/yes/no/true/false, found 'maybe'``,
an edited placement or a blank score.
What is kept: the trial store, byte for byte (nothing of a rejected sheet is written).
"""

import csv
from pathlib import Path

import pytest

from robosteer_assets.evaluation.sheets import SHEET_COLUMNS, SheetError, ingest_sheet, write_sheet
from robosteer_assets.evaluation.sqlrun import run_sql_file
from robosteer_assets.evaluation.trials import read_trials

from ._support import tree_digest

ROOT = Path(__file__).resolve().parents[2]


def _filled(path: Path, seed: int = 0) -> tuple[Path, list[dict]]:
    write_sheet(path, "pick_cube", "steering", checkpoint_id="lab-1", seed=seed)
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for i, r in enumerate(rows):
        r["success"] = "yes" if i % 4 else "no"
        r["operator"] = "kim"
    return _save(path, rows), rows


def _save(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(SHEET_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    return path


def _real_row(table: str) -> list[str]:
    rows = [l.split() for l in table.splitlines() if l.startswith("real ")]
    assert len(rows) == 1, table
    return rows[0]


def test_the_same_sheet_ingested_twice_adds_no_duplicates(tmp_path):
    sheet, _ = _filled(tmp_path / "pick_cube_steering.csv")
    trials = tmp_path / "data" / "trials"
    first = ingest_sheet(sheet, trials)
    assert (first.added, first.skipped_existing) == (40, 0) and first.file.is_file()
    before = tree_digest(trials)
    second = ingest_sheet(sheet, trials)
    assert (second.added, second.skipped_existing, second.file) == (0, 40, None)
    assert tree_digest(trials) == before
    assert read_trials(trials).height == 40
    table = run_sql_file(ROOT / "sql" / "method_comparison.sql", trials_root=trials)
    assert _real_row(table) == ["real", "pick_cube", "steering", "none", "40", "30", "75.0"]


def _wrong_count(rows):
    rows.pop(17)  # cell (2, 1)


def _extra_row(rows):
    rows.append(dict(rows[3]))


def _bad_values(rows):
    rows[5]["success"] = "maybe"
    rows[9]["success"] = ""
    rows[30]["y_m"] = "0.2"


@pytest.mark.parametrize("change, expected", [
    (_wrong_count, ["{sheet} [rows]: expected exactly 40 trial rows, one per grid cell, found 39 rows",
                    "{sheet} [row/col]: expected every cell of the 5 x 8 grid once, found no valid row for cells "
                    "[(2, 1)]"]),
    (_extra_row, ["{sheet}:42 [row/col]: expected each grid cell once, found cell (0, 3) again (first on line 5)",
                  "{sheet} [rows]: expected exactly 40 trial rows, one per grid cell, found 41 rows"]),
    (_bad_values, ["{sheet}:7 [success]: expected 1/0/yes/no/true/false, found 'maybe'",
                   "{sheet}:11 [success]: expected 1/0/yes/no/true/false (every trial must be scored), found blank",
                   "{sheet}:32 [y_m]: expected 0.15625 (cell (3, 6) centre, within 1 mm; placements must not be "
                   "edited), found 0.20000"]),
])
def test_a_bad_sheet_is_rejected_with_its_rows_and_nothing_is_written(tmp_path, change, expected):
    trials = tmp_path / "data" / "trials"
    ingest_sheet(_filled(tmp_path / "earlier.csv", seed=1)[0], trials)  # a store with an earlier sheet in it
    before = tree_digest(trials)
    sheet, rows = _filled(tmp_path / "today.csv")
    change(rows)
    _save(sheet, rows)
    with pytest.raises(SheetError) as e:
        ingest_sheet(sheet, trials)
    msg = str(e.value)
    assert len(msg.splitlines()) == len(expected), msg
    for part in expected:
        assert part.format(sheet=sheet) in msg.splitlines(), msg
    assert tree_digest(trials) == before
    assert read_trials(trials).height == 40
