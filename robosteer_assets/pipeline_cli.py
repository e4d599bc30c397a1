"""`robosteer run`: the main job on the embedded default.

On a fresh clone this generates simulated demonstrations of one task, installs the
shipped tiny base policy (``models/pi0_tiny_sim_base``), and materialises the whole asset graph for that task (raw
episodes -> keyframes -> activations -> head scores -> selected heads ->
steering / full-head LoRA checkpoints -> evaluations of zero-shot / full-head
LoRA / steering -> summary) into the repo's ``dagster_home``, then prints the
method comparison from DuckDB and how to open the UI on the result.

Runs are recorded in the Dagster instance, so the UI shows them afterwards. A
second run with nothing new does no work: Dagster decides what is due from code and
data versions (:func:`plan`). Each asset's code version includes a hash of the run
config passed here, the task's demos are an observed source (``task_demos``, data
version = their fingerprint), and an asset is (re)materialised when it is missing
for the task, stale in Dagster's sense (new code version or a dependency with a new
data version), or downstream of one that is.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from robosteer_assets.embedded.base_policy import EMBEDDED_EVAL_NOISE_SCALE

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
    # the store at pi0_tiny's input size (112 px): the same letterbox resize as serving, done once at ingest
    "raw_episodes": {"min_episodes": 20, "read": {"image_size": 112}},
    # simulated demos end a few steps after success (~20-40 steps at 6 Hz), so their keyframes are too few
    # for k up to 40 neighbours from other episodes; use every timestep (the paper: "functionally identical")
    "head_activations": {"timesteps": "all"},
    **{f"{m}_checkpoint": {"steps": 600, "batch_size": 32, "save_interval": 200, "log_interval": 50,
                           "schedule": {"warmup_steps": 50, "peak_lr": 5e-4, "decay_steps": 600, "decay_lr": 5e-5}}
       for m in ("steering", "full_lora")},
    # the 40-cell grid for each method; two processes share the 2 cores (rendering + physics + inference);
    # the flow integrated from its mean noise (embedded.base_policy.EMBEDDED_EVAL_NOISE_SCALE)
    **{f"eval_trials__{m}": {"workers": 2, "noise_scale": EMBEDDED_EVAL_NOISE_SCALE}
       for m in ("zero_shot", "full_lora", "steering")},
}


def _setup_env() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    shared = ROOT.parent / "shared" / "menagerie"
    if "MENAGERIE_ROOT" not in os.environ and shared.is_dir():
        os.environ["MENAGERIE_ROOT"] = str(shared)
    home = Path(os.environ.setdefault("DAGSTER_HOME", str(ROOT / "dagster_home")))
    home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("ROBOSTEER_JAX_CACHE", str(ROOT / ".cache" / "jax"))


def _demos_fingerprint(paths, task: str) -> str:
    """The fingerprint of the task's demos as they are now (``droid.scan``, no settling)."""
    from robosteer_assets.droid.scan import task_fingerprint

    return task_fingerprint(paths.demos(), task)


def _config_hash(cfg: dict | None) -> str:
    import hashlib
    import json

    return hashlib.sha1(json.dumps(cfg or {}, sort_keys=True).encode()).hexdigest()[:12]


def with_config_versions(defs, overrides: dict):
    """``defs``' assets with each code version extended by a hash of the run config `robosteer run`
    passes that asset (``overrides``, keyed by op name), as a ``Definitions``: Dagster then sees a
    changed config like changed code and reports the asset stale."""
    import dagster as dg

    def versioned(spec):
        h = _config_hash(overrides.get(spec.key.to_user_string().replace("/", "__")))
        return spec.replace_attributes(
            code_version=f"{spec.code_version}+config-{h}" if spec.code_version else f"config-{h}")

    assets = list(defs.get_repository_def().assets_defs_by_key.values())
    return dg.Definitions(assets=dg.map_asset_specs(versioned, assets))


def plan(defs, instance, task: str, paths, force: bool = False) -> list:
    """Asset keys (topological order) to materialise for ``task``: those Dagster reports missing or
    stale for the task's partition (unpartitioned assets: for the asset), and everything downstream
    of them. Stale is Dagster's data-version rule: a new code version (other code, or other run config
    through :func:`with_config_versions`) or a dependency with a new data version, such as the
    task's demos (observed here first, ``defs.demos``) or a parent rebuilt from other inputs. A store
    on disk from another image path (``droid.store.store_is_current``) makes ``raw_episodes`` due too.
    ``force``: every asset."""
    from dagster._core.asset_graph_view.asset_graph_view import AssetGraphView
    from dagster._core.definitions.data_version import CachingStaleStatusResolver, StaleStatus
    from dagster._core.definitions.temporal_context import TemporalContext
    from dagster._time import get_current_datetime

    from robosteer_assets.defs.demos import observe_task_demos
    from robosteer_assets.droid.store import store_is_current

    observe_task_demos(instance, task, _demos_fingerprint(paths, task))
    graph = defs.get_repository_def().asset_graph
    # the resolver behind the UI's stale badges and RunRequest(stale_assets_only=True)
    view = AssetGraphView(temporal_context=TemporalContext(effective_dt=get_current_datetime(), last_event_id=None),
                          instance=instance, asset_graph=graph)
    resolver = CachingStaleStatusResolver(instance, graph, view)
    keys = [k for k in graph.toposorted_asset_keys if graph.get(k).is_materializable]
    due: set = set()
    for key in keys:
        node = graph.get(key)
        if (force or any(p in due for p in node.parent_keys)
                or resolver.get_status(key, task if node.is_partitioned else None) != StaleStatus.FRESH
                or (key.to_user_string() == "raw_episodes" and not store_is_current(paths.store(task)))):
            due.add(key)
    return [k for k in keys if k in due]


def _paths():
    from robosteer_assets.defs.resources import ProjectPaths

    return ProjectPaths(data_root=os.environ.get("ROBOSTEER_DATA_ROOT", "data"),
                        demos_root=os.environ.get("ROBOSTEER_DEMOS_ROOT", ""))


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
    overrides = {k: dict(v) for k, v in EMBEDDED_RUN_CONFIG.items()}
    overrides.setdefault("sim_demos", {})["episodes"] = demos
    overrides.setdefault("raw_episodes", {})["min_episodes"] = demos
    defs = with_config_versions(defs, overrides)
    graph = defs.get_repository_def().asset_graph
    all_assets = list(defs.get_repository_def().assets_defs_by_key.values())
    paths = _paths()

    timings = []
    due = None  # planned again only after a stage materialised something
    for stage, names in (("inputs", STAGE1), ("task chain", None), ("report", STAGE3)):
        if due is None:
            due = plan(defs, instance, task, paths, force=force)
        todo = [k for k in due if k.to_user_string().split("/")[0] not in skip]
        if names is not None:
            todo = [k for k in todo if k.to_user_string() in names]
        else:
            todo = [k for k in todo if k.to_user_string() not in STAGE1 + STAGE3]
        if not todo:
            log.info("stage %s: nothing to do (everything up to date for task %r)", stage, task)
            continue
        log.info("stage %s: materialising %s", stage, ", ".join(k.to_user_string() for k in todo))
        due = None
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
            tags={"robosteer/entry": "robosteer run"},
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
