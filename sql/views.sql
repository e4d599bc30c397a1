-- The `trials` view: every evaluation trial (sim and real robot) in the parquet trial store
-- (robosteer_assets/evaluation/trials.py), one row per natural key
-- (source, task, method, checkpoint_id, variation, seed, row, col). When a key was recorded more
-- than once (a re-run of the same trials) the latest recorded_at wins (ties: the larger run_id),
-- exactly like trials.read_trials, so a re-run supersedes the old trials instead of counting twice.
-- `trial_files` keeps every row of every file (superseded ones too) with its file name.
--
-- robosteer (`robosteer sql FILE.sql`, evaluation.sqlrun) runs this file in an in-memory DuckDB
-- with the store's files put in place of the default glob below (and an empty, typed view when
-- there are none yet). With the plain duckdb CLI, from the repo root (the glob is relative to the
-- current directory; it fails with "No files found" until a trial has been written):
--   cat sql/views.sql sql/method_comparison.sql | duckdb
--   duckdb -cmd ".read sql/views.sql" -c ".read sql/method_comparison.sql"
-- Files (or folders) named .tmp-* are leftovers of interrupted writes and are never read.
-- A run rewrites its file as trials finish; DuckDB opens a file more than once per query, so a
-- plain duckdb query that meets a file being replaced can fail ("TProtocolException: Invalid
-- data"): run it again. robosteer sql never does: it queries a snapshot (hard links) of the files.

-- Cells of the evaluation grid (sim/grid.py GridConfig: 5 rows x 8 columns).
CREATE OR REPLACE MACRO grid_num_cells() AS 40;

CREATE OR REPLACE VIEW trial_files AS
SELECT *
FROM read_parquet('data/trials/**/*.parquet', filename = true, union_by_name = true)
WHERE NOT regexp_matches(filename, '(^|/)\.tmp-');

CREATE OR REPLACE VIEW trials AS
SELECT * EXCLUDE (filename)
FROM trial_files
QUALIFY row_number() OVER (
    PARTITION BY source, task, method, checkpoint_id, variation, seed, "row", col
    ORDER BY recorded_at DESC, run_id DESC
) = 1;
