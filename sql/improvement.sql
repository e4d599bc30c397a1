-- Each method's success rate minus the zero-shot policy's (method 'zero_shot') per task x
-- variation, per source, in percentage points (improvement_pp, from the unrounded rates, 1
-- decimal). success_pct / zero_shot_pct are the two rates (0-100, 1 decimal). A method whose
-- task x variation has no zero-shot trials keeps its row with NULL zero_shot_pct / improvement_pp.
-- Run: robosteer sql sql/improvement.sql
--   or, from the repo root: cat sql/views.sql sql/improvement.sql | duckdb
WITH rates AS (
    SELECT source, task, method, variation, avg(CAST(success AS INTEGER)) AS rate
    FROM trials
    GROUP BY source, task, method, variation
)
SELECT m.source, m.task, m.variation, m.method,
       round(100.0 * m.rate, 1)              AS success_pct,
       round(100.0 * z.rate, 1)              AS zero_shot_pct,
       round(100.0 * (m.rate - z.rate), 1)   AS improvement_pp
FROM rates AS m
LEFT JOIN rates AS z
  ON z.method = 'zero_shot' AND z.source = m.source AND z.task = m.task AND z.variation = m.variation
WHERE m.method <> 'zero_shot'
ORDER BY m.source, m.task, m.variation, m.method;
