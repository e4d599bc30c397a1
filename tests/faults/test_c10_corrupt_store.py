"""Case 10: a corrupt or half-written zarr episode store (interrupted ingest,
interrupted copy, damaged chunk) is detected, never silently read, and rebuilt
by the next ``raw_episodes`` run."""

import dataclasses
import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from robosteer_assets.defs import ingest
from robosteer_assets.droid import synthetic
from robosteer_assets.droid.errors import StoreError
from robosteer_assets.droid.layout import episode_dir_for
from robosteer_assets.droid.store import STORE_NAME, EpisodeStore
from robosteer_assets.droid.writer import write_episode

from ._support import HZ, IMAGE, T_STEPS, TASKS, assert_store_ok, failure_text, materialize


def _killed_ingest(project, task) -> Path:
    """Start a real ``ingest_task`` of ``task`` in a child process and SIGKILL it once it
    has written image chunks into its temporary store; returns the leftover ``.tmp-`` dir."""
    code = (
        "import sys; from robosteer_assets.droid.store import IngestConfig, ingest_task;"
        "from robosteer_assets.droid.reader import ReadConfig;"
        f"ingest_task(sys.argv[1], sys.argv[2], IngestConfig(read=ReadConfig(image_size={IMAGE}), min_episodes=1))"
    )
    store_dir = project.store_dir(task)
    proc = subprocess.Popen([sys.executable, "-c", code, str(project.paths.task_demos(task)), str(store_dir)])
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            tmps = list(store_dir.glob(f".tmp-{STORE_NAME}-*"))
            if tmps and (tmps[0] / "images" / "c").is_dir():
                break
            time.sleep(0.002)
        assert proc.poll() is None, "the ingest finished before it could be interrupted"
    finally:
        proc.kill()
        proc.wait()
    (leftover,) = store_dir.glob(f".tmp-{STORE_NAME}-*")
    return leftover


def _drop_complete(store: Path) -> None:
    doc = json.loads((store / "zarr.json").read_text())
    del doc["attributes"]["complete"]
    (store / "zarr.json").write_text(json.dumps(doc))


def _truncate_state_chunk(store: Path) -> None:
    chunk = store / "state" / "c" / "0" / "0"
    chunk.write_bytes(chunk.read_bytes()[:20])  # a chunk cut short


def _delete_state_chunk(store: Path) -> None:
    (store / "state" / "c" / "0" / "0").unlink()  # an interrupted copy of the data root


def test_interrupted_ingest_and_damaged_stores_are_refused_then_rebuilt(project, instance):
    task = "pick_cube"
    store = project.store_dir(task) / STORE_NAME
    before = project.store_digest(task)
    synthetic.write_task(project.paths.demos(), task, n=6, T=T_STEPS, image_size=IMAGE, control_hz=HZ, seed=500)

    # 1. a re-ingest killed half way: the previous store is intact and still the one that is read
    leftover = _killed_ingest(project, task)
    assert {k: v for k, v in project.store_digest(task).items() if not k.startswith(".tmp-")} == before
    assert_store_ok(project, task, episodes=TASKS[task])
    res = materialize(project.paths, instance, task, assets=[ingest.keyframes])
    assert res.success, failure_text(res)

    # 2. the same kill during the first ingest of a task: only the .tmp- sibling exists
    shutil.rmtree(store)
    with pytest.raises(StoreError, match=rf"half-written: only the temporary {re.escape(leftover.name)} exists"):
        EpisodeStore.open(store)
    res = materialize(project.paths, instance, task, assets=[ingest.keyframes])
    assert not res.success
    assert f"{store}: half-written: only the temporary {leftover.name} exists" in failure_text(res)

    # 3. the other task's store damaged three ways: each refused by the downstream asset, naming the store
    other = project.store_dir("open_drawer") / STORE_NAME
    pristine = project.root / "pristine_open_drawer"
    shutil.copytree(other.parent, pristine)
    for damage, expected in [(_drop_complete, "half-written: attribute 'complete' is missing"),
                             (_truncate_state_chunk, "unreadable chunk"),
                             (_delete_state_chunk, "array 'state': 1 of 1 chunks missing")]:
        shutil.rmtree(other.parent)
        shutil.copytree(pristine, other.parent)
        damage(other)
        res = materialize(project.paths, instance, "open_drawer", assets=[ingest.keyframes])
        assert not res.success, damage.__name__
        assert str(other) in failure_text(res) and expected in failure_text(res), failure_text(res)
        assert not (other.parent / "keyframes.parquet").exists()
    with pytest.raises(StoreError, match="chunks missing"):
        EpisodeStore.open(other)  # never read back as zeros
    broken_other = project.store_digest("open_drawer")

    # 4. the next ingest rebuilds pick_cube, removes the leftover, and keyframes then run on the new store
    res = materialize(project.paths, instance, task, assets=[ingest.raw_episodes, ingest.keyframes],
                      min_episodes=TASKS[task] + 6)
    assert res.success, failure_text(res)
    assert not leftover.exists()
    assert_store_ok(project, task, episodes=TASKS[task] + 6)
    assert (project.store_dir(task) / "keyframes.parquet").is_file()
    assert project.store_digest("open_drawer") == broken_other  # the other partition is not touched (nor 'fixed')
    res = materialize(project.paths, instance, "open_drawer", min_episodes=TASKS["open_drawer"])
    assert res.success, failure_text(res)
    assert_store_ok(project, "open_drawer", episodes=TASKS["open_drawer"])


def test_all_zero_chunks_are_not_mistaken_for_missing_ones(project, instance):
    """A task with one episode whose wrist camera delivered black frames ingests."""
    rec = synthetic.make_recording(T=T_STEPS, seed=700, image_size=IMAGE, control_hz=HZ)
    rec = dataclasses.replace(rec, wrist_frames=np.zeros_like(rec.wrist_frames))
    write_episode(episode_dir_for(project.paths.demos(), "single_demo", rec.uuid), rec)
    instance.add_dynamic_partitions("task", ["single_demo"])
    res = materialize(project.paths, instance, "single_demo", assets=[ingest.raw_episodes, ingest.keyframes],
                      min_episodes=1)
    assert res.success, failure_text(res)
    assert_store_ok(project, "single_demo", episodes=1)
