from __future__ import annotations

import json
import shutil

import numpy as np
import polars as pl
import pytest
import zarr

from robosteer_assets.droid import errors as E
from robosteer_assets.droid.reader import ReadConfig, read_episode
from robosteer_assets.droid.store import EpisodeStore, IngestConfig, ingest_task, read_manifest, thumbnail_strip
from robosteer_assets.droid.synthetic import write_task

S = 16
CFG = IngestConfig(read=ReadConfig(image_size=S), min_episodes=2, chunk_steps=4)


@pytest.fixture(scope="module")
def task_with_broken(tmp_path_factory):
    root = tmp_path_factory.mktemp("demos")
    eps = write_task(root, "pick_cube", 3, T=20, image_size=(24, 32), seed=10)
    (eps[1] / "trajectory.h5").write_bytes(b"broken")
    return root / "pick_cube", eps


@pytest.fixture(scope="module")
def ingested(tmp_path_factory, task_with_broken):
    task_dir, eps = task_with_broken
    store_dir = tmp_path_factory.mktemp("store") / "pick_cube"
    return ingest_task(task_dir, store_dir, CFG), store_dir, eps


def test_ingest_quarantines_broken_and_stores_others(ingested):
    res, store_dir, eps = ingested
    assert res.num_episodes == 2 and res.num_quarantined == 1
    assert list(res.quarantined) == [str(eps[1])]
    assert "CorruptFileError" in res.quarantined[str(eps[1])] and "trajectory.h5" in res.quarantined[str(eps[1])]
    assert res.num_steps == sum(res.lengths.values()) == 2 * 8  # 20 steps at 15 Hz -> 8 at 6 Hz
    assert res.wall_s > 0 and res.as_dict()["num_quarantined"] == 1
    assert sorted(p.name for p in store_dir.iterdir()) == ["episodes.zarr", "manifest.parquet"]


def test_store_contents_match_reader(ingested):
    res, store_dir, eps = ingested
    store = EpisodeStore.open(store_dir)
    store.verify()
    assert store.num_episodes == 2 and store.num_steps == 16 and store.image_size == S and store.control_hz == 6.0
    assert [e["uuid"] for e in store.episodes] == list(res.lengths)
    for i, path in enumerate([eps[0], eps[2]]):
        want = read_episode(path, CFG.read)
        got = store.episode(i)
        np.testing.assert_array_equal(got.images, want.images)
        np.testing.assert_array_equal(got.state, want.state)
        np.testing.assert_array_equal(got.actions, want.actions)
        np.testing.assert_array_equal(got.joint_velocities, want.joint_velocities)
        assert got.instruction == want.instruction and got.uuid == want.uuid
        assert got.task_dir.name == "pick_cube" and got.path == path
    g = zarr.open_group(str(store_dir / "episodes.zarr"), mode="r")
    np.testing.assert_array_equal(g["episode_index"][:], [0] * 8 + [1] * 8)
    np.testing.assert_array_equal(g["step"][:], list(range(8)) * 2)
    assert g["images"].dtype == np.uint8 and g["state"].dtype == np.float32 and g["episode_index"].dtype == np.int32


def test_manifest_lists_all_episodes(ingested):
    res, store_dir, eps = ingested
    m = read_manifest(store_dir)
    assert m.height == 3
    assert set(m.columns) >= {"task", "uuid", "path", "status", "reason", "length", "instruction"}
    bad = m.filter(pl.col("status") == "quarantined")
    assert bad["path"].to_list() == [str(eps[1])] and "CorruptFileError" in bad["reason"][0]
    ok = m.filter(pl.col("status") == "ok")
    assert ok["length"].to_list() == [8, 8] and set(ok["task"]) == {"pick_cube"}
    assert set(m["ingest_id"]) == {res.ingest_id}


def test_thumbnail_strip(ingested):
    _, store_dir, _ = ingested
    png = thumbnail_strip(EpisodeStore.open(store_dir), max_episodes=4, thumb=24)
    from io import BytesIO

    from PIL import Image

    im = Image.open(BytesIO(png))
    assert im.size == (2 * 26 + 2, 2 * 26 + 2)


