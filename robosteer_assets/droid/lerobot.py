"""Read a LeRobot dataset (codebase v2.1 or v3.0) into the per-task episode store.

A LeRobot dataset root holds ``meta/info.json`` (``codebase_version``, ``fps``,
``features``, the ``data_path`` / ``video_path`` templates, ``chunks_size``), a
task table and an episode table:

* **v2.1**: ``meta/tasks.jsonl`` (``{"task_index", "task"}``), ``meta/episodes.jsonl``
  (``{"episode_index", "tasks", "length"}``); one parquet per episode at
  ``data_path.format(episode_chunk=i // chunks_size, episode_index=i)`` and one MP4 per
  episode and video feature at ``video_path.format(episode_chunk=..., video_key=key,
  episode_index=i)``; frame k of the MP4 is at the row's ``timestamp``.
* **v3.0**: ``meta/tasks.parquet`` (``task_index`` + the task string, stored as the
  ``task`` column or the pandas index), ``meta/episodes/chunk-*/file-*.parquet`` with
  ``data/chunk_index``, ``data/file_index``, ``dataset_from_index``,
  ``dataset_to_index`` and per video key ``videos/<key>/{chunk_index, file_index,
  from_timestamp, to_timestamp}``. Data and video files hold several episodes: an
  episode is the rows whose global ``index`` is in ``[from, to)`` and the video span
  ``[from_timestamp, to_timestamp)``; its frame k is at ``from_timestamp + timestamp``.

Video features are decoded with PyAV, seeking to the episode's start time (any codec
the installed FFmpeg decodes: H.264, AV1, ...); image features are PNG / JPEG bytes
inside the parquet (a struct ``{bytes, path}``). Parquet is read with polars.

``read_lerobot_episode`` returns the same ``Episode`` as ``droid.reader.read_episode``:
the features named by a ``droid.feature_map`` mapping, images through the reader's
``frame_to_image``, the dataset's ``fps`` resampled to ``ReadConfig.target_hz`` with the
reader's ``resample_indices`` / ``resample_joint_velocity_command``. Problems of one
episode raise ``EpisodeError`` subclasses naming the file and the field (the episode is
quarantined by ``ingest_lerobot_task``); problems of the whole dataset (no readable
``info.json``, an unsupported ``codebase_version``, missing task / episode tables,
features that fit no mapping) raise ``DatasetError``.

Task partitions: one per task string of the dataset, named ``layout.task_slug(task)``;
an episode belongs to the task of its first ``tasks`` entry in the episode table.
"""

from __future__ import annotations

import functools
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from robosteer_assets.droid import errors as E
from robosteer_assets.droid.episode import NUM_JOINTS, Episode
from robosteer_assets.droid.feature_map import MappingError, ResolvedMapping, resolve_mapping
from robosteer_assets.droid.layout import task_slug
from robosteer_assets.droid.reader import ReadConfig, frame_to_image, resample_indices, resample_joint_velocity_command

INFO_FILE = Path("meta") / "info.json"
SUPPORTED_VERSIONS = ("v2.1", "v3.0")
DEFAULT_PATHS = {
    "v2.1": ("data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet",
             "videos/chunk-{episode_chunk:03d}/{video_key}/episode_{episode_index:06d}.mp4"),
    "v3.0": ("data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
             "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"),
}


# ----------------------------------------------------------------------------- dataset metadata


@dataclass(frozen=True)
class VideoRef:
    """Where one episode's frames of one video feature are: ``path`` and the span
    ``[from_s, to_s)`` inside it (``to_s`` None: to the end of the file)."""

    path: Path
    from_s: float = 0.0
    to_s: float | None = None


@dataclass(frozen=True)
class EpisodeRef:
    """One episode as the metadata describes it (nothing decoded)."""

    index: int
    length: int
    tasks: tuple[str, ...]
    data_file: Path
    rows: tuple[int, int] | None  # v3.0: global index range [from, to); v2.1: the whole file
    videos: dict[str, VideoRef] = field(default_factory=dict)

    @property
    def uuid(self) -> str:
        return f"episode_{self.index:06d}"

    @property
    def source(self) -> str:
        """How the manifest names the episode: its parquet, plus ``#episode=i`` for a shared file."""
        return str(self.data_file) if self.rows is None else f"{self.data_file}#episode={self.index}"


