"""Evaluation trials: the trial record and its parquet store.

One row per trial: a policy (``method`` at ``checkpoint_id``) attempts ``task``
with the object placed at grid cell (``row``, ``col``) and the seeded yaw, under a
robustness ``variation``, in simulation or on the real robot (``source``).
``TRIAL_COLUMNS`` is the schema (docs/ARCHITECTURE.md, "Evaluation").

Store layout: one parquet file per task x method x run,
``<trials_root>/<task>/<method>/<source>-<run_id>.parquet``, written to a
``.tmp-*`` sibling and renamed into place. Concurrent runs write different files
and take no lock (DuckDB is single-writer, so it only ever *reads* these files,
through the views in ``sql/views.sql``); re-writing a run id replaces that run's
file, so a run may rewrite its file after every trial.

Natural primary key: ``NATURAL_KEY`` = (source, task, method, checkpoint_id,
variation, seed, row, col). A placement's yaw is a function of (seed, row, col),
so the key names one physical trial setup. When the same key appears in several
files (a re-run of the same trials), the row with the latest ``recorded_at`` wins
(ties: the larger ``run_id``) and the older one is superseded, never counted twice.
``read_trials`` and the ``trials`` DuckDB view apply exactly this rule.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from robosteer_assets.common.atomic import TMP_PREFIX, atomic_file
from robosteer_assets.droid.errors import UnsafeTaskNameError
from robosteer_assets.droid.layout import SAFE_TASK_RULE, safe_task_name
from robosteer_assets.sim.grid import DEFAULT_GRID, GridConfig

TRIAL_COLUMNS: dict[str, pl.DataType] = {
    "task": pl.String(),
    "method": pl.String(),  # e.g. "zero_shot", "full_lora", "steering"
    "checkpoint_id": pl.String(),  # "" when the method has a single checkpoint
    "variation": pl.String(),  # "none", "lighting", "form", "distractors"
    "row": pl.Int32(),
    "col": pl.Int32(),
    "x": pl.Float64(),  # m, robot base frame
    "y": pl.Float64(),  # m
    "yaw": pl.Float64(),  # rad
    "seed": pl.Int64(),
    "success": pl.Boolean(),
    "steps": pl.Int32(),  # nullable (real trials)
    "duration_s": pl.Float64(),  # nullable
    "failure_reason": pl.String(),  # null / "" on success, e.g. "step_limit", "policy_error: ..."
    "run_id": pl.String(),
    "source": pl.String(),  # "sim" | "real"
    "video_path": pl.String(),  # nullable
    "recorded_at": pl.Datetime("us", "UTC"),
    "operator": pl.String(),  # nullable, real trials
    "notes": pl.String(),  # nullable
}
NATURAL_KEY: tuple[str, ...] = ("source", "task", "method", "checkpoint_id", "variation", "seed", "row", "col")
SOURCES: tuple[str, ...] = ("sim", "real")

_STR = ("task", "method", "checkpoint_id", "variation", "run_id", "source")
_OPT_STR = ("failure_reason", "video_path", "operator", "notes")
_INT64 = (-(2**63), 2**63)
_INT32 = (-(2**31), 2**31)


class TrialStoreError(Exception):
    """A trial row or a trial file that cannot be used.

    ``where``: ``trial row <i>`` (index in the batch) or a file path; ``field``: the
    column ("" for the whole row / file); ``expected`` / ``found``: short descriptions.
    """

    def __init__(self, where: str | os.PathLike, field: str, expected: str, found: str):
        self.where, self.field, self.expected, self.found = str(where), field, expected, found
        super().__init__(self.message)

    @property
    def message(self) -> str:
        loc = f"{self.where} [{self.field}]" if self.field else self.where
        return f"{loc}: expected {self.expected}, found {self.found}"

    def __reduce__(self):  # picklable across processes
        return (type(self), (self.where, self.field, self.expected, self.found))


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Trial:
    """One evaluation trial (a row of the store); ``run_id`` "" = filled in by ``write_trials``."""

    task: str
    method: str
    row: int
    col: int
    x: float
    y: float
    yaw: float
    seed: int
    success: bool
    checkpoint_id: str = ""
    variation: str = "none"
    steps: int | None = None
    duration_s: float | None = None
    failure_reason: str | None = None
    run_id: str = ""
    source: str = "sim"
    video_path: str | None = None
    recorded_at: datetime = field(default_factory=_utc_now)
    operator: str | None = None
    notes: str | None = None

    def to_row(self) -> dict[str, Any]:
        """The trial as a dict in ``TRIAL_COLUMNS`` order."""
        return {name: getattr(self, name) for name in TRIAL_COLUMNS}


def variation_names() -> tuple[str, ...]:
    """The simulator's robustness variations (``sim.variations.VARIATIONS``), imported lazily (MuJoCo)."""
    from robosteer_assets.sim.variations import VARIATIONS

    return tuple(VARIATIONS)


