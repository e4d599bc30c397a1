"""LeRobot datasets (v2.1 and v3.0) -> the per-task episode store, compared with the same
demonstrations through raw DROID ingest; feature mappings; quarantine of bad episodes."""

from __future__ import annotations

import io
import json
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from robosteer_assets.cli import main as cli_main
from robosteer_assets.droid import errors as E
from robosteer_assets.droid.feature_map import (LEROBOT, OPENPI_DROID, OPENPI_LIBERO, MappingError, detect_preset,
                                                to_store_layout)
from robosteer_assets.droid.layout import episode_dir_for, task_slug
from robosteer_assets.droid.lerobot import (ingest_lerobot_task, open_dataset, read_lerobot_episode, task_partitions,
                                            validate_dataset)
from robosteer_assets.droid.lerobot_writer import write_lerobot_dataset
from robosteer_assets.droid.reader import ReadConfig
from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task
from robosteer_assets.droid.synthetic import make_recording
from robosteer_assets.droid.writer import write_episode, write_mp4

S = 32
CFG = IngestConfig(read=ReadConfig(image_size=S), min_episodes=1)
TASK_A, TASK_B = "pick up the red cube", "Open the drawer!"


@pytest.fixture(scope="module")
def recordings():
    """Three 15 Hz episodes with non-square frames: two of task A, one of task B."""
    return [make_recording(T=30, seed=10 + i, image_size=(48, 64), control_hz=15.0,
                           instruction=TASK_A if i < 2 else TASK_B) for i in range(3)]


@pytest.fixture(scope="module")
def template(tmp_path_factory, recordings) -> Path:
    return write_lerobot_dataset(tmp_path_factory.mktemp("lerobot") / "ds", recordings)


@pytest.fixture
def dataset(tmp_path, template) -> Path:
    """A fresh copy of the v2.1 template."""
    dst = tmp_path / "ds"
    shutil.copytree(template, dst)
    return dst


def _stores_equal(a: EpisodeStore, b: EpisodeStore, image_tol: float = 0.0, velocities: bool = True) -> None:
    """Same episodes (matched by length and first state row), same arrays; images within ``image_tol``
    mean absolute difference. ``velocities=False``: ``b`` had no joint-velocity feature, so its
    velocities must be the finite difference of its joint positions."""
    assert a.num_episodes == b.num_episodes and a.num_steps == b.num_steps
    assert (a.image_size, a.control_hz) == (b.image_size, b.control_hz)
    for k in ("image_resize", "format_version", "read_config"):
        assert a.attrs[k] == b.attrs[k], k
    unmatched = list(range(a.num_episodes))
    for j in range(b.num_episodes):
        eb = b.episode(j)
        i = min(unmatched, key=lambda i: (a.episodes[i]["length"] != eb.length,
                                          float(np.abs(a.episode(i).state[0] - eb.state[0]).sum())))
        unmatched.remove(i)
        ea = a.episode(i)
        assert ea.instruction == eb.instruction and ea.length == eb.length
        np.testing.assert_allclose(eb.state, ea.state, atol=1e-6)
        np.testing.assert_allclose(eb.actions, ea.actions, atol=1e-6)
        if velocities:
            np.testing.assert_allclose(eb.joint_velocities, ea.joint_velocities, atol=1e-5)
        else:
            np.testing.assert_allclose(eb.joint_velocities, np.gradient(eb.state[:, :7], 1 / b.control_hz, axis=0),
                                       atol=1e-4)
        diff = np.abs(ea.images.astype(np.int16) - eb.images.astype(np.int16))
        assert diff.mean() <= image_tol, (j, diff.mean())


# ----------------------------------------------------------------------------- round trips