@dataclass(frozen=True)
class LeRobotDataset:
    root: Path
    version: str
    fps: float
    features: dict[str, dict[str, Any]]
    tasks: dict[int, str]  # task_index -> task string
    episodes: tuple[EpisodeRef, ...]
    info: dict[str, Any]

    @property
    def info_path(self) -> Path:
        return self.root / INFO_FILE

    @property
    def tasks_file(self) -> Path:
        return self.root / "meta" / ("tasks.jsonl" if self.version == "v2.1" else "tasks.parquet")

    def feature_dtype(self, key: str) -> str | None:
        spec = self.features.get(key)
        return spec.get("dtype") if isinstance(spec, dict) else None

    def meta_files(self) -> list[Path]:
        """Every metadata file (for fingerprints)."""
        meta = self.root / "meta"
        return sorted(p for p in meta.rglob("*") if p.is_file() and not p.name.startswith("."))


def is_lerobot_root(path: str | os.PathLike) -> bool:
    """True when ``path`` is a LeRobot dataset root (it has ``meta/info.json``)."""
    return (Path(path) / INFO_FILE).is_file()


def _read_json(path: Path) -> Any:
    if not path.is_file():
        raise E.DatasetError(path, "", "a JSON file", "no such file")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise E.DatasetError(path, "", "valid JSON", f"parse error: {e}") from None


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise E.DatasetError(path, "", "a JSON-lines file", "no such file")
    out = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise E.DatasetError(path, f"line {n}", "one JSON object per line", f"parse error: {e}") from None
        if not isinstance(rec, dict):
            raise E.DatasetError(path, f"line {n}", "a JSON object", type(rec).__name__)
        out.append(rec)
    return out


def _read_meta_parquet(paths: list[Path], what: str):
    import polars as pl

    if not paths:
        raise E.DatasetError(what, "", "parquet file(s)", "none")
    try:
        return pl.concat([pl.read_parquet(p) for p in paths], how="diagonal_relaxed")
    except Exception as e:
        raise E.DatasetError(paths[0], "", "readable parquet", f"{type(e).__name__}: {e}") from None


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, (int, np.integer)) and not isinstance(v, bool) else None


def _check_info(path: Path, info: Any) -> tuple[str, float, dict, str, str | None, int]:
    if not isinstance(info, dict):
        raise E.DatasetError(path, "", "a JSON object", type(info).__name__)
    version = info.get("codebase_version")
    if version not in SUPPORTED_VERSIONS:
        raise E.DatasetError(path, "codebase_version", f"one of {', '.join(SUPPORTED_VERSIONS)}", repr(version))
    fps = info.get("fps")
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not np.isfinite(fps) or fps <= 0:
        raise E.DatasetError(path, "fps", "a positive frame rate", repr(fps))
    features = info.get("features")
    if not isinstance(features, dict) or not all(isinstance(v, dict) for v in features.values()):
        raise E.DatasetError(path, "features", "an object {name: {dtype, shape, ...}}", type(features).__name__)
    data_tpl, video_tpl = DEFAULT_PATHS[version]
    data_path = info.get("data_path") or data_tpl
    video_path = info.get("video_path") or (video_tpl if any(v.get("dtype") == "video" for v in features.values())
                                            else None)
    for key, tpl in (("data_path", data_path), ("video_path", video_path)):
        if tpl is not None and not isinstance(tpl, str):
            raise E.DatasetError(path, key, "a path template string", repr(tpl))
    chunks = info.get("chunks_size", 1000)
    if _int(chunks) is None or chunks < 1:
        raise E.DatasetError(path, "chunks_size", "a positive integer", repr(chunks))
    return version, float(fps), features, data_path, video_path, int(chunks)


def _fmt(tpl: str, path: Path, key: str, **kw) -> str:
    try:
        return tpl.format(**kw)
    except (KeyError, IndexError, ValueError) as e:
        raise E.DatasetError(path, key, f"a template using {sorted(kw)}", f"{tpl!r} ({type(e).__name__}: {e})") from None


