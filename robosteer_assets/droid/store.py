"""Per-task episode store: every valid episode of a task decoded once into a
zarr v3 group, plus a parquet manifest of all episodes incl. quarantined ones.

Layout (docs/ARCHITECTURE.md, "Per-task store")::

    <store_dir>/episodes.zarr     images uint8 [N,2,S,S,3], state f32 [N,8], actions f32 [N,8],
                                  episode_index i32 [N], step i32 [N], joint_velocities f32 [N,7]
                                  attrs: episodes [{uuid, instruction, start, length}], image_size,
                                  image_resize, control_hz, task, ingest_id, complete=True,
                                  format_version
    <store_dir>/manifest.parquet  task, uuid, path, status ('ok'|'quarantined'), reason, length,
                                  instruction, start, source_length, success, ingest_id

N counts steps (rows) over all episodes; ``step`` is the row's index within its
episode (at the store's ``control_hz``). ``<store_dir>`` is normally
``<store_root>/<task>``.

Atomicity: ``episodes.zarr`` is built in a ``.tmp-`` sibling and renamed into
place (``common.atomic.atomic_dir``); ``complete`` is the last attribute written.
The manifest is written atomically afterwards and carries the same
``ingest_id``. ``EpisodeStore.open`` refuses a store that is missing, only
half-written (a ``.tmp-`` sibling), lacks ``complete``, has inconsistent arrays
or a manifest from another ingest.

Image path: ``image_resize`` names the resize the images went through
(``common.images.RESIZE_METHOD``, the letterbox serving also applies). A store without it
or with another value went through another resize and is *stale*:
``EpisodeStore.open`` raises :class:`StaleStoreError` so training never mixes the two image
paths, and :func:`store_is_current` lets the orchestration re-ingest the task.
"""

from __future__ import annotations

import functools
import io
import json
import os
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from robosteer_assets.common.atomic import TMP_PREFIX, atomic_dir, write_bytes_atomic
from robosteer_assets.common.images import RESIZE_METHOD
from robosteer_assets.common.progress import Progress, get_logger
from robosteer_assets.droid import errors as E
from robosteer_assets.droid.episode import ACTION_DIM, NUM_JOINTS, STATE_DIM, Episode
from robosteer_assets.droid.layout import find_episode_dirs, metadata_path, safe_task_name, task_dir_of, uuid_from_metadata_name
from robosteer_assets.droid.reader import ReadConfig, load_annotations, read_episode

log = get_logger("droid.store")

STORE_NAME = "episodes.zarr"
MANIFEST_NAME = "manifest.parquet"
FORMAT_VERSION = 1
ARRAYS = ("images", "state", "actions", "episode_index", "step", "joint_velocities")
MANIFEST_COLUMNS = (
    "task", "uuid", "path", "status", "reason", "length", "instruction", "start", "source_length", "success", "ingest_id",
)


@dataclass(frozen=True)
class IngestConfig:
    """How a task folder becomes a store.

    min_episodes: fewer valid episodes raise ``TooFewEpisodesError`` (paper: 20 demos).
    include_failures: also ingest episodes below ``failure/`` folders (DROID convention).
    chunk_steps: zarr chunk length along N.
    annotations: optional DROID language annotations JSON path.
    feature_map: for a LeRobot dataset, the preset of ``droid.feature_map`` that makes the model inputs (auto: the first that fits).
    """

    read: ReadConfig = field(default_factory=ReadConfig)
    min_episodes: int = 20
    include_failures: bool = False
    chunk_steps: int = 16
    annotations: str | None = None
    feature_map: Literal["auto", "openpi_droid", "openpi_libero", "lerobot"] = "auto"


@dataclass
class IngestResult:
    task: str
    store_path: Path
    manifest_path: Path
    ingest_id: str
    num_episodes: int
    num_steps: int
    lengths: dict[str, int]  # uuid -> stored length
    quarantined: dict[str, str]  # episode path -> reason
    wall_s: float

    @property
    def num_quarantined(self) -> int:
        return len(self.quarantined)

    @property
    def episodes_per_s(self) -> float:
        n = self.num_episodes + self.num_quarantined
        return n / self.wall_s if self.wall_s > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "store_path": str(self.store_path),
            "manifest_path": str(self.manifest_path),
            "ingest_id": self.ingest_id,
            "num_episodes": self.num_episodes,
            "num_quarantined": self.num_quarantined,
            "num_steps": self.num_steps,
            "lengths": dict(self.lengths),
            "quarantined": dict(self.quarantined),
            "wall_s": round(self.wall_s, 3),
        }


