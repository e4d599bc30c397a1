"""Paths and names of the DROID raw layout (droid_facts.md §1.1).

``<demos_root>/<task>/<episode_dir>/{metadata_<uuid>.json, trajectory.h5,
recordings/MP4/<serial>.mp4}``. ``<episode_dir>`` may be nested like DROID's
release (``success/<YYYY-MM-DD>/<asctime>``); anything below a ``failure``
folder is a failed demonstration and is skipped by discovery unless asked for.

Task folder names become Dagster partition keys and store paths, so they must
match ``SAFE_TASK_PATTERN``.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from pathlib import Path

from robosteer_assets.droid.errors import UnsafeTaskNameError

TRAJECTORY_FILE = "trajectory.h5"
METADATA_PREFIX = "metadata_"
MP4_DIR = Path("recordings") / "MP4"
SUCCESS_DIR, FAILURE_DIR = "success", "failure"

SAFE_TASK_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_SAFE_TASK = re.compile(SAFE_TASK_PATTERN)
SAFE_TASK_RULE = (
    f"a name matching {SAFE_TASK_PATTERN}: 1-64 ASCII letters, digits, '_', '.', '-', starting with a "
    "letter or digit, no '..', no path separators, whitespace or non-ASCII characters"
)


def safe_task_name(name: str) -> str:
    """Return ``name`` if it is a safe task / partition key, else raise ``UnsafeTaskNameError``.

    Rejects path traversal (``..``), separators, leading dots, whitespace, non-ASCII,
    empty names and names longer than 64 characters.
    """
    if not isinstance(name, str) or not _SAFE_TASK.fullmatch(name) or ".." in name:
        raise UnsafeTaskNameError(name if isinstance(name, str) else repr(name), "task name", SAFE_TASK_RULE, repr(name))
    return name


def asctime_name(t: datetime) -> str:
    """DROID's episode folder name: ``time.asctime().replace(" ", "_")``, e.g. ``Fri_Jul__7_09:42:23_2023``."""
    return f"{t:%a} {t:%b} {t.day:>2} {t:%H:%M:%S} {t:%Y}".replace(" ", "_")


def episode_dir_for(root: str | os.PathLike, task: str, uuid_or_time: str | datetime, success: bool = True) -> Path:
    """Where an episode of ``task`` belongs under a demos root, DROID-style.

    ``<root>/<task>/success/<name>`` or ``<root>/<task>/failure/<name>``. With a
    ``datetime`` the folder is nested by day exactly like DROID
    (``success/<YYYY-MM-DD>/<asctime name>``); with a string (e.g. the uuid) the
    string is the folder name. The task name is checked with ``safe_task_name``.
    """
    base = Path(root) / safe_task_name(task) / (SUCCESS_DIR if success else FAILURE_DIR)
    if isinstance(uuid_or_time, datetime):
        return base / uuid_or_time.strftime("%Y-%m-%d") / asctime_name(uuid_or_time)
    name = str(uuid_or_time)
    if not name or name in (".", "..") or "/" in name or "\\" in name or name.startswith("."):
        raise UnsafeTaskNameError(name, "episode folder name", "a single non-hidden path component", repr(name))
    return base / name


def is_episode_dir(d: Path) -> bool:
    """A folder that holds ``trajectory.h5`` or a ``metadata_*.json`` (maybe broken)."""
    try:
        names = os.listdir(d)
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return False
    return TRAJECTORY_FILE in names or any(n.startswith(METADATA_PREFIX) and n.endswith(".json") for n in names)


def find_episode_dirs(task_dir: str | os.PathLike, include_failures: bool = False) -> list[Path]:
    """All episode folders below ``task_dir`` (sorted), not descending into
    hidden folders (``.tmp-*`` of interrupted writes) or, unless
    ``include_failures``, ``failure`` folders."""
    task_dir = Path(task_dir)
    out: list[Path] = []
    stack = [task_dir]
    while stack:
        d = stack.pop()
        if d != task_dir and is_episode_dir(d):
            out.append(d)
            continue
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        for e in entries:
            if not e.is_dir(follow_symlinks=False) or e.name.startswith("."):
                continue
            if e.name == FAILURE_DIR and not include_failures:
                continue
            stack.append(Path(e.path))
    return sorted(out)


def is_task_dir(d: Path) -> bool:
    """True when ``d`` has episode folders below it (and is not an episode itself)."""
    return not is_episode_dir(d) and bool(find_episode_dirs(d, include_failures=True))


def metadata_path(episode_dir: Path) -> Path | None:
    """The episode's ``metadata_<uuid>.json`` (None if absent)."""
    found = sorted(Path(episode_dir).glob(f"{METADATA_PREFIX}*.json"))
    return found[0] if found else None


def uuid_from_metadata_name(path: Path) -> str:
    """``metadata_<uuid>.json`` -> ``<uuid>`` (DROID: the part after the first ``metadata_``)."""
    return path.stem[len(METADATA_PREFIX):]


_DAY_DIR = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def task_dir_of(episode_dir: str | os.PathLike) -> Path:
    """The task folder of an episode: its parent, skipping DROID's ``success`` /
    ``failure`` and ``YYYY-MM-DD`` levels."""
    p = Path(episode_dir).parent
    while p.name in (SUCCESS_DIR, FAILURE_DIR) or _DAY_DIR.match(p.name):
        if p.parent == p:
            break
        p = p.parent
    return p


_SLUG_RUN = re.compile(r"[^a-z0-9]+")
_SLUG_MAX = 64


def task_slug(text: str) -> str:
    """A task partition key for a task string (e.g. a LeRobot dataset's instruction): lower
    case, every run of other characters than ASCII letters and digits replaced by ``_``,
    stripped of ``_`` at the ends; ``"Pick up the red cube."`` -> ``pick_up_the_red_cube``.
    A slug longer than 64 characters is cut to 55 and ends in ``_`` + 8 hex digits of the
    text's SHA-1, so two long strings with a common start stay apart. The result satisfies
    ``safe_task_name``; a text with no letters or digits raises ``UnsafeTaskNameError``."""
    import hashlib

    slug = _SLUG_RUN.sub("_", str(text).lower()).strip("_")
    if len(slug) > _SLUG_MAX:
        slug = slug[: _SLUG_MAX - 9].rstrip("_") + "_" + hashlib.sha1(str(text).encode()).hexdigest()[:8]
    if not slug:
        raise UnsafeTaskNameError(repr(text), "task", "a task string with ASCII letters or digits", repr(text))
    return safe_task_name(slug)
