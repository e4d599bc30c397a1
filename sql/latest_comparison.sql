-- The method comparison of the *latest* evaluation of each task x method x variation (what
-- `robosteer run` prints and the eval_summary asset shows): per source (sim / real robot), the
-- evaluation (checkpoint_id, seed) whose newest trial is the most recent (ties: the larger
-- run_id), so trials of a checkpoint that was since retrained are not pooled with the new one
-- (method_comparison.sql pools every checkpoint of a method).
-- Columns: source, task, method, variation, checkpoint_id, seed, trials, successes,
-- success_pct (0-100, 1 decimal), complete (a trial in every one of the grid_num_cells() = 40 cells).
-- Run: robosteer sql sql/latest_comparison.sql
--   or, from the repo root: cat sql/views.sql sql/latest_comparison.sql | duckdb
WITH evaluations AS (
    SELECT source, task, method, variation, checkpoint_id, seed,
           count(*)                                        AS trials,
           count(*) FILTER (WHERE success)                 AS successes,
           round(100.0 * avg(CAST(success AS INTEGER)), 1) AS success_pct,
           count(*) = grid_num_cells()                     AS complete,
           max(recorded_at)                                AS last_trial,
           max(run_id)                                     AS last_run
    FROM trials
    GROUP BY source, task, method, variation, checkpoint_id, seed
)
SELECT source, task, method, variation, checkpoint_id, seed, trials, successes, success_pct, complete
FROM evaluations
QUALIFY row_number() OVER (PARTITION BY source, task, method, variation
                           ORDER BY last_trial DESC, last_run DESC) = 1
ORDER BY source, task, variation,
         CASE method WHEN 'zero_shot' THEN 0 WHEN 'full_lora' THEN 1 WHEN 'steering' THEN 2 ELSE 3 END, method;
