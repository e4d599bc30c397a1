"""Group `ingest`: raw DROID-format episodes -> per-task episode store -> keyframes."""
