-- Episodes of every task, valid and quarantined, from the ingest manifests.
-- Run from the repo root (paths are relative to it), e.g.
--   .venv/bin/python -c "import duckdb; print(duckdb.sql(open('sql/episodes.sql').read()))"
SELECT task,
       count(*) FILTER (WHERE status = 'ok')          AS valid,
       count(*) FILTER (WHERE status = 'quarantined') AS quarantined,
       sum(length) FILTER (WHERE status = 'ok')       AS steps,
       string_agg(reason, '; ') FILTER (WHERE status = 'quarantined') AS reasons
FROM read_parquet('data/store/*/manifest.parquet', union_by_name = true)
GROUP BY task
ORDER BY task;
