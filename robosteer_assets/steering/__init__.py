"""Step 1 of Robotic Steering: per-head activations, k-NN head scores, head
selection and the paper's ablation selectors. No dagster here."""
