"""Write-then-rename helpers: nothing half-written is ever left at a final path.

Every artifact the pipeline produces (zarr stores, parquet tables, checkpoints,
JSON) is written to a sibling temporary path first and renamed into place only
when complete. A crash leaves at most a ``.tmp-*`` sibling, which the next run
removes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

TMP_PREFIX = ".tmp-"


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f"{TMP_PREFIX}{path.name}-{uuid.uuid4().hex[:8]}")


def clean_stale_tmp(parent: Path, name: str) -> None:
    """Remove leftovers of interrupted writes of ``parent/name``."""
    if not parent.exists():
        return
    for p in parent.glob(f"{TMP_PREFIX}{name}-*"):
        shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def _remove_failed_tmp(tmp: Path, settle_s: float = 0.05, attempts: int = 40) -> None:
    """Remove a failed write's temp directory. A writer with background threads (orbax / tensorstore)
    can still create files in it after the error reached us, which makes one ``rmtree`` leave it
    behind; so remove, wait a moment, and repeat until it stays gone (bounded: ~2 s)."""
    for _ in range(attempts):
        shutil.rmtree(tmp, ignore_errors=True)
        time.sleep(settle_s)
        if not tmp.exists():
            return


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``path`` on successful exit.

    On an exception the temporary directory is removed and ``path`` (if it
    existed) is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_tmp(path.parent, path.name)
    tmp = _tmp_sibling(path)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        _remove_failed_tmp(tmp)
        raise
    old = None
    if path.exists():
        old = _tmp_sibling(path)
        os.replace(path, old)
    os.replace(tmp, path)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a temporary file that is fsynced and renamed onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f"{TMP_PREFIX}{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_file(path, "wb") as f:
        f.write(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))
