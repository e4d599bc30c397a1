"""Cheap scan of a demos root for the new-demos sensor: directory listings and
stat() only — no h5 or video reads — so a sensor tick stays far below Dagster's
60 s limit even for thousands of episodes.

Layout: ``<demos_root>/<task>/<episode>/`` (an episode folder holds
``trajectory.h5``). DROID's ``success/<date>/<episode>`` nesting below the task
folder is accepted too; anything under a ``failure`` folder is ignored.
An episode still being copied is *arriving* (see ``scan_task``): the task is
reported as unsettled and not fingerprinted, so a half-copied episode is never
ingested.

A demos root that is a LeRobot dataset (it has ``meta/info.json``) is scanned by
``scan_lerobot_root`` instead: one task per task string of the dataset (its slug), the
fingerprint over the metadata files and each of the task's data and video files,
arriving while any of them changed within ``settle_s``.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from robosteer_assets.droid.errors import UnsafeTaskNameError
from robosteer_assets.droid.layout import SAFE_TASK_RULE, find_episode_dirs, safe_task_name


@dataclass(frozen=True)
class TaskScan:
    task: str
    episodes: tuple[str, ...]
    fingerprint: str  # sha1 over (relative episode path, file names, sizes, mtimes)
    arriving: tuple[str, ...] = ()  # episodes still being copied

    @property
    def settled(self) -> bool:
        return not self.arriving


@dataclass
class DemosScan:
    tasks: dict[str, TaskScan] = field(default_factory=dict)
    rejected: dict[str, str] = field(default_factory=dict)  # folder name -> reason


def is_safe_task_name(name: str) -> bool:
    try:
        safe_task_name(name)
    except UnsafeTaskNameError:
        return False
    return True


def _episode_files(ep: Path) -> tuple[list[tuple[str, int, int]], int]:
    """(relative path, size, mtime_ns) of every file, and the newest mtime_ns of any
    file *or folder* (a copy in progress freshens its folders even when it keeps
    the files' original mtimes, e.g. ``cp -rp`` / ``shutil.copytree``)."""
    rows, newest = [], 0
    for root, dirs, files in os.walk(ep):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        try:
            newest = max(newest, os.stat(root).st_mtime_ns)
        except FileNotFoundError:
            continue
        for f in sorted(files):
            p = Path(root) / f
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            rows.append((str(p.relative_to(ep)), st.st_size, st.st_mtime_ns))
            newest = max(newest, st.st_mtime_ns)
    return sorted(rows), newest


def _named_videos_present(ep: Path, files: list[tuple[str, int, int]]) -> bool:
    """Every MP4 the metadata JSON names is there (a small JSON read, no h5/video)."""
    names = {f[0] for f in files}
    meta = [n for n in names if n.startswith("metadata_") and n.endswith(".json")]
    if not meta:
        return False
    try:
        md = json.loads((ep / meta[0]).read_text())
    except (OSError, ValueError):
        return False
    wanted = {Path(str(v)).name for k, v in md.items() if k.endswith("_mp4_path") and v}
    have = {Path(n).name for n in names if n.startswith("recordings/MP4/")}
    return bool(wanted) and wanted <= have


def scan_task(task_dir: Path, settle_s: float = 30.0, now: float | None = None) -> TaskScan:
    """Fingerprint a task's settled episodes.

    An episode is *arriving* while any of its files or folders changed within
    ``settle_s`` seconds, or while it is incomplete (no trajectory.h5, no metadata,
    or an MP4 named by the metadata missing) and changed within ``10 * settle_s``.
    An incomplete episode older than that is a broken episode, not an arriving
    one: it is included, so ingest quarantines it with a reason instead of the
    whole task waiting forever.
    """
    now = time.time() if now is None else now
    h = hashlib.sha1()
    episodes, arriving = [], []
    for ep in find_episode_dirs(task_dir):
        rel = str(ep.relative_to(task_dir))
        files, newest_ns = _episode_files(ep)
        age = now - newest_ns / 1e9
        names = [f[0] for f in files]
        complete = "trajectory.h5" in names and _named_videos_present(ep, files)
        if age < settle_s or (not complete and age < 10 * settle_s):
            arriving.append(rel)
            continue
        episodes.append(rel)
        h.update(rel.encode())
        for name, size, mtime in files:
            h.update(f"{name}:{size}:{mtime};".encode())
    return TaskScan(task_dir.name, tuple(episodes), h.hexdigest()[:16], tuple(arriving))


def scan_demos_root(root: Path, settle_s: float = 30.0) -> DemosScan:
    """Scan every task folder under ``root`` (or the tasks of a LeRobot dataset at ``root``).
    Unsafe folder names (path traversal, spaces, non-ASCII...) are rejected with a reason
    and never become partitions."""
    from robosteer_assets.droid.lerobot import is_lerobot_root

    out = DemosScan()
    if not root.exists():
        return out
    if is_lerobot_root(root):
        return scan_lerobot_root(root, settle_s)
    now = time.time()
    for e in sorted(os.scandir(root), key=lambda e: e.name):
        if not e.is_dir(follow_symlinks=False) or e.name.startswith("."):
            continue
        if not is_safe_task_name(e.name):
            out.rejected[e.name] = f"task folder {e.path!r} is not a safe partition key: expected {SAFE_TASK_RULE}"
            continue
        out.tasks[e.name] = scan_task(Path(e.path), settle_s=settle_s, now=now)
    return out


def _file_row(root: Path, p: Path) -> tuple[str, int, int] | None:
    try:
        st = p.stat()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return str(p.relative_to(root)), st.st_size, st.st_mtime_ns


def scan_lerobot_root(root: Path, settle_s: float = 30.0, now: float | None = None) -> DemosScan:
    """Fingerprint each task of the LeRobot dataset at ``root`` (metadata reads only).

    The fingerprint covers what the metadata says of the task (version, fps, features,
    its episodes' rows and video spans) and the size / mtime of its data and video files,
    so an episode added to another task does not change it. A task is *arriving* while
    any metadata file or any of its data / video files changed within ``settle_s``, or
    while one of those files is missing and the newest changed within ``10 * settle_s``
    (afterwards ingest quarantines the episode). A dataset whose metadata cannot be read
    is reported in ``rejected``."""
    from robosteer_assets.droid.errors import DatasetError
    from robosteer_assets.droid.lerobot import open_dataset, task_partitions

    now = time.time() if now is None else now
    out = DemosScan()
    try:
        ds = open_dataset(root)
    except DatasetError as e:
        out.rejected[root.name] = e.reason
        return out
    meta_rows = [r for r in (_file_row(root, p) for p in ds.meta_files()) if r]
    for task, refs in task_partitions(ds).items():
        files = sorted({ref.data_file for ref in refs} | {v.path for ref in refs for v in ref.videos.values()})
        rows = [_file_row(root, p) for p in files]
        present = [r for r in rows if r] + meta_rows
        newest = max((r[2] for r in present), default=0) / 1e9
        missing = len(present) < len(rows) + len(meta_rows)
        age = now - newest
        h = hashlib.sha1()
        described = [ds.version, ds.fps, ds.features,
                     [(r.index, r.length, r.tasks, r.rows, sorted((k, v.from_s, v.to_s) for k, v in r.videos.items()))
                      for r in refs]]
        h.update(json.dumps(described, sort_keys=True, default=str).encode())
        for name, size, mtime in sorted(r for r in rows if r):
            h.update(f"{name}:{size}:{mtime};".encode())
        episodes = tuple(ref.uuid for ref in refs)
        arriving = episodes if (age < settle_s or (missing and age < 10 * settle_s)) else ()
        out.tasks[task] = TaskScan(task, () if arriving else episodes, h.hexdigest()[:16], arriving)
    return out


def task_fingerprint(demos_root: Path, task: str) -> str:
    """The fingerprint of one task's demos now (no settling), for a DROID demos root or a
    LeRobot dataset root; "" when the task has no demos there."""
    from robosteer_assets.droid.lerobot import is_lerobot_root

    if is_lerobot_root(demos_root):
        ts = scan_lerobot_root(demos_root, settle_s=0).tasks.get(task)
        return ts.fingerprint if ts else ""
    return scan_task(Path(demos_root) / safe_task_name(task), settle_s=0).fingerprint
