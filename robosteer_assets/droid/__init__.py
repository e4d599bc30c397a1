"""DROID episodes: raw-layout writer/reader, LeRobot datasets (v2.1 / v3.0) as
another source of the same episodes, validation and quarantine, image letterbox
resize, rate resampling, keyframes, the per-task episode store (zarr) and
``robosteer validate``. No dagster here (see docs/ARCHITECTURE.md, DROID section).

Modules: ``episode`` (EpisodeRecording / Episode), ``errors``, ``layout`` (paths,
safe task names, task slugs), ``writer``, ``reader`` (ReadConfig, read_episode,
validate_episode), ``lerobot`` (open_dataset, read_lerobot_episode,
ingest_lerobot_task), ``feature_map`` (FeatureMapping and its presets),
``lerobot_writer`` (LeRobot v2.1 export), ``keyframes``, ``store`` (ingest_task,
ingest_episodes, EpisodeStore), ``scan`` (the sensor's cheap scan),
``synthetic`` (test episodes), ``cli``.
"""