def new_run_id() -> str:
    """A fresh, sortable, safe run id: ``<UTC time>-<8 hex>``."""
    return f"{_utc_now():%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


def trial_key(row: Mapping[str, Any]) -> tuple:
    """The natural primary key of a trial row (``NATURAL_KEY`` order)."""
    return tuple(row[k] for k in NATURAL_KEY)


_REQUIRED = tuple(f.name for f in fields(Trial) if f.default is MISSING and f.default_factory is MISSING)


def _default(name: str) -> Any:
    f = next(f for f in fields(Trial) if f.name == name)
    return f.default_factory() if f.default_factory is not MISSING else f.default


def _safe(where: str, name: str, value: Any) -> str:
    """``value`` if it is a safe file-name component (``droid.layout.safe_task_name``), else a TrialStoreError."""
    try:
        return safe_task_name(value)
    except UnsafeTaskNameError:
        raise TrialStoreError(where, name, SAFE_TASK_RULE, repr(value)) from None


def _int(where: str, name: str, v: Any, lo: int, hi: int, what: str) -> int:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or not lo <= int(v) < hi:
        raise TrialStoreError(where, name, f"an integer in [{lo}, {hi}){what}", f"{type(v).__name__} {v!r}")
    return int(v)


def _float(where: str, name: str, v: Any, nonneg: bool = False) -> float:
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)) or (
        nonneg and float(v) < 0
    ):
        raise TrialStoreError(where, name, "a finite non-negative number" if nonneg else "a finite number",
                              f"{type(v).__name__} {v!r}")
    return float(v)


def _validate_row(i: int, trial: Trial | Mapping[str, Any], grid: GridConfig, variations: tuple[str, ...]) -> dict:
    where = f"trial row {i}"
    if isinstance(trial, Trial):
        raw = trial.to_row()
    elif isinstance(trial, Mapping):
        unknown = sorted(set(trial) - set(TRIAL_COLUMNS))
        if unknown:
            raise TrialStoreError(where, unknown[0], f"one of the trial columns {list(TRIAL_COLUMNS)}", "an unknown column")
        missing = [name for name in _REQUIRED if name not in trial]
        if missing:
            raise TrialStoreError(where, missing[0], "a value (required column)", "nothing (missing)")
        raw = {name: trial[name] if name in trial else _default(name) for name in TRIAL_COLUMNS}
    else:
        raise TrialStoreError(where, "", "a Trial or a mapping of trial columns", type(trial).__name__)

    out: dict[str, Any] = {}
    for name in _STR:
        if not isinstance(raw[name], str):
            raise TrialStoreError(where, name, "a string", f"{type(raw[name]).__name__} {raw[name]!r}")
        out[name] = raw[name]
    for name in ("task", "method") + (("run_id",) if out["run_id"] else ()):
        _safe(where, name, out[name])
    if out["variation"] not in variations:
        raise TrialStoreError(where, "variation", f"one of {list(variations)}", repr(out["variation"]))
    if out["source"] not in SOURCES:
        raise TrialStoreError(where, "source", f"one of {list(SOURCES)}", repr(out["source"]))
    out["row"] = _int(where, "row", raw["row"], 0, grid.rows, " (grid rows)")
    out["col"] = _int(where, "col", raw["col"], 0, grid.cols, " (grid columns)")
    for name in ("x", "y", "yaw"):
        out[name] = _float(where, name, raw[name])
    out["seed"] = _int(where, "seed", raw["seed"], *_INT64, "")
    if not isinstance(raw["success"], (bool, np.bool_)):
        raise TrialStoreError(where, "success", "a bool", f"{type(raw['success']).__name__} {raw['success']!r}")
    out["success"] = bool(raw["success"])
    out["steps"] = None if raw["steps"] is None else _int(where, "steps", raw["steps"], 0, _INT32[1], "")
    out["duration_s"] = None if raw["duration_s"] is None else _float(where, "duration_s", raw["duration_s"], True)
    for name in _OPT_STR:
        if raw[name] is not None and not isinstance(raw[name], str):
            raise TrialStoreError(where, name, "a string or None", f"{type(raw[name]).__name__} {raw[name]!r}")
        out[name] = raw[name]
    if out["success"] and out["failure_reason"]:
        raise TrialStoreError(where, "failure_reason", "no failure reason on a successful trial",
                              repr(out["failure_reason"]))
    t = raw["recorded_at"]
    if not isinstance(t, datetime) or t.tzinfo is None or t.utcoffset() is None:
        raise TrialStoreError(where, "recorded_at", "a timezone-aware datetime (stored as UTC)", repr(t))
    out["recorded_at"] = t.astimezone(timezone.utc)
    return {name: out[name] for name in TRIAL_COLUMNS}


