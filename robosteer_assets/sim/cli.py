"""``robosteer sim ...``: the simulated DROID tabletop.

``robosteer sim demos --task TASK --episodes N --out DIR [--seed S] [--variation V]``
records N successful scripted-expert demos in DROID's raw layout under
``DIR/TASK/success/`` (failed attempts under ``DIR/TASK/failure/``). With
``--format lerobot`` they are written as a LeRobot v2.1 dataset at ``DIR`` instead
(``droid.lerobot_writer``: H.264 MP4s, parquet, meta JSON; failed attempts are not
kept), which openpi / LeRobot train on directly; DIR must not exist yet.

``robosteer sim render --task TASK --out PNG [--variation V] [--cell ROW COL]``
writes the start state seen by both cameras (exterior left | wrist) side by side.
"""

from __future__ import annotations

import argparse
from pathlib import Path

TASK_NAMES = ("marker_in_mug", "press_button", "pick_cube", "cube_in_bowl", "push_cup", "pick_mug")
VARIATION_NAMES = ("none", "lighting", "form", "distractors")


def register(subparsers) -> None:
    p = subparsers.add_parser("sim", help="simulated Panda tabletop: record demos, render start states",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="sim_command", required=True)
    d = sub.add_parser("demos", help="record scripted-expert demos in DROID's raw layout")
    d.add_argument("--task", required=True, choices=TASK_NAMES)
    d.add_argument("--episodes", type=int, required=True, help="number of successful demos to write")
    d.add_argument("--out", type=Path, required=True, help="demos root (episodes go to OUT/TASK/...)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--variation", default="none", choices=VARIATION_NAMES)
    d.add_argument("--image-size", type=int, default=224)
    d.add_argument("--format", default="droid", choices=("droid", "lerobot"),
                   help="droid: DROID raw layout under OUT/TASK/ (default); lerobot: a LeRobot v2.1 dataset at OUT")
    d.set_defaults(handler=run_demos)
    r = sub.add_parser("render", help="PNG of a task's start state from both cameras")
    r.add_argument("--task", required=True, choices=TASK_NAMES)
    r.add_argument("--out", type=Path, required=True, help="output PNG")
    r.add_argument("--variation", default="none", choices=VARIATION_NAMES)
    r.add_argument("--cell", type=int, nargs=2, default=(2, 3), metavar=("ROW", "COL"))
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--image-size", type=int, default=224)
    r.set_defaults(handler=run_render)


def run_demos(args) -> int:
    from robosteer_assets.sim.recorder import RecordConfig, record_demos

    cfg = RecordConfig(image_size=args.image_size)
    try:
        if getattr(args, "format", "droid") == "lerobot":
            from robosteer_assets.droid.lerobot_writer import LeRobotWriter

            if args.out.exists() and any(args.out.iterdir()):
                raise ValueError(f"--out {args.out}: expected a new folder for the LeRobot dataset, found a non-empty one")
            with LeRobotWriter(args.out) as w:
                paths = record_demos(args.task, args.episodes, args.out, seed=args.seed, variation=args.variation,
                                     cfg=cfg, sink=w.add)
        else:
            paths = record_demos(args.task, args.episodes, args.out, seed=args.seed, variation=args.variation, cfg=cfg)
    except (RuntimeError, ValueError) as e:
        print(f"ERROR {e}")
        return 1
    for p in paths:
        print(p)
    return 0


def run_render(args) -> int:
    from robosteer_assets.sim.demos import render_start_png

    try:
        path = render_start_png(args.task, args.out, args.variation, args.cell, args.seed, args.image_size)
    except ValueError as e:
        print(f"ERROR {e}")
        return 1
    print(path)
    return 0
