"""Simulated tabletop benchmark.

1. Scripted-expert success over the 40 grid cells (5 x 8, trial yaw seed 0) for
   each of the six tasks, without cameras (target >= 90 % each).
2. Two-camera frames per second at 224 x 224: one frame = an exterior and a
   wrist render of the current state (physics not included) (target >= 50).
3. Wall time to record 20 demos of one task with video through droid.writer
   (target <= 90 s).

``--quick``: 8 cells per task, 20 frames, 5 demos (demos20_s extrapolated x4).
Prints rows, then exactly one ``RESULT expert_success_min=... render_fps=... demos20_s=...`` line.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("MENAGERIE_ROOT", str((ROOT / ".." / "shared" / "menagerie").resolve()))

QUICK_CELLS = [(0, 0), (0, 7), (4, 0), (4, 7), (2, 3), (2, 4), (1, 2), (3, 5)]


def expert_sweep(task: str, cells, seed: int = 0, variation: str = "none") -> tuple[int, int, list, float]:
    from robosteer_assets.sim.env import TabletopEnv, run_episode

    env = TabletopEnv(task, variation=variation, render_images=False)
    ok, failed = 0, []
    t0 = time.monotonic()
    for cell in cells:
        env.reset(cell=cell, seed=seed)
        r = run_episode(env)
        if r["success"]:
            ok += 1
        else:
            failed.append(cell)
    return ok, len(cells), failed, time.monotonic() - t0


def render_fps(frames: int) -> float:
    from robosteer_assets.sim.env import TabletopEnv

    env = TabletopEnv("cube_in_bowl", image_size=224)
    env.reset(cell=(2, 3), seed=0)
    env.render()  # warm-up
    t0 = time.monotonic()
    for _ in range(frames):
        env.render()
    return frames / (time.monotonic() - t0)


def demos_time(n: int) -> float:
    from robosteer_assets.sim.recorder import record_demos

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        record_demos("pick_cube", n, tmp, seed=0)
        return time.monotonic() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tasks", default="marker_in_mug,press_button,pick_cube,cube_in_bowl,push_cup,pick_mug")
    ap.add_argument("--variation", default="none", help="none | lighting | form | distractors (expert sweep only)")
    args = ap.parse_args()
    from robosteer_assets.sim.grid import DEFAULT_GRID

    cells = QUICK_CELLS if args.quick else DEFAULT_GRID.cells()
    print(f"expert sweep, variation={args.variation}, trial yaw seed 0")
    print(f"{'task':<14} {'success':>9} {'rate':>6} {'s/episode':>9}  failed cells")
    rates = []
    for task in args.tasks.split(","):
        ok, n, failed, dt = expert_sweep(task, cells, variation=args.variation)
        rates.append(ok / n)
        print(f"{task:<14} {ok:>4}/{n:<4} {100 * ok / n:>5.0f}% {dt / n:>9.2f}  {failed}")
    fps = render_fps(20 if args.quick else 100)
    print(f"render: {fps:.1f} two-camera frames/s at 224x224 (shadows off, no MSAA)")
    n_demos = 5 if args.quick else 20
    dt = demos_time(n_demos)
    demos20 = dt * 20 / n_demos
    note = f" (extrapolated from {n_demos})" if n_demos != 20 else ""
    print(f"demos: {n_demos} pick_cube demos with video in {dt:.1f} s -> demos20_s={demos20:.1f}{note}")
    print("note: shared 2-core machine; timings are noisy")
    print(f"RESULT expert_success_min={min(rates):.3f} render_fps={fps:.1f} demos20_s={demos20:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
