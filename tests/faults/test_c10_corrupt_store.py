"""Case 10: a corrupt or half-written zarr episode store (interrupted ingest,
interrupted copy) is detected, never silently read, and rebuilt by the next
``raw_episodes`` run."""

import json
import shutil

import pytest

from robosteer_assets.defs import ingest
from robosteer_assets.droid.errors import StoreError
from robosteer_assets.droid.store import STORE_NAME, EpisodeStore

from ._support import TASKS, assert_store_ok, failure_text, materialize


def _drop_complete(store_path):
    meta = store_path / "zarr.json"
    doc = json.loads(meta.read_text())
    del doc["attributes"]["complete"]
    meta.write_text(json.dumps(doc))


def test_half_written_stores_are_refused_then_rebuilt(project, instance):
    # pick_cube: the ingest was killed before the rename: only the .tmp- sibling exists
    store = project.store_dir("pick_cube") / STORE_NAME
    tmp = store.with_name(f".tmp-{STORE_NAME}-deadbeef")
    store.rename(tmp)
    _drop_complete(tmp)
    # open_drawer: a store without the final 'complete' attribute (e.g. an interrupted copy)
    _drop_complete(project.store_dir("open_drawer") / STORE_NAME)
    broken_other = project.store_digest("open_drawer")

    with pytest.raises(StoreError, match=r"half-written: only the temporary \.tmp-episodes\.zarr-deadbeef exists"):
        EpisodeStore.open(store)
    for task, expected in [("pick_cube", f"{store}: half-written: only the temporary {tmp.name} exists"),
                           ("open_drawer", "half-written: attribute 'complete' is missing")]:
        res = materialize(project.paths, instance, task, assets=[ingest.keyframes])
        assert not res.success
        assert expected in failure_text(res)
        assert not (project.store_dir(task) / "keyframes.parquet").exists()

    # the next ingest rebuilds pick_cube, removes the leftover, and keyframes then run on the new store
    res = materialize(project.paths, instance, "pick_cube", assets=[ingest.raw_episodes, ingest.keyframes],
                      min_episodes=TASKS["pick_cube"])
    assert res.success, failure_text(res)
    assert not tmp.exists()
    assert_store_ok(project, "pick_cube", episodes=TASKS["pick_cube"])
    assert (project.store_dir("pick_cube") / "keyframes.parquet").is_file()
    assert project.store_digest("open_drawer") == broken_other  # the other partition is not touched (nor 'fixed')


def _corrupt_state_chunk(project, task):
    chunk = project.store_dir(task) / STORE_NAME / "state" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:20])  # a chunk cut short
    return chunk


@pytest.mark.xfail(strict=True, reason="droid.keyframe_table.compute_keyframes (via the keyframes asset) lets zarr's "
                   "'RuntimeError: Zstd decompression error: invalid input data' through without naming the store; "
                   "EpisodeStore.verify() does wrap it, but no asset calls it")
def test_corrupt_chunk_fails_downstream_naming_the_store(project, instance):
    _corrupt_state_chunk(project, "pick_cube")
    res = materialize(project.paths, instance, "pick_cube", assets=[ingest.keyframes])
    assert not res.success
    assert str(project.store_dir("pick_cube") / STORE_NAME) in failure_text(res)


@pytest.mark.xfail(strict=True, reason="droid.store: a chunk file missing from episodes.zarr (interrupted copy) reads "
                   "back as zeros; EpisodeStore.open and verify() do not check that every chunk exists")
def test_missing_chunk_is_detected_not_read_as_zeros(project):
    (project.store_dir("pick_cube") / STORE_NAME / "state" / "c" / "0" / "0").unlink()
    with pytest.raises(StoreError, match="state"):
        EpisodeStore.open(project.store_dir("pick_cube")).verify()


def test_corrupt_chunk_is_detected_by_verify_and_rebuilt(project, instance):
    chunk = _corrupt_state_chunk(project, "pick_cube")
    with pytest.raises(StoreError, match="corrupt chunk"):
        EpisodeStore.open(project.store_dir("pick_cube")).verify()
    res = materialize(project.paths, instance, "pick_cube", min_episodes=TASKS["pick_cube"])
    assert res.success, failure_text(res)
    assert chunk.stat().st_size > 20
    assert_store_ok(project, "pick_cube", episodes=TASKS["pick_cube"])