def test_sim_demos_as_lerobot_ingest_like_raw_droid(tmp_path):
    """`robosteer sim demos --format lerobot` and the same demos in DROID's raw layout give the same store."""
    common = ["sim", "demos", "--task", "pick_cube", "--episodes", "2", "--image-size", "64", "--seed", "3"]
    assert cli_main([*common, "--out", str(tmp_path / "lerobot"), "--format", "lerobot"]) == 0
    assert cli_main([*common, "--out", str(tmp_path / "droid")]) == 0
    info = json.loads((tmp_path / "lerobot" / "meta" / "info.json").read_text())
    assert info["codebase_version"] == "v2.1" and info["fps"] == 6 and info["total_episodes"] == 2
    assert info["features"]["exterior_image_1_left"]["info"]["video.codec"] == "h264"
    ds = open_dataset(tmp_path / "lerobot")
    assert list(task_partitions(ds)) == ["pick_up_red_cube"]
    raw = ingest_task(tmp_path / "droid" / "pick_cube", tmp_path / "store_raw", CFG)
    lr = ingest_lerobot_task(tmp_path / "lerobot", "pick_up_red_cube", tmp_path / "store_lr", CFG)
    assert lr.task == "pick_up_red_cube" and lr.num_quarantined == 0
    _stores_equal(EpisodeStore.open(raw.store_path), EpisodeStore.open(lr.store_path), image_tol=1.0)
    # the export refuses to overwrite an existing dataset
    assert cli_main([*common, "--out", str(tmp_path / "lerobot"), "--format", "lerobot"]) == 1


def test_v21_resampled_15_to_6_hz_matches_raw_droid(tmp_path, recordings, template):
    for rec in recordings[:2]:
        write_episode(episode_dir_for(tmp_path / "demos", "a", rec.uuid), rec)
    raw = ingest_task(tmp_path / "demos" / "a", tmp_path / "raw", CFG)
    lr = ingest_lerobot_task(template, TASK_A, tmp_path / "lr", CFG)
    a, b = EpisodeStore.open(raw.store_path), EpisodeStore.open(lr.store_path)
    assert b.control_hz == 6.0 and b.num_episodes == 2 and b.task == task_slug(TASK_A)
    _stores_equal(a, b, image_tol=1.0)
    m = lr.manifest_path
    rows = pl.read_parquet(m)
    assert rows["status"].to_list() == ["ok", "ok"] and rows["source_length"].to_list() == [30, 30]


def _encode(path: Path, frames: np.ndarray, fps: float, codec: str, options: dict) -> None:
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", format="mp4") as c:
        st = c.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), options=options)
        st.width, st.height, st.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for f in frames:
            for p in st.encode(__import__("av").VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)


