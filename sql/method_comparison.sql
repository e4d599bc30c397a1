-- Success rate per task x method x variation (the shape of the paper's Tables 1 and 2), per
-- source (sim / real robot, never pooled): trials, successes, success_pct (0-100, 1 decimal).
-- Checkpoints of one method are pooled; add checkpoint_id to the GROUP BY to compare them.
-- Superseded re-runs are not counted (the `trials` view keeps one row per natural key).
-- Run: robosteer sql sql/method_comparison.sql
--   or, from the repo root: cat sql/views.sql sql/method_comparison.sql | duckdb
SELECT source, task, method, variation,
       count(*)                                        AS trials,
       count(*) FILTER (WHERE success)                 AS successes,
       round(100.0 * avg(CAST(success AS INTEGER)), 1) AS success_pct
FROM trials
GROUP BY source, task, method, variation
ORDER BY source, task, variation, method;