def test_too_few_episodes_writes_nothing(tmp_path, task_with_broken):
    task_dir, eps = task_with_broken
    with pytest.raises(E.TooFewEpisodesError) as ei:
        ingest_task(task_dir, tmp_path / "s", IngestConfig(read=CFG.read, min_episodes=3))
    assert ei.value.valid == 2 and ei.value.required == 3 and str(eps[1]) in ei.value.quarantined
    assert "expected at least 3 valid episodes" in str(ei.value)
    assert not (tmp_path / "s" / "episodes.zarr").exists()
    assert not list((tmp_path / "s").glob(".tmp-*"))


def test_unsafe_task_folder_is_rejected(tmp_path):
    (tmp_path / "bad task").mkdir()
    with pytest.raises(E.UnsafeTaskNameError):
        ingest_task(tmp_path / "bad task", tmp_path / "s", CFG)


def _copy(ingested, tmp_path):
    _, store_dir, _ = ingested
    dst = tmp_path / "pick_cube"
    shutil.copytree(store_dir, dst)
    return dst


def test_store_missing_and_half_written(tmp_path, ingested):
    with pytest.raises(E.StoreError, match="no episode store"):
        EpisodeStore.open(tmp_path / "nothing")
    d = _copy(ingested, tmp_path)
    (d / "episodes.zarr").rename(d / ".tmp-episodes.zarr-deadbeef")
    with pytest.raises(E.StoreError, match="half-written"):
        EpisodeStore.open(d / "episodes.zarr")


def test_store_without_complete_flag(tmp_path, ingested):
    d = _copy(ingested, tmp_path)
    meta = d / "episodes.zarr" / "zarr.json"
    j = json.loads(meta.read_text())
    del j["attributes"]["complete"]
    meta.write_text(json.dumps(j))
    with pytest.raises(E.StoreError, match="complete"):
        EpisodeStore.open(d)


def test_store_with_missing_array(tmp_path, ingested):
    d = _copy(ingested, tmp_path)
    shutil.rmtree(d / "episodes.zarr" / "actions")
    with pytest.raises(E.StoreError, match="'actions'"):
        EpisodeStore.open(d)


def test_store_with_inconsistent_lengths(tmp_path, ingested):
    d = _copy(ingested, tmp_path)
    meta = d / "episodes.zarr" / "zarr.json"
    j = json.loads(meta.read_text())
    j["attributes"]["episodes"][1]["length"] = 5
    meta.write_text(json.dumps(j))
    with pytest.raises(E.StoreError, match="sum to 13"):
        EpisodeStore.open(d)


def test_store_with_corrupt_chunk(tmp_path, ingested):
    d = _copy(ingested, tmp_path)
    chunk = next(p for p in (d / "episodes.zarr" / "images").rglob("*") if p.is_file() and p.name != "zarr.json")
    chunk.write_bytes(b"\x00garbage")
    store = EpisodeStore.open(d)  # metadata is fine ...
    with pytest.raises(E.StoreError, match="corrupt chunk"):
        store.verify()  # ... the data is not


def test_store_and_manifest_from_different_ingests(tmp_path, ingested):
    d = _copy(ingested, tmp_path)
    m = read_manifest(d).with_columns(pl.lit("otherrun").alias("ingest_id"))
    m.write_parquet(d / "manifest.parquet")
    with pytest.raises(E.StoreError, match="different runs"):
        EpisodeStore.open(d)


def test_reingest_replaces_store(tmp_path, task_with_broken):
    task_dir, _ = task_with_broken
    a = ingest_task(task_dir, tmp_path / "s", CFG)
    b = ingest_task(task_dir, tmp_path / "s", CFG)
    assert a.ingest_id != b.ingest_id
    assert EpisodeStore.open(tmp_path / "s").ingest_id == b.ingest_id
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["episodes.zarr", "manifest.parquet"]


def test_chunk_length_not_dividing_episodes(tmp_path, task_with_broken):
    task_dir, eps = task_with_broken
    cfg = IngestConfig(read=CFG.read, min_episodes=2, chunk_steps=5)  # 8-row episodes, 5-row image chunks
    ingest_task(task_dir, tmp_path / "s", cfg)
    store = EpisodeStore.open(tmp_path / "s")
    store.verify()
    assert store.arrays["images"].chunks[0] == 5
    for i, path in enumerate([eps[0], eps[2]]):
        np.testing.assert_array_equal(store.episode(i).images, read_episode(path, CFG.read).images)
        np.testing.assert_array_equal(store.episode(i).state, read_episode(path, CFG.read).state)
