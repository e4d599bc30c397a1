"""Real-robot trial sheets: a CSV per task x method x checkpoint x variation x seed.

``write_sheet`` lists the grid's cells in row-major order with the placement the
simulator uses (cell centre ``x_m``/``y_m`` and seeded yaw ``yaw_deg`` from
``sim.grid``); the operator places the object, runs the policy and fills in
``success`` (1/0/yes/no/true/false) and, optionally, ``steps``, ``duration_s``,
``failure_reason``, ``operator`` and ``notes``. ``ingest_sheet`` checks the whole
sheet (every problem is reported as ``<file>:<line> [<column>]: expected ...,
found ...``, the header being line 1) and only then adds its trials to the trial
store with ``source='real'``.

Ingest is idempotent: the sheet's run id is a digest of its key columns
(``sheet_run_id``), and rows whose natural key (``trials.NATURAL_KEY``) is
already in the store are skipped and counted, so ingesting a sheet twice adds
nothing. Re-scoring a sheet after it was ingested therefore needs a new seed (or
removing its file ``<trials>/<task>/<method>/real-<run id>.parquet``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import polars as pl

from robosteer_assets.common.atomic import write_text_atomic
from robosteer_assets.droid.errors import UnsafeTaskNameError
from robosteer_assets.droid.layout import SAFE_TASK_RULE, safe_task_name
from robosteer_assets.evaluation.trials import (Trial, existing_keys, trial_file, trial_key, variation_names,
                                                write_trials)
from robosteer_assets.sim.grid import DEFAULT_GRID, GridConfig, cell_center, trial_yaw

KEY_COLUMNS = ("task", "method", "checkpoint_id", "variation", "seed")
PLACEMENT_COLUMNS = ("row", "col", "x_m", "y_m", "yaw_deg")
OPERATOR_COLUMNS = ("success", "steps", "duration_s", "failure_reason", "operator", "notes")
SHEET_COLUMNS = KEY_COLUMNS + PLACEMENT_COLUMNS + OPERATOR_COLUMNS
SUCCESS_VALUES = {"1": True, "yes": True, "true": True, "0": False, "no": False, "false": False}
SUCCESS_RULE = "1/0/yes/no/true/false"
XY_TOLERANCE_M = 1e-3  # x_m / y_m may differ from the cell centre by rounding only
YAW_TOLERANCE_DEG = 0.5


@dataclass(frozen=True)
class SheetProblem:
    """One problem in a sheet; ``line`` is the CSV line (header = 1), None for the sheet as a whole."""

    line: int | None
    column: str
    expected: str
    found: str


class SheetError(Exception):
    """A trial sheet that cannot be ingested; one message line per problem."""

    def __init__(self, path: str | os.PathLike, problems: list[SheetProblem]):
        self.path, self.problems = Path(path), list(problems)
        super().__init__("\n".join(self.describe(p) for p in self.problems))

    def describe(self, p: SheetProblem) -> str:
        where = f"{self.path}:{p.line}" if p.line is not None else f"{self.path}"
        return f"{where} [{p.column}]: expected {p.expected}, found {p.found}"

    def __reduce__(self):
        return (type(self), (self.path, self.problems))


@dataclass(frozen=True)
class IngestReport:
    """What ``ingest_sheet`` did: trials added, trials skipped (already in the store), file written."""

    added: int
    skipped_existing: int
    file: Path | None


def sheet_run_id(task: str, method: str, checkpoint_id: str, variation: str, seed: int) -> str:
    """The deterministic run id of a sheet: ``sheet-<12 hex of sha1 over its key columns>``."""
    digest = hashlib.sha1(json.dumps([task, method, checkpoint_id, variation, int(seed)]).encode()).hexdigest()
    return f"sheet-{digest[:12]}"


def write_sheet(path: str | os.PathLike, task: str, method: str, checkpoint_id: str = "", variation: str = "none",
                seed: int = 0, grid: GridConfig = DEFAULT_GRID) -> Path:
    """Write (atomically) the trial sheet of one task x method x checkpoint x variation x seed:
    one row per grid cell in row-major order with the simulator's placement and blank
    operator columns. Returns ``path``."""
    for name, value in (("task", task), ("method", method)):
        try:
            safe_task_name(value)
        except UnsafeTaskNameError:
            raise ValueError(f"write_sheet [{name}]: expected {SAFE_TASK_RULE}, found {value!r}") from None
    if variation not in variation_names():
        raise ValueError(f"write_sheet [variation]: expected one of {list(variation_names())}, found {variation!r}")
    if not isinstance(checkpoint_id, str):
        raise ValueError(f"write_sheet [checkpoint_id]: expected a string, found {checkpoint_id!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"write_sheet [seed]: expected an integer, found {seed!r}")
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SHEET_COLUMNS)
    for row, col in grid.cells():
        x, y = cell_center(row, col, grid)
        yaw = math.degrees(trial_yaw(seed, row, col, grid))
        w.writerow([task, method, checkpoint_id, variation, seed, row, col, f"{x:.5f}", f"{y:.5f}", f"{yaw:.2f}"]
                   + [""] * len(OPERATOR_COLUMNS))
    path = Path(path)
    write_text_atomic(path, buf.getvalue())
    return path


class _Row:
    """Parses the fields of one sheet line, collecting problems instead of stopping at the first."""

    def __init__(self, line: int, values: dict[str, str], problems: list[SheetProblem]):
        self.line, self.values, self.problems = line, values, problems

    def fail(self, column: str, expected: str, found: str) -> None:
        self.problems.append(SheetProblem(self.line, column, expected, found))

    def text(self, column: str) -> str:
        return self.values[column].strip()

    def optional(self, column: str) -> str | None:
        return self.text(column) or None

    def integer(self, column: str, lo: int | None = None, hi: int | None = None, what: str = "") -> int | None:
        raw = self.text(column)
        try:
            v = int(raw)
        except ValueError:
            v = None
        if v is None or (lo is not None and v < lo) or (hi is not None and v >= hi):
            rng = f" in [{lo}, {hi})" if hi is not None else (f" >= {lo}" if lo is not None else "")
            self.fail(column, f"an integer{rng}{what}", repr(raw) if raw else "blank")
            return None
        return v

    def number(self, column: str, nonneg: bool = False, what: str = "") -> float | None:
        raw = self.text(column)
        try:
            v = float(raw)
        except ValueError:
            v = math.nan
        if not math.isfinite(v) or (nonneg and v < 0):
            self.fail(column, f"a finite {'non-negative ' if nonneg else ''}number{what}", repr(raw) if raw else "blank")
            return None
        return v

    def name(self, column: str) -> str | None:
        raw = self.text(column)
        try:
            return safe_task_name(raw)
        except UnsafeTaskNameError:
            self.fail(column, SAFE_TASK_RULE, repr(raw) if raw else "blank")
            return None


def _parse_row(r: _Row, grid: GridConfig, variations: tuple[str, ...]) -> tuple[dict, bool]:
    """The fields of one sheet row (None where unparseable) and whether it had no problem."""
    before = len(r.problems)
    out: dict = {"task": r.name("task"), "method": r.name("method"), "checkpoint_id": r.text("checkpoint_id"),
                 "variation": r.text("variation"), "seed": r.integer("seed", -(2**63), 2**63)}
    if out["variation"] not in variations:
        r.fail("variation", f"one of {list(variations)}", repr(out["variation"]) if out["variation"] else "blank")
    out["row"] = r.integer("row", 0, grid.rows, " (grid rows)")
    out["col"] = r.integer("col", 0, grid.cols, " (grid columns)")
    placement = {c: r.number(c, what=" (the sheet's placement; do not edit it)") for c in ("x_m", "y_m", "yaw_deg")}
    if None not in (out["row"], out["col"]):
        x, y = cell_center(out["row"], out["col"], grid)
        cell = f"cell ({out['row']}, {out['col']})"
        for c, want in (("x_m", x), ("y_m", y)):
            if placement[c] is not None and abs(placement[c] - want) > XY_TOLERANCE_M:
                r.fail(c, f"{want:.5f} ({cell} centre, within {XY_TOLERANCE_M * 1e3:g} mm; placements must "
                          "not be edited)", f"{placement[c]:.5f}")
        if out["seed"] is not None and placement["yaw_deg"] is not None:
            want = math.degrees(trial_yaw(out["seed"], out["row"], out["col"], grid))
            diff = (placement["yaw_deg"] - want + 180.0) % 360.0 - 180.0
            if abs(diff) > YAW_TOLERANCE_DEG:
                r.fail("yaw_deg", f"{want:.2f} (the trial yaw of {cell} at seed {out['seed']}, within "
                                  f"{YAW_TOLERANCE_DEG:g} deg; placements must not be edited)",
                       f"{placement['yaw_deg']:.2f}")
    raw = r.text("success").lower()
    out["success"] = SUCCESS_VALUES.get(raw)
    if out["success"] is None:
        r.fail("success", SUCCESS_RULE + ("" if raw else " (every trial must be scored)"),
               repr(r.text("success")) if raw else "blank")
    out["steps"] = r.integer("steps", 0) if r.text("steps") else None
    out["duration_s"] = r.number("duration_s", nonneg=True) if r.text("duration_s") else None
    out["failure_reason"] = r.optional("failure_reason")
    if out["success"] and out["failure_reason"]:
        r.fail("failure_reason", "blank on a successful trial (use notes)", repr(out["failure_reason"]))
    out["operator"], out["notes"] = r.optional("operator"), r.optional("notes")
    return out, len(r.problems) == before


def _read_sheet(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    if not path.is_file():
        raise SheetError(path, [SheetProblem(None, "file", "an existing CSV trial sheet", "nothing")])
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as e:
        raise SheetError(path, [SheetProblem(None, "file", "a readable UTF-8 CSV file",
                                             f"{type(e).__name__}: {e}")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [h.strip() for h in next(reader)]
        records = [(reader.line_num, rec) for rec in reader if any(v.strip() for v in rec)]
    except StopIteration:
        raise SheetError(path, [SheetProblem(None, "header", f"a header row {list(SHEET_COLUMNS)}",
                                             "an empty file")]) from None
    except csv.Error as e:
        raise SheetError(path, [SheetProblem(reader.line_num, "file", "valid CSV", f"csv.Error: {e}")]) from None
    return header, records


def _check_header(header: list[str]) -> list[SheetProblem]:
    problems = []
    missing = [c for c in SHEET_COLUMNS if c not in header]
    unknown = [c for c in header if c not in SHEET_COLUMNS]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if missing:
        problems.append(SheetProblem(1, "header", f"the columns {list(SHEET_COLUMNS)}", f"missing {missing}"))
    if unknown:
        problems.append(SheetProblem(1, "header", f"only the columns {list(SHEET_COLUMNS)}", f"unknown {unknown}"))
    if repeated:
        problems.append(SheetProblem(1, "header", "each column once", f"repeated {repeated}"))
    return problems


def parse_sheet(path: str | os.PathLike, grid: GridConfig = DEFAULT_GRID) -> list[Trial]:
    """Every trial of a filled-in sheet (``source='real'``, the sheet's run id, exact grid placements),
    after checking the whole sheet; raises ``SheetError`` listing every problem."""
    path = Path(path)
    header, records = _read_sheet(path)
    problems = _check_header(header)
    if problems:
        raise SheetError(path, problems)
    variations = variation_names()
    parsed: list[tuple[int, dict]] = []
    seen: dict[tuple[int, int], int] = {}
    for line, rec in records:
        if len(rec) != len(header):
            problems.append(SheetProblem(line, "fields", f"{len(header)} fields like the header", f"{len(rec)}"))
            continue
        row, ok = _parse_row(_Row(line, dict(zip(header, rec)), problems), grid, variations)
        if ok:
            parsed.append((line, row))
        if row["row"] is not None and row["col"] is not None:
            cell = (row["row"], row["col"])
            if cell in seen:
                problems.append(SheetProblem(line, "row/col", "each grid cell once",
                                             f"cell {cell} again (first on line {seen[cell]})"))
            seen.setdefault(cell, line)
    if parsed:
        first_line, first = parsed[0]
        for line, row in parsed[1:]:
            for c in KEY_COLUMNS:
                if row[c] != first[c]:
                    problems.append(SheetProblem(
                        line, c, f"{first[c]!r} as on line {first_line} (one sheet is one task x method x "
                                 "checkpoint_id x variation x seed)", repr(row[c])))
    if len(records) != grid.num_cells:
        problems.append(SheetProblem(None, "rows", f"exactly {grid.num_cells} trial rows, one per grid cell",
                                     f"{len(records)} rows"))
    missing = [c for c in grid.cells() if c not in seen]
    if missing:
        problems.append(SheetProblem(None, "row/col", f"every cell of the {grid.rows} x {grid.cols} grid once",
                                     f"no valid row for cells {missing}"))
    if problems:
        raise SheetError(path, problems)
    recorded_at = datetime.now(timezone.utc)
    trials = []
    for _, r in parsed:
        run_id = sheet_run_id(r["task"], r["method"], r["checkpoint_id"], r["variation"], r["seed"])
        x, y = cell_center(r["row"], r["col"], grid)
        trials.append(Trial(
            task=r["task"], method=r["method"], row=r["row"], col=r["col"], x=x, y=y,
            yaw=trial_yaw(r["seed"], r["row"], r["col"], grid), seed=r["seed"], success=r["success"],
            checkpoint_id=r["checkpoint_id"], variation=r["variation"], steps=r["steps"],
            duration_s=r["duration_s"], failure_reason=r["failure_reason"], run_id=run_id, source="real",
            recorded_at=recorded_at, operator=r["operator"], notes=r["notes"]))
    return trials


def ingest_sheet(path: str | os.PathLike, trials_root: str | os.PathLike,
                 grid: GridConfig = DEFAULT_GRID) -> IngestReport:
    """Check a filled-in sheet and add its trials (``source='real'``) to the trial store.

    Nothing is written unless the whole sheet is valid (``SheetError`` otherwise). Trials whose
    natural key is already stored are skipped and counted (idempotent ingest).
    """
    trials = parse_sheet(path, grid)
    first = trials[0]
    stored = existing_keys(trials_root, first.task, first.method)
    new = [t for t in trials if trial_key(t.to_row()) not in stored]
    if not new:
        return IngestReport(added=0, skipped_existing=len(trials), file=None)
    target = trial_file(trials_root, "real", first.task, first.method, first.run_id)
    kept = pl.read_parquet(target).to_dicts() if target.is_file() else []  # the sheet's earlier trials
    written = write_trials(trials_root, kept + [t.to_row() for t in new], run_id=first.run_id, grid=grid)
    return IngestReport(added=len(new), skipped_existing=len(trials) - len(new), file=written)
