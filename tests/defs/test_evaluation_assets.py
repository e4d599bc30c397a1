"""Groups `evaluation` and `reporting` in Dagster: the three grid evaluations of a task through
dagster-pipes (40 trials each, blocking check), then `eval_summary` with the DuckDB file."""

import shutil

import dagster as dg
import duckdb
import pytest

from robosteer_assets.defs import evaluation, reporting
from robosteer_assets.defs.config import EvalConfig
from robosteer_assets.defs.resources import BaseModel, ProjectPaths, gpu_pipes_client
from robosteer_assets.evaluation.trials import read_trials

pytestmark = pytest.mark.slow

def _tiny_checkpoint(tmp):
    import numpy as np

    from robosteer_assets.vla import model
    from robosteer_assets.vla.checkpoint import save_checkpoint
    from robosteer_assets.vla.config import get_config
    from robosteer_assets.vla.normalize import compute_norm_stats
    from robosteer_assets.vla.tokenizer import train_tiny_tokenizer

    cfg = get_config("pi0_tiny")
    rng = np.random.default_rng(0)
    stats = compute_norm_stats({"state": rng.normal(size=(64, 8)), "actions": rng.normal(size=(64, 8))})
    tok = train_tiny_tokenizer(["pick up red cube"], tmp / "tok.model", cfg.vocab_size)
    return save_checkpoint(tmp / "ckpt", cfg, model.init_params(cfg, seed=1), stats, tokenizer_path=tok)


EVALS = [evaluation.eval_trials_zero_shot, evaluation.eval_trials_full_lora, evaluation.eval_trials_steering]


def test_grid_evaluations_and_summary(tmp_path):
    paths = ProjectPaths(data_root=str(tmp_path / "data"))
    ckpt = _tiny_checkpoint(tmp_path)
    shutil.copytree(ckpt, paths.base_checkpoint())
    for m in ("full_lora", "steering"):
        shutil.copytree(ckpt, paths.checkpoints("pick_cube", m))
    resources = {"paths": paths, "base_model": BaseModel(), "gpu_pipes": gpu_pipes_client()}
    quick = EvalConfig(max_steps=3, num_steps=2, actions_per_chunk=4)
    with dg.instance_for_test() as inst:
        inst.add_dynamic_partitions("task", ["pick_cube"])
        res = dg.materialize(EVALS, partition_key="pick_cube", instance=inst, resources=resources,
                             run_config=dg.RunConfig(ops={a.op.name: quick for a in EVALS}))
        assert res.success
        checks = {(c.asset_key.to_user_string(), c.check_name): c.passed for c in res.get_asset_check_evaluations()}
        assert checks == {(f"eval_trials/{m}", "one_trial_per_grid_cell"): True
                          for m in ("zero_shot", "full_lora", "steering")}
        md = res.asset_materializations_for_node("eval_trials__steering")[0].metadata
        assert md["trials"].value == 40 and "success_grid" in md and md["success_pct"].value == 0.0
        trials = read_trials(paths.trials())
        assert trials.height == 120 and sorted(set(trials["method"])) == ["full_lora", "steering", "zero_shot"]
        assert set(trials["steps"]) == {3} and set(trials["failure_reason"]) == {"step_limit"}

        res = dg.materialize([reporting.eval_summary], instance=inst, resources={"paths": paths})
        assert res.success
        md = res.asset_materializations_for_node("eval_summary")[0].metadata
        assert md["trials"].value == 120 and "method_comparison" in md and "grid sim/pick_cube/steering/none" in md
        with duckdb.connect(str(paths.duckdb_path()), read_only=True) as con:
            rows = con.sql("SELECT method, trials, success_pct, complete FROM latest_comparison "
                           "ORDER BY method").fetchall()
            assert rows == [("full_lora", 40, 0.0, True), ("steering", 40, 0.0, True), ("zero_shot", 40, 0.0, True)]
            assert con.execute("SELECT count(*) FROM trials").fetchone() == (120,)
        assert not list(paths.root().glob(".tmp-*"))
