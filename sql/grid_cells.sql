-- Success per grid cell (5 x 8 heatmaps of where on the table a method fails), per source, task,
-- method and variation: trials in the cell (one per seed / checkpoint evaluated), success_rate
-- (0-1). Superseded re-runs are not counted.
-- Run: robosteer sql sql/grid_cells.sql
--   or, from the repo root: cat sql/views.sql sql/grid_cells.sql | duckdb
SELECT source, task, method, variation, "row", col,
       count(*)                                AS trials,
       count(*) FILTER (WHERE success)         AS successes,
       avg(CAST(success AS INTEGER))           AS success_rate
FROM trials
GROUP BY source, task, method, variation, "row", col
ORDER BY source, task, method, variation, "row", col;
