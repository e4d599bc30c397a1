"""The embedded default: what stands in for a robot and for pi0-DROID on a machine
with neither (simulated demos, a tiny base policy trained on a broad simulated
corpus). Domain code; no dagster."""
