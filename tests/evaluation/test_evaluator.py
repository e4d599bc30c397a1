"""The sim evaluator (evaluation.evaluator): the grid protocol through the client interface, with
the scripted expert (>= 90 %) and a random policy (near 0 %) as harness checks, a real tiny
checkpoint in-process and behind the websocket server, worker processes, videos and errors."""

from __future__ import annotations

import numpy as np
import pytest

from robosteer_assets.evaluation.evaluator import EvalError, PolicySpec, SimEvalConfig, evaluate, success_grid
from robosteer_assets.evaluation.server import ServerConfig, run_in_thread
from robosteer_assets.evaluation.trials import TRIAL_COLUMNS, read_trials, write_trials
from robosteer_assets.sim.grid import DEFAULT_GRID, cell_center, trial_yaw

from ._support import FakePolicy, make_tiny_checkpoint

CELLS = ((0, 0), (2, 3), (4, 7))


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("eval_ckpt"))


@pytest.mark.slow
def test_scripted_expert_through_the_harness_scores_at_least_90_percent():
    rows = evaluate("pick_cube", PolicySpec(kind="expert"), "expert", SimEvalConfig(workers=2, actions_per_chunk=1))
    assert len(rows) == DEFAULT_GRID.num_cells
    assert [(r["row"], r["col"]) for r in rows] == DEFAULT_GRID.cells()
    rate = np.mean([r["success"] for r in rows])
    assert rate >= 0.9, [(r["row"], r["col"], r["failure_reason"]) for r in rows if not r["success"]]
    assert all(r["steps"] < 60 for r in rows if r["success"])  # ends a few steps after success, not at the limit


def test_random_policy_scores_near_zero_and_rows_fit_the_store(tmp_path):
    rows = evaluate("pick_cube", PolicySpec(kind="random"), "random", SimEvalConfig(cells=DEFAULT_GRID.cells()[::4]))
    assert len(rows) == 10 and sum(r["success"] for r in rows) == 0
    assert {r["failure_reason"] for r in rows} == {"step_limit"} and {r["steps"] for r in rows} == {60}
    for r in rows:
        assert (r["x"], r["y"]) == cell_center(r["row"], r["col"]) and r["yaw"] == trial_yaw(0, r["row"], r["col"])
    write_trials(tmp_path, rows)
    back = read_trials(tmp_path)
    assert back.height == 10 and back.columns == list(TRIAL_COLUMNS) and set(back["source"]) == {"sim"}
    grid = success_grid(rows)
    assert grid.shape == (5, 8) and np.nansum(grid) == 0 and np.isfinite(grid).sum() == 10


def test_checkpoint_trials_do_not_depend_on_the_worker(ckpt):
    spec = PolicySpec(kind="checkpoint", checkpoint=str(ckpt))
    cfg = SimEvalConfig(cells=CELLS, max_steps=12, actions_per_chunk=4, num_steps=3)
    serial = evaluate("pick_cube", spec, "zero_shot", cfg, run_id="a")
    parallel = evaluate("pick_cube", spec, "zero_shot", SimEvalConfig(cells=CELLS[::-1], max_steps=12, num_steps=3,
                                                                      actions_per_chunk=4, workers=2), run_id="a")
    drop = ("duration_s",)
    assert [{k: v for k, v in r.items() if k not in drop} for r in serial] == \
           [{k: v for k, v in r.items() if k not in drop} for r in parallel]
    assert all(r["steps"] == 12 and r["failure_reason"] == "step_limit" for r in serial)
    assert len(serial[0]["checkpoint_id"]) == 12 and serial[0]["method"] == "zero_shot"


def test_served_checkpoint_and_a_failing_request(ckpt):
    from robosteer_assets.vla.policy import Policy

    with run_in_thread(Policy.from_checkpoint(ckpt, num_steps=3), ServerConfig(host="127.0.0.1", port=0)) as h:
        rows = evaluate("pick_cube", PolicySpec(kind="server", port=h.port), "zero_shot",
                        SimEvalConfig(cells=CELLS[:2], max_steps=8))
    assert [r["steps"] for r in rows] == [8, 8] and rows[0]["checkpoint_id"] == f"server:127.0.0.1:{h.port}"

    class FailsOnce(FakePolicy):
        calls = 0

        def infer(self, obs):
            FailsOnce.calls += 1
            if FailsOnce.calls == 1:
                raise RuntimeError("GPU fell over")
            return super().infer(obs)

    with run_in_thread(FailsOnce(), ServerConfig(host="127.0.0.1", port=0)) as h:
        rows = evaluate("pick_cube", PolicySpec(kind="server", port=h.port), "broken",
                        SimEvalConfig(cells=CELLS[:2], max_steps=8))
    assert rows[0]["failure_reason"].startswith("policy_error: PolicyServerError") and rows[0]["steps"] == 0
    assert rows[1]["failure_reason"] == "step_limit" and rows[1]["steps"] == 8  # the next trial reconnected


def test_bad_chunks_are_a_trial_failure_not_a_crash():
    class NaNPolicy(FakePolicy):
        def infer(self, obs):
            return {"actions": np.full((4, 8), np.nan)}

    with run_in_thread(NaNPolicy(), ServerConfig(host="127.0.0.1", port=0)) as h:
        rows = evaluate("pick_cube", PolicySpec(kind="server", port=h.port), "nan", SimEvalConfig(cells=CELLS[:1]))
    assert rows[0]["failure_reason"].startswith("bad_action: expected a finite [T, 8] chunk")


def test_video_of_both_cameras(tmp_path):
    import av

    rows = evaluate("pick_cube", PolicySpec(kind="random"), "random",
                    SimEvalConfig(cells=CELLS[:1], max_steps=5, record_video=True, video_dir=str(tmp_path),
                                  image_size=64), run_id="vid")
    path = tmp_path / "pick_cube" / "random" / "vid" / "r0c0.mp4"
    assert rows[0]["video_path"] == str(path)
    with av.open(str(path)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (64, 128, 3)  # the start + one per step; exterior | wrist
    assert not list(tmp_path.rglob(".tmp-*"))


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(EvalError, match="task: expected one of the simulated tasks"):
        evaluate("fold_laundry", PolicySpec(kind="random"), "random")
    with pytest.raises(EvalError, match="checkpoint directory not found"):
        evaluate("pick_cube", PolicySpec(kind="checkpoint", checkpoint=str(tmp_path / "nope")), "x")
    with pytest.raises(EvalError, match="actions_per_chunk: expected a positive integer"):
        SimEvalConfig(actions_per_chunk=0)
    with pytest.raises(EvalError, match="policy.kind"):
        PolicySpec(kind="magic")
    with pytest.raises(ValueError, match="grid cell"):
        SimEvalConfig(cells=((5, 0),)).trial_cells()