def validate_trials(rows: Iterable[Trial | Mapping[str, Any]], grid: GridConfig = DEFAULT_GRID) -> list[dict[str, Any]]:
    """Check every row (types, grid cell, finite placement, source, safe task/method names) and
    return them as plain dicts in ``TRIAL_COLUMNS`` order (``recorded_at`` in UTC).

    Raises ``TrialStoreError`` naming the row index and the field.
    """
    variations = variation_names()
    return [_validate_row(i, r, grid, variations) for i, r in enumerate(rows)]


def _single(rows: list[dict], name: str, why: str) -> str:
    first = rows[0][name]
    for i, r in enumerate(rows):
        if r[name] != first:
            raise TrialStoreError(f"trial row {i}", name, f"{first!r} like row 0 ({why})", repr(r[name]))
    return first


def _resolve_run_id(rows: list[dict], run_id: str | None) -> str:
    given = {r["run_id"] for r in rows if r["run_id"]}
    if run_id is None:
        if len(given) > 1:
            raise TrialStoreError("write_trials", "run_id", "one run id per call (one file per run)",
                                  f"{sorted(given)}")
        run_id = given.pop() if given else new_run_id()
    _safe("write_trials", "run_id", run_id)
    for i, r in enumerate(rows):
        if r["run_id"] and r["run_id"] != run_id:
            raise TrialStoreError(f"trial row {i}", "run_id", f"'' or {run_id!r} (the run being written)",
                                  repr(r["run_id"]))
    return run_id


def trial_file(trials_root: str | os.PathLike, source: str, task: str, method: str, run_id: str) -> Path:
    """``<trials_root>/<task>/<method>/<source>-<run_id>.parquet`` (names checked for safety)."""
    for what, name in (("task", task), ("method", method), ("run_id", run_id)):
        _safe(str(trials_root), what, name)
    if source not in SOURCES:
        raise TrialStoreError(str(trials_root), "source", f"one of {list(SOURCES)}", repr(source))
    return Path(trials_root) / task / method / f"{source}-{run_id}.parquet"


def trials_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """Validated rows as a frame with exactly the ``TRIAL_COLUMNS`` schema."""
    return pl.DataFrame(rows, schema=TRIAL_COLUMNS) if rows else pl.DataFrame(schema=TRIAL_COLUMNS)


