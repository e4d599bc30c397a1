"""Group `ingest`: demonstrations (DROID raw episodes, or a LeRobot dataset as the demos
root) -> per-task episode store -> keyframes."""


import dagster as dg

from robosteer_assets.common.images import RESIZE_METHOD
from robosteer_assets.defs.config import IngestConfig, KeyframesConfig
from robosteer_assets.defs.demos import TASK_DEMOS
from robosteer_assets.defs.metadata import md_image, path, table
from robosteer_assets.defs.partitions import task_partitions
from robosteer_assets.defs.resources import ProjectPaths
from robosteer_assets.droid import keyframe_table
from robosteer_assets.droid.keyframe_table import keyframe_task
from robosteer_assets.droid.errors import DatasetError, TooFewEpisodesError, UnsafeTaskNameError
from robosteer_assets.droid.lerobot import ingest_lerobot_task, is_lerobot_root
from robosteer_assets.droid.keyframes import plot_keyframes
from robosteer_assets.droid.scan import task_fingerprint
from robosteer_assets.droid.store import EpisodeStore, ingest_task, thumbnail_strip

ENOUGH_EPISODES = "enough_valid_episodes"
# The store's format: a store written with another image resize is stale (droid.store), so
# Dagster sees materialisations recorded under another code version as stale too.
RAW_EPISODES_CODE_VERSION = f"image_resize={RESIZE_METHOD}"


@dg.asset(
    group_name="ingest",
    partitions_def=task_partitions,
    deps=[TASK_DEMOS],
    code_version=RAW_EPISODES_CODE_VERSION,
    check_specs=[dg.AssetCheckSpec(ENOUGH_EPISODES, asset="raw_episodes", blocking=True,
                                   description="at least min_episodes valid episodes (paper: 20)")],
    description="Decode + validate the task's DROID episodes (or the task's episodes of a LeRobot dataset at the "
    "demos root) into a zarr store (images [N,2,S,S,3], state, "
    "actions) and a manifest (parquet, DuckDB view `episodes`); invalid episodes are quarantined.",
    kinds={"zarr", "parquet"},
)
def raw_episodes(context: dg.AssetExecutionContext, config: IngestConfig, paths: ProjectPaths):
    task = context.partition_key
    lerobot = is_lerobot_root(paths.demos())
    try:
        task_dir = paths.task_demos(task)
    except UnsafeTaskNameError as e:
        raise dg.Failure(f"partition key {task!r} is not a safe task name, refusing to use it as a path: {e}")
    if not lerobot and not task_dir.is_dir():
        raise dg.Failure(f"task {task!r}: no demos folder at {task_dir} (demos root {paths.demos()})")
    spec = config.to_spec()
    fingerprint = task_fingerprint(paths.demos(), task)
    try:
        if lerobot:
            result = ingest_lerobot_task(paths.demos(), task, paths.store(task), spec)
        else:
            result = ingest_task(task_dir, paths.store(task), spec)
    except DatasetError as e:
        raise dg.Failure(f"task {task!r}: the LeRobot dataset at {paths.demos()} cannot be read: {e}")
    except TooFewEpisodesError as e:
        # Nothing written; the previous store (if any) is kept. Report the quarantine and fail loudly.
        context.log.error(str(e))
        raise dg.Failure(str(e), metadata={"quarantined": table(
            [{"episode": k, "reason": v} for k, v in (e.quarantined or {}).items()], ["episode", "reason"])})
    for ep, reason in result.quarantined.items():
        context.log.warning(f"quarantined {ep}: {reason}")
    store = EpisodeStore.open(result.store_path)
    yield dg.MaterializeResult(
        metadata={
            "episodes": result.num_episodes,
            "quarantined": result.num_quarantined,
            "steps": result.num_steps,
            "ingest_s": round(result.wall_s, 2),
            "demos_fingerprint": fingerprint,
            "store": path(result.store_path),
            "manifest": path(result.manifest_path),
            "quarantine": table([{"episode": k, "reason": v} for k, v in result.quarantined.items()],
                                ["episode", "reason"]),
            "lengths": table([{"uuid": k, "steps": v} for k, v in result.lengths.items()], ["uuid", "steps"]),
            "thumbnails": md_image(thumbnail_strip(store), "first frames (exterior, wrist)"),
        }
    )
    yield dg.AssetCheckResult(
        check_name=ENOUGH_EPISODES,
        passed=result.num_episodes >= spec.min_episodes,
        metadata={"valid": result.num_episodes, "required": spec.min_episodes},
    )


@dg.asset(
    group_name="ingest",
    partitions_def=task_partitions,
    deps=[raw_episodes],
    description="Keyframe steps of every episode (RoboPrompt rule on gripper changes and stops, last step).",
    kinds={"parquet"},
)
def keyframes(context: dg.AssetExecutionContext, config: KeyframesConfig, paths: ProjectPaths):
    task = context.partition_key
    spec = config.to_spec()
    out = paths.store(task) / keyframe_table.KEYFRAMES_NAME
    df, store = keyframe_task(spec, store=str(paths.store(task) / "episodes.zarr"), out=str(out))
    per_ep = df.group_by("episode_index").len().sort("episode_index")["len"].to_list()
    ep0 = store.episode(0)
    ks0 = df.filter(df["episode_index"] == 0)["step"].to_numpy()
    plot = plot_keyframes(ep0.joint_velocities, ks0, gripper=ep0.gripper, cfg=spec,
                          title=f"{task} episode 0: joint speeds and keyframes", control_hz=store.control_hz)
    return dg.MaterializeResult(
        metadata={
            "keyframes": df.height,
            "timesteps": store.num_steps,
            "keyframes_per_episode_mean": round(sum(per_ep) / max(1, len(per_ep)), 2),
            "keyframes_per_episode": table([{"episode": i, "keyframes": n} for i, n in enumerate(per_ep)]),
            "path": path(out),
            "episode0": md_image(plot, "joint speeds with keyframes"),
        }
    )
