"""Run the SQL in ``sql/`` over the trial store, in an in-memory DuckDB.

DuckDB only ever *reads* the parquet trial files (``evaluation.trials``): each
connection is in-memory, so no database file and no lock is shared between
processes, and a query runs while other runs write trials. ``sql/views.sql``
defines the ``trials`` view over a default glob (``'data/trials/**/*.parquet'``,
so the committed file works with the plain ``duckdb`` CLI from the repo root);
``connect`` puts the store's files in its place, quoted as SQL strings, or an
empty relation with the trial schema when the store has no files yet.

A run rewrites its file (temp + rename) as trials finish, and DuckDB opens a
parquet file more than once per query (schema at bind, pages at scan): a file
replaced in between fails the query (``TProtocolException: Invalid data``, seen
here in about 1 in 10 queries against a writer rewriting its file). So
``connect`` first takes a snapshot: a hard link to each file (a copy where links
are impossible) in a private temporary folder, removed when the connection is
garbage-collected (``query`` / ``run_sql_file`` remove it at once). The view reads
the snapshot: the files as they were at ``connect`` time; connect again to see
later trials. ``trial_files.filename`` is the snapshot path, which ends with the
store-relative ``<task>/<method>/<file>``.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
import weakref
from datetime import date, datetime
from pathlib import Path

import duckdb
import polars as pl

from robosteer_assets.evaluation.trials import trial_files, trials_frame

VIEWS_FILE = "views.sql"
DEFAULT_TRIALS_GLOB = "data/trials/**/*.parquet"
# the read_parquet(...) call over the default glob in views.sql (its options hold no parentheses)
_READ_CALL = re.compile(r"read_parquet\(\s*'" + re.escape(DEFAULT_TRIALS_GLOB) + r"'(?P<options>[^()]*)\)")
_EMPTY_RELATION = "_robosteer_no_trial_files"


class SqlError(Exception):
    """A SQL file that is missing or fails; ``where`` names the file (or ``<query>``)."""

    def __init__(self, where: str | os.PathLike, detail: str):
        self.where, self.detail = str(where), detail
        super().__init__(f"{self.where}: {detail}")

    def __reduce__(self):
        return (type(self), (self.where, self.detail))


def default_repo_root() -> Path:
    """The repository holding ``sql/`` (two levels above this package)."""
    return Path(__file__).resolve().parents[2]


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _read_sql(path: Path) -> str:
    if not path.is_file():
        raise SqlError(path, "expected a SQL file, found nothing")
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SqlError(path, f"expected a readable UTF-8 SQL file, found {type(e).__name__}: {e}") from None


def snapshot_files(trials_root: str | os.PathLike, into: str | os.PathLike) -> list[Path]:
    """Pin the store's current files: hard-link (else copy, in one read) each trial file into
    ``into`` under its store-relative path; a file replaced later keeps its pinned version."""
    root, into = Path(trials_root), Path(into)
    out = []
    for src in trial_files(root):
        dst = into / src.relative_to(root)
        dst.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(src, dst)
        except OSError:  # another file system, or links not allowed: one read, so one version
            with open(src, "rb") as f:
                data = f.read()
            dst.write_bytes(data)
        out.append(dst)
    return out


def views_sql(files: list[Path], repo_root: str | os.PathLike | None = None) -> str:
    """``sql/views.sql`` with ``files`` (or, when there are none, the empty relation) in place of
    the default glob."""
    path = Path(repo_root or default_repo_root()) / "sql" / VIEWS_FILE
    text = _read_sql(path)
    calls = list(_READ_CALL.finditer(text))
    if len(calls) != 1:
        raise SqlError(path, f"expected exactly one read_parquet('{DEFAULT_TRIALS_GLOB}', ...) call, "
                             f"found {len(calls)}")
    if files:
        listed = ", ".join(_sql_string(str(p.resolve())) for p in files)
        source = f"read_parquet([{listed}]{calls[0]['options']})"
    else:
        source = f"(SELECT *, CAST(NULL AS VARCHAR) AS filename FROM {_EMPTY_RELATION})"
    return text[: calls[0].start()] + source + text[calls[0].end():]


def _open(trials_root: str | os.PathLike,
          repo_root: str | os.PathLike | None) -> tuple[duckdb.DuckDBPyConnection, weakref.finalize]:
    """The connection and the finalizer that removes its snapshot (also run when it is collected)."""
    snapshot = tempfile.mkdtemp(prefix="robosteer-trials-")
    try:
        text = views_sql(snapshot_files(trials_root, snapshot), repo_root)
        con = duckdb.connect()
    except BaseException:
        shutil.rmtree(snapshot, ignore_errors=True)
        raise
    cleanup = weakref.finalize(con, shutil.rmtree, snapshot, True)
    try:
        con.register(_EMPTY_RELATION, trials_frame([]).to_arrow())
        con.execute(text)
    except duckdb.Error as e:
        con.close()
        cleanup()
        raise SqlError(Path(repo_root or default_repo_root()) / "sql" / VIEWS_FILE, f"SQL error: {e}") from None
    return con, cleanup


def connect(trials_root: str | os.PathLike, repo_root: str | os.PathLike | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with the ``trials`` (and ``trial_files``) views over a
    snapshot of the store (see the module doc)."""
    return _open(trials_root, repo_root)[0]


def query(sql_text: str, trials_root: str | os.PathLike, repo_root: str | os.PathLike | None = None,
          where: str | os.PathLike = "<query>") -> pl.DataFrame:
    """Run ``sql_text`` (one or more statements; the last one returns the rows) over the store."""
    con, cleanup = _open(trials_root, repo_root)
    try:
        try:
            relation = con.sql(sql_text)
            if relation is None:
                raise SqlError(where, "expected the last statement to return rows (a SELECT), found none")
            return relation.pl()
        except duckdb.Error as e:
            raise SqlError(where, f"SQL error: {e}") from None
    finally:
        con.close()
        cleanup()


def _cell(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        text = f"{v:.6g}"
        return text + ".0" if text.lstrip("-").isdigit() else text
    if isinstance(v, (datetime, date)):
        return v.isoformat()
    return str(v)


def format_table(frame: pl.DataFrame) -> str:
    """A frame as an aligned text table (numbers right-aligned) with a row count."""
    cols = frame.columns
    cells = [[_cell(v) for v in row] for row in frame.iter_rows()]
    numeric = [frame.schema[c].is_numeric() for c in cols]
    widths = [max([len(c)] + [len(r[j]) for r in cells]) for j, c in enumerate(cols)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)).rstrip()

    out = [line(cols), "  ".join("-" * w for w in widths)] + [line(r) for r in cells]
    out.append(f"({frame.height} row{'' if frame.height == 1 else 's'})")
    return "\n".join(out)


def run_sql_file(path: str | os.PathLike, trials_root: str | os.PathLike,
                 repo_root: str | os.PathLike | None = None) -> str:
    """Run a SQL file over the store and return its result as a readable aligned text table."""
    path = Path(path)
    return format_table(query(_read_sql(path), trials_root, repo_root, where=path))
