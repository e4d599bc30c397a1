"""`robosteer run`'s plan comes from Dagster's stale status: missing, new code version (incl. the run
config), new data version of a dependency (the task's demos), or a store from another image path."""

import json

import dagster as dg
import pytest

from robosteer_assets.defs.build import build_definitions
from robosteer_assets.defs.demos import TASK_DEMOS
from robosteer_assets.defs.resources import ProjectPaths
from robosteer_assets.droid import synthetic
from robosteer_assets.pipeline_cli import _run_config, plan, with_config_versions

TASK = "pick_cube"
INGEST = ["raw_episodes", "keyframes"]


def _names(keys) -> list[str]:
    return [k.to_user_string() for k in keys]


@pytest.fixture()
def setup(tmp_path, monkeypatch):
    root = tmp_path / "data"
    synthetic.write_task(root / "demos", TASK, n=3, T=12, image_size=32, control_hz=6.0)
    monkeypatch.setenv("ROBOSTEER_DATA_ROOT", str(root))
    monkeypatch.delenv("ROBOSTEER_DEMOS_ROOT", raising=False)
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("task", [TASK])
        yield build_definitions(), inst, ProjectPaths(data_root=str(root)), root


def _materialize(defs, inst, overrides, names):
    assets = list(defs.get_repository_def().assets_defs_by_key.values())
    res = dg.materialize(assets, selection=[dg.AssetKey(n) for n in names], partition_key=TASK, instance=inst,
                         run_config=_run_config(set(names), overrides))
    assert res.success


def test_plan_reruns_what_changed_and_nothing_when_nothing_did(setup):
    base_defs, inst, paths, root = setup
    overrides = {"raw_episodes": {"min_episodes": 3}}
    defs = with_config_versions(base_defs, overrides)
    everything = _names(plan(defs, inst, TASK, paths))
    assert set(INGEST) | {"head_activations", "steering_checkpoint", "eval_summary"} <= set(everything)
    assert TASK_DEMOS.to_user_string() not in everything  # observed, never materialised

    _materialize(defs, inst, overrides, INGEST)
    after = _names(plan(defs, inst, TASK, paths))
    assert not set(INGEST) & set(after) and "head_activations" in after  # still missing downstream
    n_obs = len(inst.fetch_observations(dg.AssetRecordsFilter(asset_key=TASK_DEMOS), limit=100).records)
    assert _names(plan(defs, inst, TASK, paths)) == after  # nothing changed: the same plan
    assert len(inst.fetch_observations(dg.AssetRecordsFilter(asset_key=TASK_DEMOS), limit=100).records) == n_obs
    assert _names(plan(defs, inst, TASK, paths, force=True)) == everything

    # another run config for keyframes: keyframes (and what follows) is due, raw_episodes is not
    changed = with_config_versions(base_defs, {**overrides, "keyframes": {"stop_buffer": 2}})
    due = _names(plan(changed, inst, TASK, paths))
    assert "keyframes" in due and "raw_episodes" not in due

    # a new episode: the demos' data version changes, so the store and everything after it are due
    synthetic.write_task(root / "demos", TASK, n=1, T=12, image_size=32, control_hz=6.0, seed=50)
    assert set(INGEST) <= set(_names(plan(defs, inst, TASK, paths)))
    _materialize(defs, inst, overrides, INGEST)
    assert not set(INGEST) & set(_names(plan(defs, inst, TASK, paths)))

    # a store without the image_resize attribute (another image path) is re-ingested
    meta = paths.store(TASK) / "episodes.zarr" / "zarr.json"
    doc = json.loads(meta.read_text())
    del doc["attributes"]["image_resize"]
    meta.write_text(json.dumps(doc))
    assert set(INGEST) <= set(_names(plan(defs, inst, TASK, paths)))
    _materialize(defs, inst, overrides, INGEST)
    assert not set(INGEST) & set(_names(plan(defs, inst, TASK, paths)))


def test_config_and_image_path_are_in_the_code_versions():
    defs = with_config_versions(build_definitions(), {"raw_episodes": {"min_episodes": 5}})
    specs = {s.key.to_user_string(): s for a in defs.get_repository_def().assets_defs_by_key.values()
             for s in a.specs}
    assert specs["raw_episodes"].code_version.startswith("image_resize=resize_with_pad+config-")
    other = with_config_versions(build_definitions(), {"raw_episodes": {"min_episodes": 6}})
    other_specs = {s.key.to_user_string(): s for a in other.get_repository_def().assets_defs_by_key.values()
                   for s in a.specs}
    assert other_specs["raw_episodes"].code_version != specs["raw_episodes"].code_version
    assert other_specs["keyframes"].code_version == specs["keyframes"].code_version