def write_trials(trials_root: str | os.PathLike, trials: Iterable[Trial | Mapping[str, Any]],
                 run_id: str | None = None, grid: GridConfig = DEFAULT_GRID) -> Path:
    """Write one run's trials of one task x method as one parquet file, atomically; return its path.

    ``run_id``: the run these trials belong to (default: the rows' common ``run_id``, else a new
    one). Writing the same run id again replaces that file (idempotent), so a run may rewrite its
    file as trials finish. Different runs never touch the same file and take no lock. Refuses
    rows of several tasks / methods / sources, and a natural key (``NATURAL_KEY``) twice.
    """
    rows = validate_trials(trials, grid)
    if not rows:
        raise TrialStoreError("write_trials", "trials", "at least one trial", "none")
    task = _single(rows, "task", "one file per task x method x run")
    method = _single(rows, "method", "one file per task x method x run")
    source = _single(rows, "source", "one file per source and run")
    seen: dict[tuple, int] = {}
    for i, r in enumerate(rows):
        k = trial_key(r)
        if k in seen:
            raise TrialStoreError(f"trial row {i}", "natural key",
                                  f"each {NATURAL_KEY} once per batch", f"a repeat of row {seen[k]}: {k}")
        seen[k] = i
    run_id = _resolve_run_id(rows, run_id)
    for r in rows:
        r["run_id"] = run_id
    path = trial_file(trials_root, source, task, method, run_id)
    frame = trials_frame(rows)
    with atomic_file(path) as f:
        frame.write_parquet(f)
    return path


def trial_files(trials_root: str | os.PathLike) -> list[Path]:
    """Every finished trial file below ``trials_root`` (``**/*.parquet``, sorted; ``.tmp-*`` leftovers
    of interrupted writes are skipped). A missing root has none."""
    root = Path(trials_root)
    if not root.exists():
        return []
    if not root.is_dir():
        raise TrialStoreError(root, "", "a trials directory", "a file")
    return sorted(p for p in root.rglob("*.parquet")
                  if p.is_file() and not any(part.startswith(TMP_PREFIX) for part in p.relative_to(root).parts))


def _read_file(path: Path) -> pl.DataFrame:
    # One open() and one read: the file may be replaced (a run rewriting its file) while it is read,
    # and a reader that opens the path twice (footer, then pages) could mix two versions.
    try:
        with open(path, "rb") as f:
            data = f.read()
        df = pl.read_parquet(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 - any reader failure means an unusable file
        raise TrialStoreError(path, "", "a readable trial parquet file", f"{type(e).__name__}: {e}") from None
    for name, dtype in TRIAL_COLUMNS.items():
        if name not in df.columns:
            raise TrialStoreError(path, name, f"a column of type {dtype}", "nothing (missing)")
        if df.schema[name] != dtype:
            raise TrialStoreError(path, name, f"a column of type {dtype}", f"type {df.schema[name]}")
    extra = [c for c in df.columns if c not in TRIAL_COLUMNS]
    if extra:
        raise TrialStoreError(path, extra[0], f"only the trial columns {list(TRIAL_COLUMNS)}", "an unknown column")
    return df.select(list(TRIAL_COLUMNS))


def dedupe_trials(frame: pl.DataFrame) -> pl.DataFrame:
    """One row per natural key: the latest ``recorded_at`` wins (ties: larger ``run_id``); sorted by key."""
    return (frame.sort(["recorded_at", "run_id"])
            .unique(subset=list(NATURAL_KEY), keep="last", maintain_order=True)
            .sort(list(NATURAL_KEY)))


def _read(files: list[Path]) -> pl.DataFrame:
    if not files:
        return pl.DataFrame(schema=TRIAL_COLUMNS)
    return dedupe_trials(pl.concat([_read_file(p) for p in files], how="vertical"))


def read_trials(trials_root: str | os.PathLike) -> pl.DataFrame:
    """Every trial in the store, one row per natural key (superseded re-runs dropped, see module doc).

    An empty frame with the ``TRIAL_COLUMNS`` schema when there are no trials. A file that is not
    a trial table raises ``TrialStoreError`` naming it.
    """
    return _read(trial_files(trials_root))


def existing_keys(trials_root: str | os.PathLike, task: str | None = None, method: str | None = None) -> set[tuple]:
    """Natural keys (``NATURAL_KEY`` tuples) already in the store; with ``task`` (and ``method``)
    only that folder is read."""
    root = Path(trials_root)
    if task is not None:
        root = root / _safe(str(trials_root), "task", task)
        if method is not None:
            root = root / _safe(str(trials_root), "method", method)
    frame = _read(trial_files(root))
    return set(frame.select(list(NATURAL_KEY)).iter_rows())
