"""The closed-loop learning ladder: does the embedded default learn to do the task?

Every rung is measured in the simulator on the 40-cell grid with fixed seeds, and each
isolates one cause of failure:

1. ``replay_success``: the 20 demos' actions, as the training pipeline reads them back from
   the episode store, replayed open loop from each demo's recorded start state
   (``evaluation.replay``). Target >= 0.95; below it, recording and execution disagree.
2. ``oracle_success`` (skipped by ``--quick``): ``pi0_tiny`` trained on the target task's own
   demonstrations only (``--oracle-demos`` demos with command noise, ``--oracle-steps`` steps of
   the base policy's pretraining recipe, object-position objective included), then evaluated on
   the grid as the main job evaluates (flow noise scale ``EMBEDDED_EVAL_NOISE_SCALE``): the in-distribution
   upper bound of the embedded model. Target >= 0.8 on pick_cube.
3. ``zero_shot_<task>``, ``full_lora_<task>``, ``steering_<task>``: ``robosteer run --task <task>``
   on a fresh data root and Dagster home (the shipped base, 20 demos, the main job's
   defaults), read back from the trial store. ``main_job_s`` is the wall time of the first
   task's run. The same checkpoints are then evaluated again with eval seed 1
   (``<method>_<task>_seed1``) and under the ``lighting`` variation
   (``<method>_<task>_lighting``). Targets: zero-shot <= 0.30, steering and full LoRA >= 0.60,
   steering >= full LoRA - 0.10, robustness within 0.15.

    .venv/bin/python benchmarks/bench_learning.py [--quick] [--tasks pick_cube,cube_in_bowl,press_button]

``--quick``: no oracle, pick_cube only, no robustness re-evaluations. Ends with one line
``RESULT replay_success=... oracle_success=... zero_shot_pick_cube=... ... main_job_s=...``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("MUJOCO_GL", "egl")
if "MENAGERIE_ROOT" not in os.environ and (ROOT.parent / "shared" / "menagerie").is_dir():
    os.environ["MENAGERIE_ROOT"] = str((ROOT.parent / "shared" / "menagerie").resolve())
os.environ.setdefault("ROBOSTEER_JAX_CACHE", str(ROOT / ".cache" / "jax"))

METHODS = ("zero_shot", "full_lora", "steering")


def demo_store(work: Path, task: str, demos: int, seed: int, record_cfg=None):
    """Record ``demos`` scripted demos under ``work/demos`` and ingest them at pi0_tiny's resolution into
    ``work/store`` (as ``sim_demos`` and ``raw_episodes`` do); returns the EpisodeStore."""
    from robosteer_assets.droid.reader import ReadConfig
    from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
    from robosteer_assets.sim.recorder import RecordConfig, record_demos
    from robosteer_assets.vla.config import get_config

    record_demos(task, demos, work / "demos", seed=seed, cfg=record_cfg or RecordConfig())
    res = get_config("pi0_tiny").vision.resolution
    ingest_task(work / "demos" / task, work / "store" / task, IngestConfig(read=ReadConfig(image_size=res),
                                                                         min_episodes=1))
    return EpisodeStore.open(work / "store" / task)


def replay_rung(work: Path, task: str, demos: int) -> dict:
    """Record ``demos`` demos as ``sim_demos`` does, ingest them as ``raw_episodes`` does, replay."""
    from robosteer_assets.evaluation.replay import replay_store

    rows = replay_store(demo_store(work, task, demos, seed=0), task)
    ok = sum(r["success"] for r in rows)
    same = sum(r["first_success_step"] == r["recorded_first_success"] for r in rows)
    print(f"replay   {task:<14} {ok}/{len(rows)} succeed; first success at the recorded step in {same}/{len(rows)}")
    return {"replay_success": ok / len(rows)}


def oracle_rung(work: Path, task: str, demos: int, steps: int, workers: int) -> dict:
    """pi0_tiny trained on ``task``'s own noisy demos with the base policy's recipe, then the grid."""
    from dataclasses import replace

    from robosteer_assets.embedded.base_policy import EMBEDDED_EVAL_NOISE_SCALE, BasePolicyConfig, train_base_policy
    from robosteer_assets.embedded.corpus import CorpusConfig
    from robosteer_assets.evaluation.evaluator import PolicySpec, SimEvalConfig, evaluate
    from robosteer_assets.sim.recorder import RecordConfig
    from robosteer_assets.sim.tasks import all_instructions

    c = CorpusConfig()
    t0 = time.monotonic()
    store = demo_store(work / "oracle", task, demos, seed=500, record_cfg=RecordConfig(
        write_failures=False, action_noise=c.action_noise, home_noise=c.home_noise))
    cfg = replace(BasePolicyConfig(), steps=steps, augment="none", save_interval=500)
    out = train_base_policy([store], work / "oracle_ckpt", cfg, instructions=all_instructions())
    rows = evaluate(task, PolicySpec(kind="checkpoint", checkpoint=str(work / "oracle_ckpt")), "oracle",
                    SimEvalConfig(workers=workers, noise_scale=EMBEDDED_EVAL_NOISE_SCALE))
    ok = sum(r["success"] for r in rows)
    print(f"oracle   {task:<14} {ok}/{len(rows)} ({demos} demos, {steps} steps, final loss {out['final_loss']:.4f}, "
          f"{time.monotonic() - t0:.0f} s)")
    return {"oracle_success": ok / len(rows)}


def main_job_rung(work: Path, task: str, workers: int, robustness: bool) -> dict:
    """``robosteer run --task`` on a fresh data root / Dagster home, then the trial store."""
    from robosteer_assets.embedded.base_policy import EMBEDDED_EVAL_NOISE_SCALE
    from robosteer_assets.evaluation.evaluator import PolicySpec, SimEvalConfig, evaluate
    from robosteer_assets.evaluation.trials import read_trials

    data, home = work / f"data_{task}", work / f"home_{task}"
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ROBOSTEER_DATA_ROOT": str(data), "DAGSTER_HOME": str(home)}
    t0 = time.monotonic()
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "robosteer"), "run", "--task", task], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.monotonic() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"robosteer run --task {task} failed (exit {proc.returncode})")
    trials = read_trials(data / "trials").to_dicts()
    out = {f"main_job_s_{task}": wall}
    for m in METHODS:
        rows = [r for r in trials if r["task"] == task and r["method"] == m]
        out[f"{m}_{task}"] = sum(r["success"] for r in rows) / max(1, len(rows))
        print(f"main job {task:<14} {m:<10} {sum(r['success'] for r in rows)}/{len(rows)}")
    if robustness:
        ckpts = {"zero_shot": data / "checkpoints" / "base", "full_lora": data / "checkpoints" / task / "full_lora",
                 "steering": data / "checkpoints" / task / "steering"}
        for m, ck in ckpts.items():
            ns = EMBEDDED_EVAL_NOISE_SCALE  # as the main job evaluates
            for tag, cfg in (("seed1", SimEvalConfig(workers=workers, seed=1, noise_scale=ns)),
                             ("lighting", SimEvalConfig(workers=workers, variation="lighting", noise_scale=ns))):
                rows = evaluate(task, PolicySpec(kind="checkpoint", checkpoint=str(ck)), m, cfg)
                ok = sum(r["success"] for r in rows)
                out[f"{m}_{task}_{tag}"] = ok / len(rows)
                print(f"robust   {task:<14} {m:<10} {tag:<9} {ok}/{len(rows)}")
    print(f"main job {task:<14} wall {wall:.0f} s")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="no oracle, pick_cube only, no robustness re-evaluations")
    ap.add_argument("--tasks", default="pick_cube,cube_in_bowl,press_button")
    ap.add_argument("--oracle-task", default="pick_cube")
    ap.add_argument("--oracle-demos", type=int, default=400)
    ap.add_argument("--oracle-steps", type=int, default=3000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--skip-main-job", action="store_true", help="only the replay and oracle rungs")
    ap.add_argument("--skip-oracle", action="store_true", help="no oracle rung (the other rungs as asked)")
    ap.add_argument("--work", default="", help="work directory (default: a temporary one)")
    args = ap.parse_args()
    import logging

    logging.basicConfig(level=logging.WARNING)
    from robosteer_assets.common.jaxsetup import configure_jax

    configure_jax()
    tasks = ["pick_cube"] if args.quick else [t for t in args.tasks.split(",") if t]
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench_learning_"))
    work.mkdir(parents=True, exist_ok=True)
    result: dict = {}
    result.update(replay_rung(work / "replay", tasks[0], 20))
    if not args.skip_main_job:  # the headline rungs first; the oracle (the longest) last
        for i, task in enumerate(tasks):
            r = main_job_rung(work, task, args.workers, robustness=not args.quick)
            if i == 0:
                result["main_job_s"] = r[f"main_job_s_{task}"]
            result.update({k: v for k, v in r.items() if not k.startswith("main_job_s_")})
    if not args.quick and not args.skip_oracle:
        result.update(oracle_rung(work, args.oracle_task, args.oracle_demos, args.oracle_steps, args.workers))
    (work / "result.json").write_text(json.dumps(result, indent=1))
    print("RESULT " + " ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in result.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
