-- The paper's final measure (method.md, "Evaluation protocol"): per method and variation, the
-- success rate over the 40 placements of each object (task), averaged over objects; per source
-- (sim / real robot, never pooled).
-- Only complete evaluations count: an evaluation is one (source, task, method, checkpoint_id,
-- variation, seed) and it is complete when it has a trial in every one of the grid_num_cells()
-- = 40 cells (one row per cell after the `trials` view's dedup). A task's rate is the mean over
-- its complete evaluations (several seeds / checkpoints of one method are averaged), and every
-- object weighs the same in the final average however many evaluations it has. Incomplete
-- evaluations (e.g. a run still going) are left out and counted in incomplete_evaluations; a
-- method with none complete shows tasks = 0 and a NULL success_pct.
-- Columns: source, method, variation, tasks (objects averaged), evaluations (complete ones),
-- trials (in them), success_pct (0-100, 1 decimal), incomplete_evaluations.
-- Run: robosteer sql sql/final_measure.sql
--   or, from the repo root: cat sql/views.sql sql/final_measure.sql | duckdb
WITH evaluations AS (
    SELECT source, task, method, checkpoint_id, variation, seed,
           count(*)                       AS n,
           avg(CAST(success AS INTEGER))  AS rate,
           count(*) = grid_num_cells()    AS complete
    FROM trials
    GROUP BY source, task, method, checkpoint_id, variation, seed
), per_task AS (
    SELECT source, task, method, variation,
           count(*) FILTER (WHERE complete)      AS complete_evals,
           count(*) FILTER (WHERE NOT complete)  AS incomplete_evals,
           sum(n) FILTER (WHERE complete)        AS complete_trials,
           avg(rate) FILTER (WHERE complete)     AS task_rate
    FROM evaluations
    GROUP BY source, task, method, variation
)
SELECT source, method, variation,
       count(task_rate)                        AS tasks,
       sum(complete_evals)                     AS evaluations,
       coalesce(sum(complete_trials), 0)       AS trials,
       round(100.0 * avg(task_rate), 1)        AS success_pct,
       sum(incomplete_evals)                   AS incomplete_evaluations
FROM per_task
GROUP BY source, method, variation
ORDER BY source, variation, method;
