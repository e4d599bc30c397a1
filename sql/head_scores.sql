-- The 20 best-scoring heads of every task at each task's best k (lowest mean k-NN MSE over heads),
-- from the head_scores parquet tables (layer, head, k, mse, task).
WITH s AS (
    SELECT * FROM read_parquet('data/steering/*/head_scores.parquet', union_by_name = true)
), best_k AS (
    SELECT task, arg_min(k, mean_mse) AS k
    FROM (SELECT task, k, avg(mse) AS mean_mse FROM s GROUP BY task, k)
    GROUP BY task
)
SELECT s.task, s.k, s.layer, s.head, round(s.mse, 5) AS mse,
       row_number() OVER (PARTITION BY s.task ORDER BY s.mse, s.layer, s.head) AS rank
FROM s JOIN best_k USING (task, k)
QUALIFY rank <= 20
ORDER BY s.task, rank;
