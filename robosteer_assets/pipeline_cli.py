"""`robosteer run`: the main job on the embedded default.

On a fresh clone this generates simulated demonstrations of one task, trains the
tiny base policy, and materialises the whole asset graph for that task (raw
episodes -> keyframes -> activations -> head scores -> selected heads ->
steering / full-head LoRA checkpoints -> evaluations of zero-shot / full-head
LoRA / steering -> summary) into the repo's ``dagster_home``, then prints the
method comparison from DuckDB and how to open the UI on the result.

Runs are recorded in the Dagster instance, so the UI shows them afterwards. A
second run with nothing new does no work: an asset is (re)materialised only when
it is missing for the task, when a parent was materialised after it, or (for
``raw_episodes``) when the task's demos changed since it was last ingested.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("robosteer.run")

ROOT = Path(__file__).resolve().parents[1]

# Stage 1 produces the inputs (demos on disk, base checkpoint); stage 2 is the task chain (one
# partition); stage 3 the summary over every task (unpartitioned).
STAGE1 = ("sim_demos", "base_policy")
STAGE3 = ("eval_summary",)

# CPU-sized overrides of the paper's defaults for the embedded default (everything
# else keeps the paper's values: 20 demos, m = 20 heads, k in {10,20,30,40}, rank 8, 40 trials).
EMBEDDED_RUN_CONFIG = {
    "sim_demos": {"episodes": 20},
    "base_policy": {"episodes_per_task": 6, "steps": 400, "batch_size": 8},
    "raw_episodes": {"min_episodes": 20},
    # simulated demos end a few steps after success (~20-40 steps at 6 Hz), so their keyframes are too few
    # for k up to 40 neighbours from other episodes; use every timestep (the paper: "functionally identical")
    "head_activations": {"timesteps": "all"},
    "steering_checkpoint": {"steps": 300, "batch_size": 8, "warmup_steps": 30, "decay_steps": 300,
                            "peak_lr": 1e-3, "decay_lr": 1e-4, "save_interval": 100, "log_interval": 25},
    "full_lora_checkpoint": {"steps": 300, "batch_size": 8, "warmup_steps": 30, "decay_steps": 300,
                             "peak_lr": 1e-3, "decay_lr": 1e-4, "save_interval": 100, "log_interval": 25},
    # the 40-cell grid for each method; two processes share the 2 cores (rendering + physics + inference)
    **{f"eval_trials__{m}": {"workers": 2} for m in ("zero_shot", "full_lora", "steering")},
}


def _setup_env() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    shared = ROOT.parent / "shared" / "menagerie"
    if "MENAGERIE_ROOT" not in os.environ and shared.is_dir():
        os.environ["MENAGERIE_ROOT"] = str(shared)
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ROBOSTEER_JAX_CACHE", str(ROOT / ".cache" / "jax"))


def _latest_ts(instance, key, partition: str | None) -> float | None:
    import dagster as dg

    flt = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None)
    res = instance.fetch_materializations(flt, limit=1)
    return res.records[0].timestamp if res.records else None


def _latest_metadata(instance, key, partition: str | None, name: str):
    import dagster as dg

    flt = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None)
    res = instance.fetch_materializations(flt, limit=1)
    if not res.records:
        return None
    v = res.records[0].asset_materialization.metadata.get(name)
    return getattr(v, "value", v)


def _config_hash(cfg: dict | None) -> str:
    import hashlib
    import json

    return hashlib.sha1(json.dumps(cfg or {}, sort_keys=True).encode()).hexdigest()[:12]


def _latest_config_hash(instance, key, partition: str | None) -> str | None:
    import dagster as dg

    flt = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition] if partition else None)
    res = instance.fetch_materializations(flt, limit=1)
    if not res.records:
        return None
    run = instance.get_run_by_id(res.records[0].run_id)
    return run.tags.get(f"robosteer/config/{key.to_user_string().replace('/', '__')}") if run else None


def plan(defs, instance, task: str, force: bool = False, overrides: dict | None = None) -> list:
    """Asset keys (topological order) that need work for ``task``: missing, older than a parent,
    materialised with another run config than now, or (raw_episodes) demos changed since."""
    import dagster as dg

    from robosteer_assets.defs.resources import ProjectPaths
    from robosteer_assets.droid.scan import task_fingerprint

    graph = defs.get_repository_def().asset_graph
    keys = list(graph.toposorted_asset_keys)
    all_keys = set(keys)
    stale: set = set()
    for key in keys:
        node = graph.get(key)
        part = task if node.is_partitioned else None
        if force:
            stale.add(key)
            continue
        ts = _latest_ts(instance, key, part)
        parents = [p for p in node.parent_keys if p in all_keys]
        if ts is None or any(p in stale for p in parents):
            stale.add(key)
            continue
        for p in parents:
            pnode = graph.get(p)
            pts = _latest_ts(instance, p, task if pnode.is_partitioned else None)
            if pts is not None and pts > ts:
                stale.add(key)
                break
        name = key.to_user_string().replace("/", "__")
        if overrides is not None and _latest_config_hash(instance, key, part) != _config_hash(overrides.get(name)):
            stale.add(key)
            continue
        if key == dg.AssetKey("raw_episodes"):
            paths = ProjectPaths(data_root=os.environ.get("ROBOSTEER_DATA_ROOT", "data"),
                                 demos_root=os.environ.get("ROBOSTEER_DEMOS_ROOT", ""))
            fp = task_fingerprint(paths.demos(), task)
            if _latest_metadata(instance, key, task, "demos_fingerprint") != fp:
                stale.add(key)
    # only assets for this task (partitioned) or global ones (unpartitioned)
    return [k for k in keys if k in stale]


def _run_config(selected_names: set[str], overrides: dict) -> dict:
    ops = {name: {"config": cfg} for name, cfg in overrides.items() if name in selected_names}
    return {"ops": ops} if ops else {}


def _use_demos_root(demos_root: Path, task: str) -> tuple[str, tuple[str, ...]]:
    """Point the run at the user's demos (a DROID demos root or a LeRobot dataset): returns
    the task's partition key (a LeRobot task string becomes its slug) and the assets to
    leave out: ``sim_demos`` (nothing is simulated), and the sim evaluation and its
    summary unless the task is a simulated one (the 40-cell grid exists only there)."""
    from robosteer_assets.droid.lerobot import episodes_of_task, is_lerobot_root, open_dataset
    from robosteer_assets.droid.layout import task_slug
    from robosteer_assets.sim.tasks import TASKS

    os.environ["ROBOSTEER_DEMOS_ROOT"] = str(demos_root.resolve())
    if is_lerobot_root(demos_root):
        task = task_slug(episodes_of_task(open_dataset(demos_root), task)[0].tasks[0])
    skip = ("sim_demos",) if task in TASKS else ("sim_demos", "eval_trials", "eval_summary")
    return task, skip


def run(task: str, force: bool = False, demos: int = 20, demos_root: Path | None = None) -> int:
    _setup_env()
    skip: tuple[str, ...] = ()
    if demos_root is not None:
        task, skip = _use_demos_root(demos_root, task)
        log.info("demos root %s, task %s; not run: %s", demos_root, task, ", ".join(skip))
    import dagster as dg

    from robosteer_assets.common.jaxsetup import configure_jax
    from robosteer_assets.definitions import defs

    configure_jax()
    t_start = time.monotonic()
    instance = dg.DagsterInstance.get()
    if task not in instance.get_dynamic_partitions("task"):
        instance.add_dynamic_partitions("task", [task])
    repo = defs.get_repository_def()
    graph = repo.asset_graph
    all_assets = list(repo.assets_defs_by_key.values())
    overrides = {k: dict(v) for k, v in EMBEDDED_RUN_CONFIG.items()}
    overrides.setdefault("sim_demos", {})["episodes"] = demos
    overrides.setdefault("raw_episodes", {})["min_episodes"] = demos
    overrides["base_policy"]["held_out_tasks"] = [task]  # the base policy never sees the target task

    timings = []
    for stage, names in (("inputs", STAGE1), ("task chain", None), ("report", STAGE3)):
        todo = plan(defs, instance, task, force=force, overrides=overrides)
        todo = [k for k in todo if k.to_user_string().split("/")[0] not in skip]
        if names is not None:
            todo = [k for k in todo if k.to_user_string() in names]
        else:
            todo = [k for k in todo if k.to_user_string() not in STAGE1 + STAGE3]
        if not todo:
            log.info("stage %s: nothing to do (everything up to date for task %r)", stage, task)
            continue
        log.info("stage %s: materialising %s", stage, ", ".join(k.to_user_string() for k in todo))
        t0 = time.monotonic()
        selected = {k.to_user_string().split("/")[0] for k in todo} | {k.to_user_string().replace("/", "__") for k in todo}
        partitioned = any(graph.get(k).is_partitioned for k in todo)
        result = dg.materialize(
            all_assets,
            selection=todo,
            partition_key=task if partitioned else None,
            instance=instance,
            run_config=_run_config(selected, overrides),
            raise_on_error=False,
            tags={"robosteer/entry": "robosteer run",
                  **{f"robosteer/config/{k.to_user_string().replace('/', '__')}":
                     _config_hash(overrides.get(k.to_user_string().replace("/", "__"))) for k in todo}},
        )
        timings.append((stage, time.monotonic() - t0))
        if not result.success:
            log.error("stage %s failed (run %s); open the UI for the step logs", stage, result.run_id)
            return 1
    total = time.monotonic() - t_start
    for stage, s in timings:
        print(f"stage {stage:<12} {s:8.1f} s")
    print(f"total        {total:8.1f} s")
    if "eval_summary" in skip:
        print(f"\nNo sim evaluation: {task!r} is not a simulated task (the 40-cell grid exists only in the simulator); "
              f"the checkpoints are under {Path(os.environ.get('ROBOSTEER_DATA_ROOT', 'data')) / 'checkpoints' / task}.")
    else:
        _print_comparison()
    print(
        "\nOpen the UI on these results:\n"
        f"  DAGSTER_HOME={os.environ['DAGSTER_HOME']} .venv/bin/dagster dev -w workspace.yaml\n"
        "  then browse http://127.0.0.1:3000 (Lineage, Catalog, Runs)."
    )
    return 0


def _print_comparison() -> None:
    """The method comparison from DuckDB (sql/latest_comparison.sql over the trial store)."""
    from robosteer_assets.evaluation.sqlrun import run_sql_file

    data_root = Path(os.environ.get("ROBOSTEER_DATA_ROOT", "data")).resolve()
    print("\nMethod comparison, latest evaluation of each method (success over the 40 grid placements):")
    print(run_sql_file(ROOT / "sql" / "latest_comparison.sql", trials_root=data_root / "trials"))
    print(f"(all trials: .venv/bin/robosteer sql sql/method_comparison.sql; database: {data_root / 'robosteer.duckdb'})")


def register(subparsers) -> None:
    p = subparsers.add_parser("run", help="materialise the whole graph for one task on the embedded default")
    p.add_argument("--task", default="pick_cube", help="simulated task (partition key), default pick_cube")
    p.add_argument("--demos", type=int, default=20, help="simulated demonstrations (paper: 20)")
    p.add_argument("--force", action="store_true", help="re-materialise everything")
    p.add_argument("--demos-root", type=Path, default=None,
                   help="steer on these demos instead of simulated ones: a DROID demos root (one folder per task) "
                   "or a LeRobot dataset root (meta/info.json; --task is a task string or its slug); "
                   "--demos is then the minimum number of valid episodes")
    p.set_defaults(handler=lambda a: run(a.task, force=a.force, demos=a.demos, demos_root=a.demos_root))
