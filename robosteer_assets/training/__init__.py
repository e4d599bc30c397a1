"""Step 2 of Robotic Steering: selective finetuning (steering) and the full-head LoRA
baseline. No dagster here."""
