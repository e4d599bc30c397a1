"""``robosteer validate DIR``: check DROID episodes before ingest.

DIR is an episode folder, a task folder (episodes below it, DROID's
``success/<date>/`` nesting allowed) or a demos root of task folders. Prints
one line per episode, ``OK <path>`` or ``INVALID <path>: <reason>``, plus an
``INVALID <task>`` line for an unsafe task folder name or a task with fewer
valid episodes than ``--min-episodes``. Exit code 1 when anything is invalid,
2 when DIR holds no episodes.

DIR may also be a LeRobot dataset root (it has ``meta/info.json``; codebase v2.1 or
v3.0): each episode is read as ingest would (``droid.lerobot``) and reported as
``OK <root> episode <i> [<task>]`` or ``INVALID <root> episode <i> [<task>]: <reason>``;
``--task`` limits the check to some of the dataset's tasks, ``--features`` picks the
feature-mapping preset. A dataset that cannot be read at all (e.g. an unsupported
``codebase_version``) is one ``INVALID <root>`` line and exit code 1.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "validate",
        help="validate DROID episodes (a task folder or a demos root)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dir", type=Path, help="episode folder, task folder or demos root")
    p.add_argument("--min-episodes", type=int, default=20,
                   help="minimum valid episodes per task (paper: 20; 0 disables the check)")
    p.add_argument("--annotations", type=Path, default=None, help="DROID language annotations JSON {uuid: {...}}")
    p.add_argument("--image-size", type=int, default=224, help="decode size (default 224)")
    p.add_argument("--target-hz", type=float, default=6.0, help="resampling rate (default 6; 0 keeps the recorded rate)")
    p.add_argument("--exterior", default="left", choices=("left", "right", "ext1", "ext2"))
    p.add_argument("--include-failures", action="store_true", help="also validate episodes below failure/ folders")
    p.add_argument("--task", action="append", default=None,
                   help="LeRobot dataset: only this task (task string or its slug; repeatable)")
    p.add_argument("--features", default="auto", choices=("auto", "openpi_droid", "openpi_libero", "lerobot"),
                   help="LeRobot dataset: feature-mapping preset (default: the first that fits)")
    p.set_defaults(handler=run_validate)


def _task_dirs(root: Path) -> tuple[list[Path], bool]:
    """(task folders, root_is_task)."""
    from robosteer_assets.droid.layout import FAILURE_DIR, SUCCESS_DIR, is_episode_dir

    children = sorted(c for c in root.iterdir() if c.is_dir() and not c.name.startswith("."))
    if any(is_episode_dir(c) or c.name in (SUCCESS_DIR, FAILURE_DIR) for c in children):
        return [root], True
    return children, False


def run_validate(args) -> int:
    from robosteer_assets.droid.errors import EpisodeError, UnsafeTaskNameError
    from robosteer_assets.droid.layout import find_episode_dirs, is_episode_dir, safe_task_name
    from robosteer_assets.droid.reader import ReadConfig, load_annotations, validate_episode

    root: Path = args.dir
    if not root.is_dir():
        print(f"INVALID {root}: expected a directory (episode, task folder or demos root), found none")
        return 2
    cfg = ReadConfig(image_size=args.image_size, target_hz=args.target_hz or None, exterior=args.exterior)
    from robosteer_assets.droid.lerobot import is_lerobot_root

    if is_lerobot_root(root):
        return _validate_lerobot(root, cfg, args)
    annotations = None
    if args.annotations is not None:
        try:
            annotations = load_annotations(args.annotations)
        except EpisodeError as e:
            print(f"INVALID {args.annotations}: {e.reason}")
            return 1
    invalid = 0
    total = 0
    if is_episode_dir(root):
        groups = [(None, [root])]
    else:
        tasks, root_is_task = _task_dirs(root)
        groups = []
        for t in tasks:
            if not root_is_task:
                try:
                    safe_task_name(t.name)
                except UnsafeTaskNameError as e:
                    print(f"INVALID {t}: {e.reason}")
                    invalid += 1
                    continue
            groups.append((t, find_episode_dirs(t, include_failures=args.include_failures)))
    for task_dir, episodes in groups:
        valid = 0
        for ep in episodes:
            total += 1
            err = validate_episode(ep, cfg, annotations)
            if err is None:
                valid += 1
                print(f"OK {ep}")
            else:
                invalid += 1
                print(f"INVALID {ep}: {err.reason}")
        if task_dir is not None and args.min_episodes > 0 and valid < args.min_episodes:
            invalid += 1
            print(f"INVALID {task_dir}: TooFewEpisodesError: expected at least {args.min_episodes} valid episodes "
                  f"(--min-episodes), found {valid} of {len(episodes)}")
    if total == 0 and invalid == 0:
        print(f"INVALID {root}: expected episode folders (trajectory.h5 + metadata_<uuid>.json), found none")
        return 2
    print(f"{total} episodes checked, {invalid} problem(s)")
    return 1 if invalid else 0


def _validate_lerobot(root: Path, cfg, args) -> int:
    from robosteer_assets.droid.errors import DatasetError
    from robosteer_assets.droid.lerobot import validate_dataset

    try:
        checks = validate_dataset(root, cfg, mapping=args.features, tasks=args.task)
    except DatasetError as e:
        print(f"INVALID {root}: {e.reason}")
        return 1
    if not checks:
        print(f"INVALID {root}: expected episodes{' of ' + repr(args.task) if args.task else ''}, found none")
        return 2
    invalid = 0
    valid: dict[str, int] = {}
    total: dict[str, int] = {}
    for c in checks:
        total[c.task] = total.get(c.task, 0) + 1
        if c.error is None:
            valid[c.task] = valid.get(c.task, 0) + 1
            print(f"OK {root} episode {c.ref.index} [{c.task}]")
        else:
            invalid += 1
            print(f"INVALID {root} episode {c.ref.index} [{c.task}]: {c.error.reason}")
    for task, n in total.items():
        if args.min_episodes > 0 and valid.get(task, 0) < args.min_episodes:
            invalid += 1
            print(f"INVALID {root} [{task}]: TooFewEpisodesError: expected at least {args.min_episodes} valid episodes "
                  f"(--min-episodes), found {valid.get(task, 0)} of {n}")
    print(f"{len(checks)} episodes checked, {invalid} problem(s)")
    return 1 if invalid else 0
