"""Case 7: task folder names that are not safe partition keys (path traversal,
spaces, unicode, leading dash, symlinks out of the demos root).

The sensor never turns them into partitions, the CLI reports them, the domain
functions refuse them, and the ``raw_episodes`` asset refuses such a partition
key (added by hand in the UI / API) without writing anything outside the store
root.
"""

import os
import shutil

import dagster as dg
import pytest

from robosteer_assets.defs import sensors
from robosteer_assets.droid import synthetic
from robosteer_assets.droid.errors import UnsafeTaskNameError
from robosteer_assets.droid.layout import episode_dir_for
from robosteer_assets.droid.scan import scan_demos_root
from robosteer_assets.droid.store import IngestConfig, ingest_task

from ._support import IMAGE, assert_untouched, failure_text, materialize, run_cli, tree_digest

UNSAFE = ["bad name", "tâche", "-rf", "a..b", "x" * 65]


def _populate(project, names):
    """Each unsafe folder gets a copy of a valid episode, so it looks like a real task."""
    src = project.episodes("pick_cube")[0]
    for name in names:
        shutil.copytree(src, project.paths.demos() / name / "success" / src.name)


def test_unsafe_task_folders_never_become_partitions(project, instance, capsys, tmp_path):
    _populate(project, UNSAFE)
    outside = tmp_path / "outside"
    synthetic.write_task(outside, "secret", n=1, T=12, image_size=IMAGE, control_hz=6.0, seed=7)
    os.symlink(outside / "secret", project.paths.demos() / "linked")  # a symlink out of the demos root
    before = tree_digest(project.root / "store")
    other, mine = project.store_digest("open_drawer"), project.store_digest("pick_cube")

    # the sensor: only the two safe tasks, every unsafe name rejected with the rule
    scan = scan_demos_root(project.paths.demos(), settle_s=0)
    assert set(scan.tasks) == {"pick_cube", "open_drawer"}
    assert set(scan.rejected) == set(UNSAFE)
    assert all("is not a safe partition key: expected a name matching" in r for r in scan.rejected.values())
    ctx = dg.build_sensor_context(instance=instance, resources={"paths": project.paths})
    result = sensors.new_demos_sensor(ctx)
    assert sorted(r.partition_key for r in result.run_requests) == ["open_drawer", "pick_cube"]
    added = [k for req in result.dynamic_partitions_requests for k in req.partition_keys]
    assert set(added) <= {"pick_cube", "open_drawer"}

    # the CLI names each unsafe folder
    rc, out = run_cli(["validate", project.paths.demos(), "--min-episodes", 1, "--image-size", 32], capsys)
    assert rc == 1
    for name in UNSAFE:
        assert f"INVALID {project.paths.demos() / name}: UnsafeTaskNameError: {name}" in out

    # the domain functions refuse them and write nothing
    for name in UNSAFE + ["../escape", "..", ""]:
        with pytest.raises(UnsafeTaskNameError, match="task name"):
            episode_dir_for(project.paths.demos(), name, "ep0")
    with pytest.raises(UnsafeTaskNameError, match="bad name"):
        ingest_task(project.paths.demos() / "bad name", project.root / "store" / "bad name",
                    IngestConfig(min_episodes=1))
    with pytest.raises(UnsafeTaskNameError, match="bad name"):
        project.paths.store("bad name")
    assert not (project.root / "store" / "bad name").exists()
    assert tree_digest(project.root / "store") == before

    # the assets refuse such a partition key (added by hand in the UI / API), even one whose
    # traversal reaches a real task folder outside the demos root
    synthetic.write_task(project.root / "evil", "pick_cube", n=1, T=12, image_size=IMAGE, control_hz=6.0, seed=9)
    for key in ["bad name", "../evil/pick_cube"]:
        instance.add_dynamic_partitions("task", [key])
        res = materialize(project.paths, instance, key, min_episodes=1)
        assert not res.success, f"partition {key!r} was materialised"
        assert f"partition key {key!r} is not a safe task name" in failure_text(res)
    stores = sorted(p.relative_to(project.root) for p in project.root.rglob("episodes.zarr"))
    assert [str(p) for p in stores] == ["store/open_drawer/episodes.zarr", "store/pick_cube/episodes.zarr"]
    assert_untouched(project, "open_drawer", other)
    assert_untouched(project, "pick_cube", mine)
