"""Fixtures for the fault catalogue (docs/faults.md); see ``_support``."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pytest

from robosteer_assets.defs.resources import ProjectPaths
from robosteer_assets.droid import synthetic

from ._support import HZ, IMAGE, T_STEPS, TASKS, Project, age_files, failure_text, materialize


@pytest.fixture(scope="session")
def template_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("faults_template") / "data"
    synthetic.write_task(root / "demos", "pick_cube", n=TASKS["pick_cube"], T=T_STEPS, image_size=IMAGE, control_hz=HZ)
    synthetic.write_task(root / "demos", "open_drawer", n=TASKS["open_drawer"], T=T_STEPS, image_size=IMAGE,
                         control_hz=HZ, seed=100, instruction="open the drawer")
    paths = ProjectPaths(data_root=str(root))
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("task", list(TASKS))
        for task, n in TASKS.items():
            res = materialize(paths, inst, task, min_episodes=n)
            assert res.success, failure_text(res)
    age_files(root)
    return root


@pytest.fixture
def project(tmp_path, template_root) -> Project:
    root = tmp_path / "data"
    shutil.copytree(template_root, root, symlinks=True)  # copy2: mtimes preserved
    return Project(root)


@pytest.fixture
def instance():
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("task", list(TASKS))
        yield inst
