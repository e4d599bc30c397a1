"""`robosteer eval sheet / ingest / sim`, `robosteer sql` and `robosteer serve` errors, end to end
through the console entry point (the user's path)."""

from __future__ import annotations

import csv
from pathlib import Path

from robosteer_assets.cli import main
from robosteer_assets.evaluation.trials import read_trials

ROOT = Path(__file__).resolve().parents[2]


def _fill(sheet: Path, success) -> None:
    rows = list(csv.DictReader(sheet.open()))
    for r in rows:
        ok = success(int(r["row"]), int(r["col"]))
        r["success"] = ok if isinstance(ok, str) else "1" if ok else "0"
        r["operator"] = "ana"
    with sheet.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def test_sheet_ingest_twice_then_sql(tmp_path, capsys):
    sheet = tmp_path / "s.csv"
    trials = tmp_path / "trials"
    assert main(["eval", "sheet", "--task", "pick_cube", "--method", "steering", "--checkpoint-id", "ck1",
                 "--out", str(sheet)]) == 0
    assert len(sheet.read_text().splitlines()) == 41
    _fill(sheet, lambda r, c: r < 2)  # 16 of 40
    assert main(["eval", "ingest", str(sheet), "--trials", str(trials)]) == 0
    assert main(["eval", "ingest", str(sheet), "--trials", str(trials)]) == 0
    out = capsys.readouterr().out
    assert "40 trials added, 0 already" in out and "0 trials added, 40 already in the store" in out
    assert read_trials(trials).height == 40
    assert main(["sql", str(ROOT / "sql" / "method_comparison.sql"), "--trials", str(trials)]) == 0
    table = capsys.readouterr().out
    line = [ln for ln in table.splitlines() if ln.startswith("real")][0].split()
    assert line == ["real", "pick_cube", "steering", "none", "40", "16", "40.0"]


def test_bad_sheet_is_rejected_with_the_line(tmp_path, capsys):
    sheet = tmp_path / "s.csv"
    main(["eval", "sheet", "--task", "pick_cube", "--method", "zero_shot", "--out", str(sheet)])
    _fill(sheet, lambda r, c: "maybe" if (r, c) == (0, 4) else True)  # the 5th cell: CSV line 6
    assert main(["eval", "ingest", str(sheet), "--trials", str(tmp_path / "t")]) == 1
    out = capsys.readouterr().out
    assert f"INVALID {sheet}" in out and f"{sheet}:6 [success]: expected 1/0/yes/no/true/false, found 'maybe'" in out
    assert not (tmp_path / "t").exists() or read_trials(tmp_path / "t").height == 0


def test_eval_sim_random_on_two_cells(tmp_path, capsys):
    trials = tmp_path / "trials"
    assert main(["eval", "sim", "--task", "pick_cube", "--method", "random", "--random", "--cells", "0,0", "4,7",
                 "--max-steps", "6", "--trials", str(trials)]) == 0
    out = capsys.readouterr().out
    assert "cell (0, 0)  FAIL    6 steps  step_limit" in out and "0/2 successes (0.0 %)" in out
    df = read_trials(trials)
    assert sorted(zip(df["row"], df["col"])) == [(0, 0), (4, 7)] and set(df["method"]) == {"random"}


def test_eval_and_serve_errors(tmp_path, capsys):
    assert main(["eval", "sim", "--task", "pick_cube", "--method", "m", "--checkpoint", str(tmp_path / "none"),
                 "--trials", str(tmp_path / "t")]) == 1
    assert "checkpoint directory not found" in capsys.readouterr().out
    assert main(["eval", "sim", "--task", "pick_cube", "--method", "m", "--server", "nohost"]) == 2
    assert main(["eval", "sim", "--task", "pick_cube", "--method", "m", "--random", "--cells", "a"]) == 2
    assert main(["serve", "--checkpoint", str(tmp_path / "none"), "--port", "0"]) == 1
    assert "checkpoint directory not found" in capsys.readouterr().out
    assert main(["sql", str(tmp_path / "missing.sql"), "--trials", str(tmp_path)]) == 1
    assert "missing.sql" in capsys.readouterr().out