def open_dataset(root: str | os.PathLike) -> LeRobotDataset:
    """Parse a dataset's metadata (no data or video read); raises ``DatasetError``."""
    root = Path(root)
    info_path = root / INFO_FILE
    if not info_path.is_file():
        raise E.DatasetError(info_path, "", "a LeRobot dataset's meta/info.json", "no such file")
    info = _read_json(info_path)
    version, fps, features, data_tpl, video_tpl, chunks = _check_info(info_path, info)
    video_keys = sorted(k for k, v in features.items() if v.get("dtype") == "video")
    if version == "v2.1":
        tasks_path = root / "meta" / "tasks.jsonl"
        tasks = {}
        for n, rec in enumerate(_read_jsonl(tasks_path), 1):
            ti, text = _int(rec.get("task_index")), rec.get("task")
            if ti is None or not isinstance(text, str):
                raise E.DatasetError(tasks_path, f"line {n}", '{"task_index": int, "task": str}', json.dumps(rec)[:200])
            tasks[ti] = text
        ep_path = root / "meta" / "episodes.jsonl"
        episodes = []
        for n, rec in enumerate(_read_jsonl(ep_path), 1):
            i, length, ep_tasks = _int(rec.get("episode_index")), _int(rec.get("length")), rec.get("tasks")
            if i is None or length is None or not isinstance(ep_tasks, list) or not all(isinstance(t, str) for t in ep_tasks):
                raise E.DatasetError(ep_path, f"line {n}", '{"episode_index": int, "tasks": [str], "length": int}',
                                     json.dumps(rec)[:200])
            chunk = i // chunks
            data = root / _fmt(data_tpl, info_path, "data_path", episode_chunk=chunk, episode_index=i)
            videos = {k: VideoRef(root / _fmt(video_tpl, info_path, "video_path", episode_chunk=chunk, video_key=k,
                                              episode_index=i)) for k in video_keys}
            episodes.append(EpisodeRef(i, length, tuple(ep_tasks), data, None, videos))
    else:
        tasks_path = root / "meta" / "tasks.parquet"
        if not tasks_path.is_file():
            raise E.DatasetError(tasks_path, "", "the task table meta/tasks.parquet", "no such file")
        tdf = _read_meta_parquet([tasks_path], str(tasks_path))
        text_col = next((c for c in ("task", "__index_level_0__") if c in tdf.columns), None)
        if "task_index" not in tdf.columns or text_col is None:
            raise E.DatasetError(tasks_path, "", "columns task_index and task", f"columns {tdf.columns}")
        tasks = {int(i): str(t) for i, t in zip(tdf["task_index"].to_list(), tdf[text_col].to_list())}
        ep_files = sorted((root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))
        edf = _read_meta_parquet(ep_files, str(root / "meta" / "episodes"))
        need = ["episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
                "dataset_from_index", "dataset_to_index"]
        need += [f"videos/{k}/{c}" for k in video_keys for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
        missing = [c for c in need if c not in edf.columns]
        if missing:
            raise E.DatasetError(ep_files[0], missing[0], "a column of the v3.0 episode table", "no such column")
        episodes = []
        for rec in edf.sort("episode_index").iter_rows(named=True):
            i = int(rec["episode_index"])
            data = root / _fmt(data_tpl, info_path, "data_path", chunk_index=int(rec["data/chunk_index"]),
                               file_index=int(rec["data/file_index"]))
            videos = {}
            for k in video_keys:
                p = root / _fmt(video_tpl, info_path, "video_path", video_key=k,
                                chunk_index=int(rec[f"videos/{k}/chunk_index"]), file_index=int(rec[f"videos/{k}/file_index"]))
                videos[k] = VideoRef(p, float(rec[f"videos/{k}/from_timestamp"]), float(rec[f"videos/{k}/to_timestamp"]))
            ep_tasks = tuple(str(t) for t in (rec["tasks"] or []))
            rows = (int(rec["dataset_from_index"]), int(rec["dataset_to_index"]))
            episodes.append(EpisodeRef(i, int(rec["length"]), ep_tasks, data, rows, videos))
    return LeRobotDataset(root, version, fps, features, tasks, tuple(episodes), info)


def task_partitions(ds: LeRobotDataset, tasks: str | list[str] | tuple[str, ...] | None = None) -> dict[str, list[EpisodeRef]]:
    """Task slug -> the dataset's episodes of that task (first ``tasks`` entry); only the
    tasks named in ``tasks`` (exact task strings or their slugs) when it is given."""
    out: dict[str, list[EpisodeRef]] = {}
    for ep in ds.episodes:
        text = ep.tasks[0] if ep.tasks else ""
        try:
            slug = task_slug(text)
        except E.UnsafeTaskNameError:
            continue
        out.setdefault(slug, []).append(ep)
    if tasks is not None:
        wanted = [tasks] if isinstance(tasks, str) else list(tasks)
        keep = set()
        for w in wanted:
            if w in out:
                keep.add(w)
            else:
                try:
                    keep.add(task_slug(w))
                except E.UnsafeTaskNameError:
                    pass
        out = {k: v for k, v in out.items() if k in keep}
    return out


def episodes_of_task(ds: LeRobotDataset, task: str) -> list[EpisodeRef]:
    """The episodes of one task (slug or exact task string); raises ``DatasetError`` when none."""
    parts = task_partitions(ds, task)
    if not parts:
        raise E.DatasetError(ds.root / "meta", "tasks", f"episodes of task {task!r}",
                             f"the tasks {sorted(task_partitions(ds))}")
    return next(iter(parts.values()))


# ----------------------------------------------------------------------------- one episode


def _read_rows(ds: LeRobotDataset, ref: EpisodeRef, columns: list[str]):
    """The episode's rows of ``columns`` (polars DataFrame), checked against the episode table."""
    import polars as pl

    f = ref.data_file
    if not f.is_file():
        raise E.MissingFileError(f, "", f"the data parquet of episode {ref.index} (info.json data_path)", "no such file")
    try:
        schema = pl.read_parquet_schema(f)
    except Exception as e:
        raise E.CorruptFileError(f, "", "a readable parquet file", f"{type(e).__name__}: {e}") from None
    for c in columns:
        if c not in schema:
            raise E.MissingFieldError(f, c, f"a column for feature {c!r} (info.json features)", "no such column")
    extra = [c for c in ("index", "episode_index", "timestamp", "frame_index", "task_index") if c in schema]
    cols = list(dict.fromkeys([*columns, *extra]))
    try:
        lf = pl.scan_parquet(f).select(cols)
        if ref.rows is not None:
            a, b = ref.rows
            lf = lf.filter((pl.col("index") >= a) & (pl.col("index") < b)) if "index" in schema else \
                lf.filter(pl.col("episode_index") == ref.index)
        df = lf.collect()
    except Exception as e:
        raise E.CorruptFileError(f, "", "a readable parquet file", f"{type(e).__name__}: {e}") from None
    if "frame_index" in df.columns:
        df = df.sort("frame_index")
    elif "index" in df.columns:
        df = df.sort("index")
    table = "meta/episodes.jsonl" if ds.version == "v2.1" else "meta/episodes"
    if df.height != ref.length:
        where = "rows" if ref.rows is None else f"rows with index in [{ref.rows[0]}, {ref.rows[1]})"
        raise E.LengthMismatchError(f, "length", f"{ref.length} rows (the episode's length in {table})",
                                    f"{df.height} {where}")
    if df.height < 1:
        raise E.ShapeError(f, "length", "at least one frame", "0 rows")
    if "episode_index" in df.columns:
        bad = df.filter(pl.col("episode_index") != ref.index)
        if bad.height:
            raise E.MetadataError(f, "episode_index", f"{ref.index} on every row of the episode",
                                  f"{bad['episode_index'][0]} on {bad.height} rows")
    return df


def _numeric(df, f: Path, col: str, width: int) -> np.ndarray:
    """A numeric feature column as float64 ``[T, width]``; ``ShapeError`` for another width."""
    import polars as pl

    s = df[col]
    try:
        if isinstance(s.dtype, pl.Array):
            arr = s.to_numpy()
        elif isinstance(s.dtype, pl.List):
            lens = s.list.len().to_numpy()
            if len(set(lens.tolist())) > 1:
                k = int(np.nonzero(lens != lens[0])[0][0])
                raise E.ShapeError(f, col, f"{width} values per frame (info.json shape)",
                                   f"{lens[0]} at frame 0 and {lens[k]} at frame {k}")
            arr = np.asarray(s.list.to_array(int(lens[0])).to_numpy()) if len(s) else np.zeros((0, width))
        elif s.dtype.is_numeric() or s.dtype == pl.Boolean:
            arr = s.to_numpy()[:, None]
        else:
            raise E.DTypeError(f, col, "a numeric feature (float / int lists)", f"parquet type {s.dtype}")
        arr = np.asarray(arr, dtype=np.float64).reshape(len(s), -1)
    except E.EpisodeError:
        raise
    except (TypeError, ValueError) as e:
        raise E.DTypeError(f, col, "numeric values", f"{type(e).__name__}: {e}") from None
    if arr.shape[1] != width:
        raise E.ShapeError(f, col, f"{width} values per frame (info.json shape)", f"{arr.shape[1]} values per frame")
    finite = np.isfinite(arr)
    if not finite.all():
        first = int(np.nonzero(~finite.all(axis=1))[0][0])
        raise E.NonFiniteError(f, col, "finite values", f"{int((~finite).sum())} NaN/inf values (first at frame {first})")
    return arr


def decode_video_span(mp4: Path, key: str, start_s: float, end_s: float | None, times: np.ndarray, fps: float,
                      size: int, stereo_min_aspect: float = 2.5, expected: int | None = None) -> np.ndarray:
    """Frames of ``mp4`` at episode-local ``times`` (seconds after ``start_s``) through
    ``frame_to_image`` ``[K, size, size, 3]``. Raises ``FrameCountError`` when the span
    ``[start_s, end_s)`` (``end_s`` None: to the end of the file) does not hold ``expected``
    frames (when given) or a requested time has no frame.

    Seeks to the keyframe before ``start_s`` and decodes forward; a frame at time t
    belongs to the span when ``start_s - h <= t < end_s - h`` and is the frame of the
    requested time within ``h`` (h = half a frame period) of ``t - start_s``."""
    import av

    if not mp4.is_file():
        raise E.MissingFileError(mp4, key, f"the video of feature {key!r} (info.json video_path)", "no such file")
    times = np.asarray(times, dtype=np.float64)
    out = np.zeros((len(times), size, size, 3), dtype=np.uint8)
    got = np.zeros(len(times), dtype=bool)
    h = 0.5 / fps
    n = 0
    try:
        with av.open(str(mp4)) as c:
            if not c.streams.video:
                raise E.VideoError(mp4, key, "a video stream", "none")
            stream = c.streams.video[0]
            stream.thread_type = "AUTO"
            tb = float(stream.time_base) if stream.time_base else 1.0 / fps
            if start_s > h:
                c.seek(int(max(0.0, start_s - h) / tb), stream=stream, backward=True, any_frame=False)
            seq = 0
            for frame in c.decode(stream):
                t = frame.pts * tb if frame.pts is not None else seq / fps
                seq += 1
                if t < start_s - h:
                    continue
                if end_s is not None and t >= end_s - h:
                    break
                n += 1
                rel = t - start_s
                k = int(np.argmin(np.abs(times - rel))) if len(times) else -1
                if k >= 0 and not got[k] and abs(times[k] - rel) < h:
                    out[k] = frame_to_image(frame.to_ndarray(format="rgb24"), size, stereo_min_aspect)
                    got[k] = True
    except E.EpisodeError:
        raise
    except Exception as e:  # av.error.*: an undecodable file or codec
        raise E.VideoError(mp4, key, "a video PyAV can decode (H.264, AV1, ...)", f"{type(e).__name__}: {e}") from None
    if expected is not None and n != expected:
        span = "" if end_s is None else f" in [{start_s:.3f}, {end_s:.3f}) s"
        raise E.FrameCountError(mp4, key, f"{expected} frames{span} (one per row of the episode)", f"{n} frames")
    if not got.all():
        k = int(np.nonzero(~got)[0][0])
        raise E.FrameCountError(mp4, key, f"a frame at t={start_s + times[k]:.4f} s (row timestamp {times[k]:.4f} s)",
                                f"none within {h * 1000:.1f} ms ({n} frames in the span)")
    return out


def _inline_images(df, f: Path, key: str, rows: np.ndarray, root: Path, size: int, stereo_min_aspect: float) -> np.ndarray:
    """Image feature stored in the parquet (``{bytes, path}`` struct, or raw bytes) at ``rows``."""
    from PIL import Image

    s = df[key]
    out = np.zeros((len(rows), size, size, 3), dtype=np.uint8)
    for j, r in enumerate(rows):
        v = s[int(r)]
        data, rel = (v.get("bytes"), v.get("path")) if isinstance(v, dict) else (v, None)
        try:
            if data is None and rel:
                p = Path(rel) if Path(rel).is_absolute() else root / rel
                data = p.read_bytes()
            if data is None:
                raise E.MissingFieldError(f, key, f"image bytes at frame {int(r)}", "null")
            with Image.open(io.BytesIO(data)) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except E.EpisodeError:
            raise
        except Exception as e:  # PIL.UnidentifiedImageError, OSError
            raise E.CorruptFileError(f, key, f"PNG/JPEG bytes at frame {int(r)}", f"{type(e).__name__}: {e}") from None
        out[j] = frame_to_image(arr, size, stereo_min_aspect)
    return out


def read_lerobot_episode(ds: LeRobotDataset, ref: EpisodeRef, mapping: ResolvedMapping,
                         cfg: ReadConfig = ReadConfig()) -> Episode:
    """Decode and validate one episode; raises an ``EpisodeError`` subclass on bad input."""
    f = ref.data_file
    cams = mapping.cameras
    inline = [k for k in cams if ds.feature_dtype(k) == "image"]
    df = _read_rows(ds, ref, [*mapping.numeric, *inline])
    T = df.height
    cols = {c: _numeric(df, f, c, mapping.widths[c]) for c in mapping.numeric}

    if "task_index" in df.columns:
        ti = df["task_index"].to_numpy()
        bad = [int(v) for v in np.unique(ti) if int(v) not in ds.tasks]
        if bad:
            raise E.UnknownTaskError(f, "task_index", f"a task_index listed in {ds.tasks_file.name} {sorted(ds.tasks)}",
                                     f"{bad[0]}")
        instruction = ds.tasks[int(ti[0])]
    elif ref.tasks:
        instruction = ref.tasks[0]
    else:
        raise E.MissingFieldError(f, "task_index", "the episode's task (task_index column or episode table tasks)", "none")

    if "timestamp" in df.columns:
        ts = df["timestamp"].to_numpy().astype(np.float64).reshape(T, -1)[:, 0]
    elif "frame_index" in df.columns:
        ts = df["frame_index"].to_numpy().astype(np.float64) / ds.fps
    else:
        ts = np.arange(T) / ds.fps
    src_hz = ds.fps if cfg.source_hz is None else float(cfg.source_hz)
    try:
        idx = resample_indices(T, src_hz, cfg.target_hz, cfg.rate_tolerance)
    except ValueError as e:
        raise E.RateError(ds.info_path, "fps", f"a rate >= target_hz={cfg.target_hz:g}", f"{src_hz:g} Hz ({e})") from None
    out_hz = src_hz if len(idx) == T else float(cfg.target_hz)

    frames = []
    for key in cams:
        if key in inline:
            frames.append(_inline_images(df, f, key, idx, ds.root, cfg.image_size, cfg.stereo_min_aspect))
            continue
        v = ref.videos.get(key)
        if v is None:
            raise E.MissingFieldError(ds.info_path, f"features.{key}", "a video or image feature", repr(ds.feature_dtype(key)))
        frames.append(decode_video_span(v.path, key, v.from_s, v.to_s, ts[idx], ds.fps, cfg.image_size,
                                        cfg.stereo_min_aspect, expected=T))

    state = mapping.state(cols)
    actions = mapping.actions(cols)
    if mapping.joint_velocities:
        jv = cols[mapping.joint_velocities]
    elif T > 1:
        jv = np.gradient(state[:, :NUM_JOINTS], 1.0 / src_hz, axis=0)
    else:
        jv = np.zeros((T, NUM_JOINTS))
    stride = src_hz / cfg.target_hz if cfg.target_hz else 1.0
    arm = resample_joint_velocity_command(actions[:, :NUM_JOINTS], idx, stride, mapping.mapping.action_resample)
    return Episode(
        uuid=ref.uuid,
        task_dir=ds.root,
        instruction=instruction,
        state=state[idx].astype(np.float32),
        actions=np.concatenate([arm, actions[idx, NUM_JOINTS:]], axis=1).astype(np.float32),
        joint_velocities=jv[idx].astype(np.float32),
        images=np.stack(frames, axis=1),
        path=f,
        control_hz=out_hz,
        source_hz=src_hz,
        source_steps=idx,
        source_length=T,
        success=True,
        metadata={"format": "lerobot", "codebase_version": ds.version, "root": str(ds.root),
                  "episode_index": ref.index, "mapping": mapping.describe()},
    )


# ----------------------------------------------------------------------------- task / dataset level


def _mapping(ds: LeRobotDataset, mapping) -> ResolvedMapping:
    try:
        return resolve_mapping(ds.features, mapping, str(ds.info_path))
    except MappingError as e:
        raise E.DatasetError(ds.info_path, "features", f"features that fit the mapping {mapping!r}", str(e)) from None


def ingest_lerobot_task(root: str | os.PathLike, task: str, store_dir: str | os.PathLike, cfg=None,
                        mapping=None):
    """Ingest one task (slug or exact task string) of a LeRobot dataset into
    ``<store_dir>/episodes.zarr`` + ``manifest.parquet`` with ``droid.store.ingest_episodes``
    (same arrays, attrs, atomic write and quarantine as raw DROID ingest). ``cfg`` is a
    ``droid.store.IngestConfig`` (its ``read`` gives image size and target rate); ``mapping``
    is "auto", a preset name or a ``FeatureMapping`` (default: ``cfg.feature_map``)."""
    from robosteer_assets.droid.store import EpisodeSource, IngestConfig, ingest_episodes

    cfg = cfg or IngestConfig()
    ds = open_dataset(root)
    resolved = _mapping(ds, cfg.feature_map if mapping is None else mapping)
    refs = episodes_of_task(ds, task)
    sources = [EpisodeSource(ref.source, ref.uuid, functools.partial(read_lerobot_episode, ds, ref, resolved, cfg.read))
               for ref in refs]
    return ingest_episodes(task_slug(refs[0].tasks[0]), sources, store_dir, cfg, origin=ds.root)


@dataclass(frozen=True)
class EpisodeCheck:
    task: str  # slug
    ref: EpisodeRef
    error: E.EpisodeError | None


def validate_dataset(root: str | os.PathLike, cfg: ReadConfig = ReadConfig(), mapping="auto",
                     tasks: list[str] | None = None) -> list[EpisodeCheck]:
    """Read every episode (of ``tasks`` when given) as ingest would; one ``EpisodeCheck``
    per episode. Raises ``DatasetError`` for a dataset-level problem."""
    ds = open_dataset(root)
    resolved = _mapping(ds, mapping)
    out = []
    parts = task_partitions(ds, tasks)
    if tasks is None:  # episodes no partition takes: their task string has no letters or digits
        placed = {r.index for refs in parts.values() for r in refs}
        table = ds.root / "meta" / ("episodes.jsonl" if ds.version == "v2.1" else "episodes")
        for ref in ds.episodes:
            if ref.index not in placed:
                err = E.MetadataError(table, f"episode {ref.index} tasks", "a task string with ASCII letters or digits",
                                      repr(list(ref.tasks)))
                out.append(EpisodeCheck("", ref, err))
    for slug, refs in parts.items():
        for ref in refs:
            try:
                read_lerobot_episode(ds, ref, resolved, cfg)
                err = None
            except E.EpisodeError as e:
                err = e
            out.append(EpisodeCheck(slug, ref, err))
    return out
