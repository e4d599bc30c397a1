"""Cheap scan of a demos root for the new-demos sensor: directory listings and
stat() only — no h5 or video reads — so a sensor tick stays far below Dagster's
60 s limit even for thousands of episodes.

Layout: ``<demos_root>/<task>/<episode>/`` (an episode folder holds
``trajectory.h5``). DROID's ``success/<date>/<episode>`` nesting below the task
folder is accepted too; anything under a ``failure`` folder is ignored.
An episode whose files changed less than ``settle_s`` seconds ago, or that lacks
``trajectory.h5`` / ``metadata_*.json`` / a ``recordings/MP4/*.mp4`` file, is
*arriving*: the task is reported as unsettled and not fingerprinted, so a
half-copied episode is never ingested.
"""

from __future__ import annotations

import hashlib
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


def _episode_files(ep: Path) -> list[tuple[str, int, int]]:
    rows = []
    for root, dirs, files in os.walk(ep):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for f in sorted(files):
            p = Path(root) / f
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            rows.append((str(p.relative_to(ep)), st.st_size, st.st_mtime_ns))
    return sorted(rows)


def _complete(files: list[tuple]) -> bool:
    names = [f[0] for f in files]
    return (
        "trajectory.h5" in names
        and any(n.startswith("metadata_") and n.endswith(".json") for n in names)
        and any(n.startswith("recordings/MP4/") and n.endswith(".mp4") for n in names)
        and not any(n.startswith(".tmp-") or "/.tmp-" in n for n in names)
    )


def scan_task(task_dir: Path, settle_s: float = 30.0, now: float | None = None) -> TaskScan:
    now = time.time() if now is None else now
    h = hashlib.sha1()
    episodes, arriving = [], []
    for ep in find_episode_dirs(task_dir):
        rel = str(ep.relative_to(task_dir))
        files = _episode_files(ep)
        newest = max((f[2] for f in files), default=0) / 1e9
        if not _complete(files) or now - newest < settle_s:
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