def _uuid_guess(ep_dir: Path) -> str:
    p = metadata_path(ep_dir)
    return uuid_from_metadata_name(p) if p is not None else ""


def _create_arrays(g, S: int, chunk: int) -> dict:
    specs = {
        "images": ((0, 2, S, S, 3), "uint8", (chunk, 2, S, S, 3)),
        "state": ((0, STATE_DIM), "float32", (max(chunk, 256), STATE_DIM)),
        "actions": ((0, ACTION_DIM), "float32", (max(chunk, 256), ACTION_DIM)),
        "episode_index": ((0,), "int32", (max(chunk, 1024),)),
        "step": ((0,), "int32", (max(chunk, 1024),)),
        "joint_velocities": ((0, NUM_JOINTS), "float32", (max(chunk, 256), NUM_JOINTS)),
    }
    # write_empty_chunks: every chunk exists on disk even when all fill value, so a
    # missing chunk file always means an interrupted copy/write (checked by open()).
    return {name: g.create_array(name, shape=s, dtype=d, chunks=c, config={"write_empty_chunks": True})
            for name, (s, d, c) in specs.items()}


class _Appender:
    """Append episodes to the store's arrays. Rows are buffered and written in whole
    multiples of the ``images`` chunk length (the rest at ``close``), so each image
    chunk is encoded once; the small arrays are written at the same rows."""

    def __init__(self, arrays: dict):
        self.arrays = arrays
        self.chunk = int(arrays["images"].chunks[0])
        self.pending: dict[str, list[np.ndarray]] = {name: [] for name in arrays}
        self.n_pending = 0
        self.written = 0

    def add(self, ep: Episode, ep_index: int) -> None:
        L = ep.length
        rows = {
            "images": ep.images,
            "state": ep.state.astype(np.float32),
            "actions": ep.actions.astype(np.float32),
            "episode_index": np.full(L, ep_index, dtype=np.int32),
            "step": np.arange(L, dtype=np.int32),
            "joint_velocities": ep.joint_velocities.astype(np.float32),
        }
        for name, data in rows.items():
            self.pending[name].append(data)
        self.n_pending += L
        if self.n_pending >= self.chunk:
            self._flush((self.n_pending // self.chunk) * self.chunk)

    def _flush(self, k: int) -> None:
        if k <= 0:
            return
        start = self.written
        for name, a in self.arrays.items():
            data = np.concatenate(self.pending[name])
            self.pending[name] = [data[k:]] if k < len(data) else []
            a.resize((start + k, *a.shape[1:]))
            a[start : start + k] = data[:k]
        self.written += k
        self.n_pending -= k

    def close(self) -> int:
        self._flush(self.n_pending)
        return self.written


@dataclass(frozen=True)
class EpisodeSource:
    """One episode to ingest, whatever its on-disk format.

    path: what the manifest and the quarantine table name (a folder, a file, or
        ``<file>#episode=<i>`` for one episode of a shared file);
    uuid: the episode id when it is known before reading ("" otherwise);
    read: decodes and validates the episode, raising an ``EpisodeError`` on bad input.
    """

    path: str
    uuid: str
    read: Callable[[], Episode]


def ingest_task(
    task_dir: str | os.PathLike,
    store_dir: str | os.PathLike,
    cfg: IngestConfig = IngestConfig(),
    annotations: dict | None = None,
) -> IngestResult:
    """Decode and validate every DROID raw episode of ``task_dir``; write
    ``<store_dir>/episodes.zarr`` and ``<store_dir>/manifest.parquet`` atomically
    (see ``ingest_episodes``). Raises ``UnsafeTaskNameError`` for a task folder that
    is not a safe partition key."""
    task_dir, store_dir = Path(task_dir), Path(store_dir)
    task = safe_task_name(task_dir.name)
    if not task_dir.is_dir():
        raise E.MissingFileError(task_dir, "", "a task folder of episode folders", "no such directory")
    if annotations is None and cfg.annotations:
        annotations = load_annotations(cfg.annotations)
    sources = [
        EpisodeSource(str(ep_dir), _uuid_guess(ep_dir), functools.partial(read_episode, ep_dir, cfg.read, annotations))
        for ep_dir in find_episode_dirs(task_dir, include_failures=cfg.include_failures)
    ]
    return ingest_episodes(task, sources, store_dir, cfg, origin=task_dir)


def ingest_episodes(
    task: str,
    sources: Sequence[EpisodeSource],
    store_dir: str | os.PathLike,
    cfg: IngestConfig = IngestConfig(),
    origin: str | os.PathLike | None = None,
) -> IngestResult:
    """Read every episode of ``sources`` into ``<store_dir>/episodes.zarr`` and list all
    of them in ``<store_dir>/manifest.parquet``, both written atomically.

    Invalid episodes are quarantined (listed with their reason), never stopping
    the others. Raises ``TooFewEpisodesError`` (nothing written) when fewer than
    ``cfg.min_episodes`` are valid; ``origin`` (the task folder or dataset) names
    the task in that error.
    """
    import polars as pl
    import zarr

    t0 = time.monotonic()
    store_dir = Path(store_dir)
    task = safe_task_name(task)
    origin = Path(origin) if origin is not None else store_dir
    S = cfg.read.image_size
    ingest_id = uuidlib.uuid4().hex[:12]
    rows: list[dict[str, Any]] = []
    quarantined: dict[str, str] = {}
    episodes_attr: list[dict[str, Any]] = []
    lengths: dict[str, int] = {}
    control_hz: float | None = None
    progress = Progress(log, f"ingest {task}", max(1, len(sources)))
    store_path = store_dir / STORE_NAME
    with atomic_dir(store_path) as tmp:
        g = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        appender = _Appender(_create_arrays(g, S, cfg.chunk_steps))
        n = 0
        for src in sources:
            row = {"task": task, "uuid": src.uuid, "path": src.path, "status": "quarantined",
                   "reason": "", "length": 0, "instruction": "", "start": -1, "source_length": 0,
                   "success": None, "ingest_id": ingest_id}
            try:
                ep = src.read()
                if ep.uuid in lengths:
                    raise E.MetadataError(src.path, "uuid", "a uuid unique within the task", f"duplicate {ep.uuid!r}")
                if control_hz is not None and abs(ep.control_hz - control_hz) > 1e-6 * control_hz:
                    raise E.RateError(
                        src.path, "control rate", f"{control_hz:g} Hz like the task's other episodes", f"{ep.control_hz:g} Hz"
                    )
            except E.EpisodeError as e:
                quarantined[src.path] = e.reason
                row["reason"] = e.reason
                log.warning("quarantined %s: %s", src.path, e.reason)
            except Exception as e:  # a bug or an unforeseen file problem must not stop the other episodes
                reason = f"{type(e).__name__}: {src.path}: {e}"
                quarantined[src.path] = reason
                row["reason"] = reason
                log.exception("unexpected error reading %s", src.path)
            else:
                control_hz = ep.control_hz if control_hz is None else control_hz
                appender.add(ep, len(episodes_attr))
                episodes_attr.append({"uuid": ep.uuid, "instruction": ep.instruction, "start": n, "length": ep.length,
                                      "path": src.path})
                lengths[ep.uuid] = ep.length
                row.update(uuid=ep.uuid, status="ok", length=ep.length, instruction=ep.instruction, start=n,
                           source_length=ep.source_length,
                           success=ep.success)
                n += ep.length
            rows.append(row)
            progress.update(1, valid=len(episodes_attr), quarantined=len(quarantined))
        if len(episodes_attr) < cfg.min_episodes:
            raise E.TooFewEpisodesError(origin, len(episodes_attr), cfg.min_episodes, quarantined)
        if appender.close() != n:
            raise RuntimeError(f"{tmp}: wrote {appender.written} rows, expected {n}")
        g.attrs.update({
            "format_version": FORMAT_VERSION,
            "task": task,
            "ingest_id": ingest_id,
            "episodes": episodes_attr,
            "image_size": S,
            "image_resize": RESIZE_METHOD,
            "control_hz": control_hz,
            "num_steps": n,
            "read_config": {k: getattr(cfg.read, k) for k in cfg.read.__dataclass_fields__},
        })
        g.attrs["complete"] = True  # last: a store without it is half-written
    schema = {"task": pl.Utf8, "uuid": pl.Utf8, "path": pl.Utf8, "status": pl.Utf8, "reason": pl.Utf8,
              "length": pl.Int64, "instruction": pl.Utf8, "start": pl.Int64, "source_length": pl.Int64,
              "success": pl.Boolean, "ingest_id": pl.Utf8}
    buf = io.BytesIO()
    pl.DataFrame(rows, schema=schema).write_parquet(buf)
    manifest_path = store_dir / MANIFEST_NAME
    write_bytes_atomic(manifest_path, buf.getvalue())
    wall = time.monotonic() - t0
    log.info("ingested %s: %d episodes (%d steps), %d quarantined in %.1fs", task, len(episodes_attr), n, len(quarantined), wall)
    return IngestResult(task, store_path, manifest_path, ingest_id, len(episodes_attr), n, lengths, quarantined, wall)


def read_manifest(store_dir: str | os.PathLike):
    """The manifest as a polars DataFrame (``store_dir`` or the parquet path)."""
    import polars as pl

    p = Path(store_dir)
    p = p / MANIFEST_NAME if p.is_dir() else p
    if not p.is_file():
        raise E.StoreError(p, "no manifest.parquet: expected one written by ingest_task")
    try:
        return pl.read_parquet(p)
    except Exception as e:
        raise E.StoreError(p, f"unreadable manifest ({type(e).__name__}: {e})") from None


class StaleStoreError(E.StoreError):
    """A complete store whose images went through another resize than ``RESIZE_METHOD``;
    re-ingest the task (materialise ``raw_episodes``)."""


def _check_image_resize(path: Path, attrs: dict) -> None:
    found = attrs.get("image_resize")
    if found != RESIZE_METHOD:
        shown = "no 'image_resize' attribute (square centre crop)" if found is None else repr(found)
        raise StaleStoreError(
            path, f"stale image path: attribute 'image_resize' expected {RESIZE_METHOD!r}, found {shown}; "
            "re-ingest the task (materialise raw_episodes)")


def store_is_current(path: str | os.PathLike) -> bool:
    """True when ``path`` (``<store_dir>`` or its ``episodes.zarr``) holds a complete store written
    with the current image path; False when it is missing, half-written or stale (reads attrs only)."""
    import zarr

    path = Path(path)
    if path.name != STORE_NAME:
        path = path / STORE_NAME
    if not path.is_dir():
        return False
    try:
        attrs = dict(zarr.open_group(str(path), mode="r", zarr_format=3).attrs)
    except Exception:
        return False
    return attrs.get("complete") is True and attrs.get("image_resize") == RESIZE_METHOD


class EpisodeStore:
    """Read-only view of a per-task store. Use ``EpisodeStore.open(path)``."""

    def __init__(self, path: Path, group, attrs: dict):
        self.path = path
        self._group = group
        self.attrs = attrs
        self.episodes: list[dict[str, Any]] = list(attrs["episodes"])
        self.image_size: int = int(attrs["image_size"])
        self.control_hz: float = float(attrs["control_hz"])
        self.task: str = attrs.get("task", "")
        self.ingest_id: str = attrs.get("ingest_id", "")
        self.arrays = {name: group[name] for name in ARRAYS}

    # -- opening and checks ---------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> EpisodeStore:
        """Open ``<store_dir>`` or ``<store_dir>/episodes.zarr``; raise ``StoreError`` if it
        is missing, half-written or inconsistent, :class:`StaleStoreError` if its images went
        through another resize than ``RESIZE_METHOD``."""
        import zarr

        path = Path(path)
        if path.name != STORE_NAME and (path / STORE_NAME).exists():
            path = path / STORE_NAME
        if not path.exists():
            tmps = sorted(path.parent.glob(f"{TMP_PREFIX}{path.name}-*")) if path.parent.exists() else []
            if tmps:
                raise E.StoreError(
                    path,
                    f"half-written: only the temporary {tmps[0].name} exists (an ingest was interrupted); re-run ingest_task",
                )
            raise E.StoreError(path, "no episode store here: expected an episodes.zarr written by ingest_task")
        try:
            g = zarr.open_group(str(path), mode="r", zarr_format=3)
            attrs = dict(g.attrs)
        except Exception as e:
            raise E.StoreError(path, f"not a readable zarr v3 group ({type(e).__name__}: {e})") from None
        if attrs.get("complete") is not True:
            raise E.StoreError(
                path, "half-written: attribute 'complete' is missing (the ingest did not finish); re-run ingest_task"
            )
        for key in ("episodes", "image_size", "control_hz", "num_steps"):
            if key not in attrs:
                raise E.StoreError(path, f"attribute {key!r} missing")
        _check_image_resize(path, attrs)
        N, S = int(attrs["num_steps"]), int(attrs["image_size"])
        expected = {
            "images": ((N, 2, S, S, 3), np.uint8), "state": ((N, STATE_DIM), np.float32),
            "actions": ((N, ACTION_DIM), np.float32), "episode_index": ((N,), np.int32),
            "step": ((N,), np.int32), "joint_velocities": ((N, NUM_JOINTS), np.float32),
        }
        for name, (shape, dtype) in expected.items():
            try:
                a = g[name]
            except Exception as e:
                raise E.StoreError(path, f"array {name!r} missing or unreadable ({type(e).__name__}: {e})") from None
            if tuple(a.shape) != shape or np.dtype(a.dtype) != np.dtype(dtype):
                raise E.StoreError(path, f"array {name!r}: expected {np.dtype(dtype)} {shape}, found {a.dtype} {tuple(a.shape)}")
            if N and a.nchunks_initialized != a.nchunks:
                # a chunk file missing (interrupted copy) would silently read back as zeros
                raise E.StoreError(
                    path, f"array {name!r}: {a.nchunks - a.nchunks_initialized} of {a.nchunks} chunks missing "
                    "(interrupted copy or write); re-run ingest_task")
        pos = 0
        for i, ep in enumerate(attrs["episodes"]):
            if not isinstance(ep, dict) or ep.get("start") != pos or not isinstance(ep.get("length"), int) or ep["length"] < 1:
                raise E.StoreError(path, f"attrs episodes[{i}]: expected {{uuid, instruction, start={pos}, length>=1}}, found {ep!r}")
            pos += ep["length"]
        if pos != N:
            raise E.StoreError(path, f"episode lengths sum to {pos}, expected num_steps={N}")
        manifest = path.parent / MANIFEST_NAME
        if manifest.exists():
            try:
                import pyarrow.parquet as pq

                ids = set(pq.read_table(manifest, columns=["ingest_id"]).column("ingest_id").to_pylist())
            except Exception as e:
                raise E.StoreError(manifest, f"unreadable manifest ({type(e).__name__}: {e})") from None
            if attrs.get("ingest_id") and ids and ids != {attrs["ingest_id"]}:
                raise E.StoreError(
                    manifest,
                    f"belongs to ingest {sorted(ids)}, expected {attrs['ingest_id']!r} (store and manifest from different runs)",
                )
        return cls(path, g, attrs)

    def verify(self) -> None:
        """Read every array completely and check episode_index / step (slow; for asset checks)."""
        try:
            ei = self.arrays["episode_index"][:]
            st = self.arrays["step"][:]
            for name in ("state", "actions", "joint_velocities"):
                a = self.arrays[name][:]
                if not np.all(np.isfinite(a)):
                    raise E.StoreError(self.path, f"array {name!r} contains NaN/inf")
            for start in range(0, self.num_steps, 256):
                self.arrays["images"][start : start + 256]
        except E.StoreError:
            raise
        except Exception as e:
            raise E.StoreError(self.path, f"corrupt chunk ({type(e).__name__}: {e})") from None
        for i, ep in enumerate(self.episodes):
            s, L = ep["start"], ep["length"]
            if not (np.all(ei[s : s + L] == i) and np.array_equal(st[s : s + L], np.arange(L))):
                raise E.StoreError(self.path, f"episode {i} ({ep['uuid']}): episode_index/step rows do not match attrs")

    # -- access ---------------------------------------------------------------------------
    @property
    def num_steps(self) -> int:
        return int(self.attrs["num_steps"])

    @property
    def num_episodes(self) -> int:
        return len(self.episodes)

    def __len__(self) -> int:
        return self.num_episodes

    def episode(self, i: int) -> Episode:
        """Episode ``i`` (0-based) as an ``Episode`` (images loaded)."""
        if not -self.num_episodes <= i < self.num_episodes:
            raise IndexError(f"{self.path}: episode {i} out of range (0..{self.num_episodes - 1})")
        ep = self.episodes[i]
        sl = slice(ep["start"], ep["start"] + ep["length"])
        try:
            data = {name: self.arrays[name][sl] for name in ("images", "state", "actions", "joint_velocities")}
        except Exception as e:
            raise E.StoreError(self.path, f"episode {i}: corrupt chunk ({type(e).__name__}: {e})") from None
        return Episode(
            uuid=ep["uuid"], task_dir=task_dir_of(ep["path"]) if ep.get("path") else self.path.parent,
            instruction=ep["instruction"], state=data["state"], actions=data["actions"],
            joint_velocities=data["joint_velocities"], images=data["images"],
            path=Path(ep["path"]) if ep.get("path") else None, control_hz=self.control_hz,
            source_hz=self.control_hz, source_steps=np.arange(ep["length"]), metadata={"store": str(self.path)},
        )

    def observations(self, rows) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """The model inputs at ``rows`` (any order, repeats allowed, e.g. a batch padded with its last
        row): images uint8 ``[n, 2, S, S, 3]``, state float32 ``[n, 8]`` and each row's episode
        instruction."""
        rows = np.asarray(rows, np.int64)
        images = np.stack([self.arrays["images"][int(r)] for r in rows])
        state = np.asarray(self.arrays["state"].get_orthogonal_selection(rows))
        ep_idx = np.asarray(self.arrays["episode_index"].get_orthogonal_selection(rows))
        return images, state, [self.episodes[int(i)]["instruction"] for i in ep_idx]

    def first_frames(self, max_episodes: int = 8) -> np.ndarray:
        """uint8 [E, 2, S, S, 3]: the first frame of each camera for up to ``max_episodes`` episodes."""
        starts = [ep["start"] for ep in self.episodes[:max_episodes]]
        if not starts:
            return np.zeros((0, 2, self.image_size, self.image_size, 3), np.uint8)
        return np.stack([self.arrays["images"][s] for s in starts])

    def summary(self) -> dict[str, Any]:
        return {"task": self.task, "num_episodes": self.num_episodes, "num_steps": self.num_steps,
                "image_size": self.image_size, "image_resize": self.attrs["image_resize"], "control_hz": self.control_hz, "ingest_id": self.ingest_id,
                "path": str(self.path)}


def thumbnail_strip(frames: np.ndarray | EpisodeStore, max_episodes: int = 8, thumb: int = 96) -> bytes:
    """PNG: one column per episode (up to ``max_episodes``), rows = cameras (exterior, wrist).

    ``frames``: uint8 [E, C, H, W, 3] or an ``EpisodeStore`` (its first frames).
    """
    from PIL import Image

    if isinstance(frames, EpisodeStore):
        frames = frames.first_frames(max_episodes)
    frames = np.asarray(frames)[:max_episodes]
    if frames.ndim != 5 or frames.shape[-1] != 3:
        raise ValueError(f"thumbnail_strip: expected frames [E, C, H, W, 3], found {frames.shape}")
    E_, C = frames.shape[:2]
    pad = 2
    canvas = Image.new("RGB", (max(1, E_) * (thumb + pad) + pad, C * (thumb + pad) + pad), (255, 255, 255))
    for e in range(E_):
        for c in range(C):
            im = Image.fromarray(frames[e, c]).resize((thumb, thumb), Image.Resampling.BILINEAR)
            canvas.paste(im, (pad + e * (thumb + pad), pad + c * (thumb + pad)))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG")
    return buf.getvalue()


def ingest_summary_json(result: IngestResult) -> str:
    return json.dumps(result.as_dict(), indent=2)