def test_v30_two_episodes_in_one_file_h264_and_av1(tmp_path):
    """A hand-built v3.0 dataset: both episodes in one data file and one video file per camera
    (exterior H.264, wrist AV1), LeRobot's feature names; located by index range and timestamps."""
    fps = 6.0
    recs = [make_recording(T=T, seed=40 + i, image_size=64, control_hz=fps, instruction=TASK_A)
            for i, T in enumerate((14, 11))]
    root = tmp_path / "v3"
    rows, eps, start = [], [], 0
    for i, r in enumerate(recs):
        T = r.num_steps
        state = np.concatenate([r.joint_positions, r.gripper_positions[:, None]], 1).astype(np.float32)
        action = np.concatenate([r.action_joint_velocity, r.action_gripper_position[:, None]], 1).astype(np.float32)
        rows.append(pl.DataFrame([
            pl.Series("observation.state", state, dtype=pl.Array(pl.Float32, 8)),
            pl.Series("action", action, dtype=pl.Array(pl.Float32, 8)),
            pl.Series("timestamp", (np.arange(T) / fps).astype(np.float32)),
            pl.Series("frame_index", np.arange(T, dtype=np.int64)),
            pl.Series("episode_index", np.full(T, i, dtype=np.int64)),
            pl.Series("index", start + np.arange(T, dtype=np.int64)),
            pl.Series("task_index", np.zeros(T, dtype=np.int64)),
        ]))
        ep = {"episode_index": i, "tasks": [TASK_A], "length": T, "data/chunk_index": 0, "data/file_index": 0,
              "dataset_from_index": start, "dataset_to_index": start + T}
        for key in ("observation.images.exterior_1_left", "observation.images.wrist_left"):
            ep.update({f"videos/{key}/chunk_index": 0, f"videos/{key}/file_index": 0,
                       f"videos/{key}/from_timestamp": start / fps, f"videos/{key}/to_timestamp": (start + T) / fps})
        eps.append(ep)
        start += T
    (root / "data" / "chunk-000").mkdir(parents=True)
    pl.concat(rows).write_parquet(root / "data" / "chunk-000" / "file-000.parquet")
    (root / "meta" / "episodes" / "chunk-000").mkdir(parents=True)
    pl.DataFrame(eps).write_parquet(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    pl.DataFrame({"task_index": [0], "__index_level_0__": [TASK_A]}).write_parquet(root / "meta" / "tasks.parquet")
    ext = np.concatenate([r.exterior_frames for r in recs])
    wrist = np.concatenate([r.wrist_frames for r in recs])
    vid = root / "videos" / "{}" / "chunk-000" / "file-000.mp4"
    _encode(Path(str(vid).format("observation.images.exterior_1_left")), ext, fps, "libx264", {"crf": "18"})
    _encode(Path(str(vid).format("observation.images.wrist_left")), wrist, fps, "libsvtav1", {"crf": "20", "preset": "12"})
    video = {"dtype": "video", "shape": [64, 64, 3], "names": ["height", "width", "channel"]}
    info = {"codebase_version": "v3.0", "fps": 6, "robot_type": "panda", "chunks_size": 1000,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": {"observation.images.exterior_1_left": video, "observation.images.wrist_left": video,
                         "observation.state": {"dtype": "float32", "shape": [8]},
                         "action": {"dtype": "float32", "shape": [8]},
                         "timestamp": {"dtype": "float32", "shape": [1]}}}
    (root / "meta" / "info.json").write_text(json.dumps(info))

    ds = open_dataset(root)
    assert ds.version == "v3.0" and [e.rows for e in ds.episodes] == [(0, 14), (14, 25)]
    assert ds.episodes[1].videos["observation.images.wrist_left"].from_s == pytest.approx(14 / 6)
    lr = ingest_lerobot_task(root, TASK_A, tmp_path / "lr", CFG)
    assert lr.num_episodes == 2 and lr.num_quarantined == 0
    store = EpisodeStore.open(lr.store_path)
    assert store.attrs["episodes"][1]["path"].endswith("file-000.parquet#episode=1")
    for i, r in enumerate(recs):
        write_episode(episode_dir_for(tmp_path / "demos", "a", f"ep{i}"), r)
    raw = EpisodeStore.open(ingest_task(tmp_path / "demos" / "a", tmp_path / "raw", CFG).store_path)
    _stores_equal(raw, store, image_tol=6.0, velocities=False)
    # the video file's frames are shared: a wrong to_timestamp makes one episode's frame count wrong
    edf = pl.read_parquet(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    edf = edf.with_columns(pl.when(pl.col("episode_index") == 0).then(13 / fps)
                           .otherwise(pl.col("videos/observation.images.wrist_left/to_timestamp"))
                           .alias("videos/observation.images.wrist_left/to_timestamp"))
    edf.write_parquet(root / "meta" / "episodes" / "chunk-000" / "file-000.parquet")
    bad = ingest_lerobot_task(root, TASK_A, tmp_path / "lr2", CFG)
    assert bad.num_episodes == 1
    (reason,) = bad.quarantined.values()
    assert "FrameCountError" in reason and "observation.images.wrist_left" in reason and "13 frames" in reason


def test_libero_preset_inline_png_and_jpeg_images(tmp_path):
    """openpi's LIBERO conversion: inline image features, 8-D state, 7-D actions with a -1/+1 gripper."""
    from PIL import Image

    T, fps = 8, 6
    rng = np.random.default_rng(0)
    frames = make_recording(T=T, seed=5, image_size=40).exterior_frames

    def img(a, fmt):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
        return {"bytes": buf.getvalue(), "path": f"frame.{fmt.lower()}"}

    state = rng.normal(size=(T, 8)).astype(np.float32)
    actions = rng.uniform(-0.5, 0.5, size=(T, 7)).astype(np.float32)
    actions[:, 6] = np.where(np.arange(T) < 4, -1.0, 1.0)
    root = tmp_path / "libero"
    (root / "data" / "chunk-000").mkdir(parents=True)
    pl.DataFrame([
        pl.Series("image", [img(f, "PNG") for f in frames]),
        pl.Series("wrist_image", [img(f, "JPEG") for f in frames]),
        pl.Series("state", state, dtype=pl.Array(pl.Float32, 8)),
        pl.Series("actions", actions, dtype=pl.Array(pl.Float32, 7)),
        pl.Series("timestamp", (np.arange(T) / fps).astype(np.float32)),
        pl.Series("episode_index", np.zeros(T, dtype=np.int64)),
        pl.Series("task_index", np.zeros(T, dtype=np.int64)),
    ]).write_parquet(root / "data" / "chunk-000" / "episode_000000.parquet")
    image = {"dtype": "image", "shape": [40, 40, 3], "names": ["height", "width", "channel"]}
    info = {"codebase_version": "v2.1", "fps": fps, "chunks_size": 1000,
            "data_path": "data/chunk-{episode_chunk:03d}/episode_{episode_index:06d}.parquet", "video_path": None,
            "features": {"image": image, "wrist_image": image, "state": {"dtype": "float32", "shape": [8]},
                         "actions": {"dtype": "float32", "shape": [7]}}}
    (root / "meta").mkdir()
    (root / "meta" / "info.json").write_text(json.dumps(info))
    (root / "meta" / "tasks.jsonl").write_text(json.dumps({"task_index": 0, "task": "put the bowl on the plate"}) + "\n")
    (root / "meta" / "episodes.jsonl").write_text(
        json.dumps({"episode_index": 0, "tasks": ["put the bowl on the plate"], "length": T}) + "\n")
    ds = open_dataset(root)
    mapping = detect_preset(ds.features)
    assert mapping.mapping is OPENPI_LIBERO
    ep = read_lerobot_episode(ds, ds.episodes[0], mapping, ReadConfig(image_size=40))
    assert ep.images.shape == (T, 2, 40, 40, 3) and ep.control_hz == 6.0
    np.testing.assert_array_equal(ep.images[:, 0], frames)  # PNG: lossless, already model size
    assert np.abs(ep.images[:, 1].astype(int) - frames).mean() < 3  # JPEG q95
    np.testing.assert_allclose(ep.actions[:, :6], actions[:, :6])
    assert np.all(ep.actions[:, 6] == 0)  # zero inserted before the gripper
    np.testing.assert_array_equal(ep.actions[:, 7], np.where(np.arange(T) < 4, 0.0, 1.0))
    np.testing.assert_allclose(ep.state, state)  # state gripper kept raw (a finger joint)
    # corrupt bytes in one frame: a per-episode error naming the column and frame
    df = pl.read_parquet(root / "data" / "chunk-000" / "episode_000000.parquet")
    bad = df["wrist_image"].to_list()
    bad[5] = {"bytes": b"not an image", "path": "x.jpg"}
    df.with_columns(pl.Series("wrist_image", bad)).write_parquet(root / "data" / "chunk-000" / "episode_000000.parquet")
    with pytest.raises(E.CorruptFileError, match=r"episode_000000.parquet \[wrist_image\].*frame 5"):
        read_lerobot_episode(ds, ds.episodes[0], mapping, ReadConfig(image_size=40))


# ----------------------------------------------------------------------------- mapping


def test_feature_mapping_presets_and_errors():
    feats = {"exterior_image_1_left": {"dtype": "image", "shape": [180, 320, 3]},
             "wrist_image_left": {"dtype": "image", "shape": [180, 320, 3]},
             "joint_position": {"dtype": "float32", "shape": [7]}, "gripper_position": {"dtype": "float32", "shape": [1]},
             "actions": {"dtype": "float32", "shape": [8]}}
    r = detect_preset(feats)
    assert r.mapping is OPENPI_DROID and r.joint_velocities is None and r.cameras == ("exterior_image_1_left",
                                                                                      "wrist_image_left")
    bad = {**feats, "joint_position": {"dtype": "float32", "shape": [6]}}
    with pytest.raises(MappingError, match=r"expected state of width 8.*joint_position \(6\) \+ gripper_position \(1\) = 7"):
        OPENPI_DROID.resolve(bad)
    with pytest.raises(MappingError, match="expected the features of one preset"):
        detect_preset(bad)
    lr = {"observation.images.top": {"dtype": "video", "shape": [3, 96, 96]},
          "observation.images.left_wrist": {"dtype": "video", "shape": [3, 96, 96]},
          "observation.state": {"dtype": "float32", "shape": [8]}, "action": {"dtype": "float32", "shape": [8]}}
    r = detect_preset(lr)
    assert r.mapping is LEROBOT and r.cameras == ("observation.images.top", "observation.images.left_wrist")
    g = np.array([[0, 0, 0, 0, 0, 0, -1.0], [0, 0, 0, 0, 0, 0, 1.0]])
    np.testing.assert_array_equal(to_store_layout(g, "signed_closed_is_1")[:, 7], [0.0, 1.0])
    np.testing.assert_array_equal(to_store_layout(np.array([[0.2] * 8]), "open_is_1")[0, 7], 0.8)
    assert task_slug("Open the drawer!") == "open_the_drawer"
    assert len(task_slug("put " * 40)) == 64 and task_slug("put " * 40) != task_slug("put " * 41)


# ----------------------------------------------------------------------------- validation / quarantine


def _rewrite(path: Path, **cols) -> None:
    df = pl.read_parquet(path)
    df.with_columns(**cols).write_parquet(path)


def _ep1(root: Path, what: str) -> Path:
    ds = open_dataset(root)
    return ds.episodes[1].data_file if what == "data" else ds.episodes[1].videos[what].path


def _missing_data(root):
    _ep1(root, "data").unlink()
    return "MissingFileError", "episode_000001.parquet"


def _missing_video(root):
    _ep1(root, "wrist_image_left").unlink()
    return "MissingFileError", "episode_000001.mp4 [wrist_image_left]"


def _short_video(root, recordings):
    write_mp4(_ep1(root, "exterior_image_1_left"), recordings[1].exterior_frames[:27], 15.0)
    return "FrameCountError", "[exterior_image_1_left]: expected 30 frames"


def _undecodable_video(root):
    _ep1(root, "exterior_image_1_left").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    return "VideoError", "episode_000001.mp4 [exterior_image_1_left]"


def _nan_state(root):
    p = _ep1(root, "data")
    q = pl.read_parquet(p)["joint_position"].to_numpy().copy()
    q[4, 2] = np.nan
    _rewrite(p, joint_position=pl.Series(q, dtype=pl.Array(pl.Float32, 7)))
    return "NonFiniteError", "episode_000001.parquet [joint_position]: expected finite values, found 1 NaN/inf values (first at frame 4)"


def _nan_actions(root):
    p = _ep1(root, "data")
    a = pl.read_parquet(p)["actions"].to_numpy().copy()
    a[7, 7] = np.inf
    _rewrite(p, actions=pl.Series(a, dtype=pl.Array(pl.Float32, 8)))
    return "NonFiniteError", "episode_000001.parquet [actions]"


def _wrong_shape(root):
    p = _ep1(root, "data")
    a = pl.read_parquet(p)["actions"].to_numpy()[:, :7].copy()
    _rewrite(p, actions=pl.Series(a, dtype=pl.Array(pl.Float32, 7)))
    return "ShapeError", "episode_000001.parquet [actions]: expected 8 values per frame (info.json shape), found 7"


def _unknown_task(root):
    p = _ep1(root, "data")
    _rewrite(p, task_index=pl.lit(7, dtype=pl.Int64))
    return "UnknownTaskError", "episode_000001.parquet [task_index]: expected a task_index listed in tasks.jsonl [0, 1], found 7"


def _short_parquet(root):
    p = _ep1(root, "data")
    pl.read_parquet(p).head(25).write_parquet(p)
    return "LengthMismatchError", "episode_000001.parquet [length]: expected 30 rows"


BAD = {f.__name__[1:]: f for f in (_missing_data, _missing_video, _short_video, _undecodable_video, _nan_state,
                                    _nan_actions, _wrong_shape, _unknown_task, _short_parquet)}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_episode_is_quarantined_others_go_on(case, dataset, recordings, tmp_path):
    fn = BAD[case]
    kind, where = fn(dataset, recordings) if case == "short_video" else fn(dataset)
    res = ingest_lerobot_task(dataset, TASK_A, tmp_path / "store", CFG)
    assert res.num_episodes == 1 and list(res.lengths) == ["episode_000000"]
    ((src, reason),) = res.quarantined.items()
    assert src.endswith("episode_000001.parquet")
    assert reason.startswith(kind + ":") and where in reason, reason
    manifest = pl.read_parquet(res.manifest_path)
    assert manifest["status"].to_list() == ["ok", "quarantined"]
    assert EpisodeStore.open(res.store_path).num_episodes == 1


def test_too_few_valid_episodes_writes_nothing(dataset, tmp_path):
    _missing_data(dataset)
    with pytest.raises(E.TooFewEpisodesError, match="expected at least 2 valid episodes"):
        ingest_lerobot_task(dataset, TASK_A, tmp_path / "store", IngestConfig(read=ReadConfig(image_size=S), min_episodes=2))
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").iterdir())


def test_unsupported_codebase_version_is_a_dataset_error(dataset, tmp_path, capsys):
    info = json.loads((dataset / "meta" / "info.json").read_text())
    info["codebase_version"] = "v2.0"
    (dataset / "meta" / "info.json").write_text(json.dumps(info))
    with pytest.raises(E.DatasetError, match=r"info.json \[codebase_version\]: expected one of v2.1, v3.0, found 'v2.0'"):
        ingest_lerobot_task(dataset, TASK_A, tmp_path / "store", CFG)
    assert not (tmp_path / "store").exists()
    assert cli_main(["validate", str(dataset), "--min-episodes", "0"]) == 1
    out = capsys.readouterr().out
    assert f"INVALID {dataset}: DatasetError:" in out and "codebase_version" in out


def test_validate_cli_one_line_per_episode(dataset, capsys):
    assert cli_main(["validate", str(dataset), "--min-episodes", "1", "--image-size", "32"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [f"OK {dataset} episode 0 [pick_up_the_red_cube]", f"OK {dataset} episode 1 [pick_up_the_red_cube]",
                       f"OK {dataset} episode 2 [open_the_drawer]"]
    _nan_state(dataset)
    assert cli_main(["validate", str(dataset), "--min-episodes", "2", "--image-size", "32",
                     "--task", TASK_A]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"OK {dataset} episode 0 [pick_up_the_red_cube]"
    assert out[1].startswith(f"INVALID {dataset} episode 1 [pick_up_the_red_cube]: NonFiniteError: ")
    assert "[joint_position]" in out[1]
    assert out[2].startswith(f"INVALID {dataset} [pick_up_the_red_cube]: TooFewEpisodesError")
    assert len(validate_dataset(dataset, ReadConfig(image_size=S), tasks=["open_the_drawer"])) == 1
    # an episode whose task string makes no partition key is reported, not skipped
    lines = (dataset / "meta" / "episodes.jsonl").read_text().splitlines()
    lines[2] = json.dumps({"episode_index": 2, "tasks": ["?!"], "length": 30})
    (dataset / "meta" / "episodes.jsonl").write_text("\n".join(lines) + "\n")
    assert cli_main(["validate", str(dataset), "--min-episodes", "0", "--image-size", "32"]) == 1
    out = capsys.readouterr().out
    assert f"INVALID {dataset} episode 2 []: MetadataError: " in out and "episodes.jsonl [episode 2 tasks]" in out
