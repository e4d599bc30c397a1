"""DROID episodes: raw-layout writer/reader, validation and quarantine, image
letterbox resize, rate resampling, keyframes, the per-task episode store (zarr) and
``robosteer validate``. No dagster here (see docs/ARCHITECTURE.md, DROID section).

Modules: ``episode`` (EpisodeRecording / Episode), ``errors``, ``layout`` (paths,
safe task names), ``writer``, ``reader`` (ReadConfig, read_episode,
validate_episode), ``keyframes``, ``store`` (ingest_task, EpisodeStore),
``synthetic`` (test episodes), ``cli``.
"""
