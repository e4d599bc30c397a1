"""Evaluation: policy server and client, sim evaluator, real-robot trial sheets, trial store and SQL over trials."""
