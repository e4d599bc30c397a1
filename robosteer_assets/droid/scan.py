"""Cheap scan of a demos root for the new-demos sensor: directory listings and
stat() only — no h5 or video reads — so a sensor tick stays far below Dagster's
60 s limit even for thousands of episodes.

Layout: ``<demos_root>/<task>/<episode>/`` (an episode folder holds
``trajectory.h5``). DROID's ``success/<date>/<episode>`` nesting below the task
folder is accepted too; anything under a ``failure`` folder is ignored.
An episode still being copied is *arriving* (see ``scan_task``): the task is
reported as unsettled and not fingerprinted, so a half-copied episode is never
ingested.
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
    """Scan every task folder under ``root``. Unsafe folder names (path traversal,
    spaces, non-ASCII...) are rejected with a reason and never become partitions."""
    out = DemosScan()
    if not root.exists():
        return out
    now = time.time()
    for e in sorted(os.scandir(root), key=lambda e: e.name):
        if not e.is_dir(follow_symlinks=False) or e.name.startswith("."):
            continue
        if not is_safe_task_name(e.name):
            out.rejected[e.name] = f"task folder {e.path!r} is not a safe partition key: expected {SAFE_TASK_RULE}"
            continue
        out.tasks[e.name] = scan_task(Path(e.path), settle_s=settle_s, now=now)
    return out
