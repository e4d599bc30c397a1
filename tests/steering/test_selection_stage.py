"""The file-level steps of the steering stages: head scores record their k-NN config, selection
dispatches on its spec and uses that config, the overlap analysis reports every top-m."""

import json

import numpy as np
import pytest

from robosteer_assets.steering.activations import write_random_store
from robosteer_assets.steering.knn import KnnConfig, read_scores_config, score_task
from robosteer_assets.steering.overlap import OverlapConfig, overlap_report
from robosteer_assets.steering.selection import SelectionConfig, SelectionResult
from robosteer_assets.steering.selectors import select_task_heads

KNN = KnnConfig(ks=(2, 3), metric="euclidean", query_chunk=16, head_chunk=2, topk="host")


def _activation_store(path, seed=0, episodes=4, steps=10, layers=2, heads=3, dim=4):
    return write_random_store(path, episodes=episodes, steps=steps, layers=layers, heads=heads, dim=dim, seed=seed)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    root = tmp_path_factory.mktemp("steering")
    acts = _activation_store(root / "a.zarr")
    other = _activation_store(root / "b.zarr", seed=1)
    scores = str(root / "head_scores.parquet")
    df, summary = score_task(KNN, activations=acts, out=scores, task="t")
    return root, acts, other, scores, df, summary


def test_scores_record_the_knn_config_they_were_computed_with(scored):
    _, _, _, scores, df, summary = scored
    assert read_scores_config(scores) == KNN
    assert sorted(set(df["k"].to_list())) == [2, 3] and summary["heads"] == 6 and summary["finite"]


def test_knn_selection_uses_the_scores_metric_and_writes_the_result(scored, tmp_path):
    root, acts, _, scores, _, _ = scored
    out = tmp_path / "selected_heads.json"
    result, _ = select_task_heads(SelectionConfig(m=2, knn=KNN), task="t", activations=acts, scores=scores, out=str(out))
    back = SelectionResult.from_json(out.read_text())
    assert back.metric == "euclidean" and len(back.heads) == 2 and back.k in (2, 3) and back.tasks == ["t"]


def test_selection_refuses_a_knn_config_other_than_the_scores(scored, tmp_path):
    _, acts, _, scores, _, _ = scored
    with pytest.raises(ValueError, match="SelectionConfig.knn: expected the k-NN config"):
        select_task_heads(SelectionConfig(m=2, knn=KnnConfig(ks=(2, 3))), task="t", activations=acts, scores=scores,
                          out=str(tmp_path / "s.json"))


def test_selectors_dispatch_on_the_spec(scored, tmp_path):
    _, acts, other, scores, _, _ = scored
    kw = dict(task="t", activations=acts, scores=scores, out=str(tmp_path / "s.json"))
    rnd, _ = select_task_heads(SelectionConfig(m=3, selector="random", seed=5, knn=KNN), **kw)
    assert rnd.selector == "random(seed=5)" and len(set(rnd.heads)) == 3
    cls, _ = select_task_heads(SelectionConfig(m=2, selector="classification", tasks=("u",), knn=KNN),
                               other_activations={"u": other}, **kw)
    assert cls.selector == "classification" and len(cls.heads) == 2
    with pytest.raises(ValueError, match="SelectionConfig.tasks"):
        select_task_heads(SelectionConfig(m=2, selector="classification", knn=KNN), **kw)
    with pytest.raises(ValueError, match="cma_rise"):
        select_task_heads(SelectionConfig(m=2, selector="cma", knn=KNN), **kw)
    rise = tmp_path / "rise.npy"
    np.save(rise, np.arange(6, dtype=float).reshape(2, 3))
    cma, _ = select_task_heads(SelectionConfig(m=2, selector="cma", knn=KNN), cma_rise=str(rise), **kw)
    assert cma.heads == [(1, 2), (1, 1)]
    joint, _ = select_task_heads(SelectionConfig(m=2, multitask="joint", tasks=("u",), knn=KNN),
                                 other_activations={"u": other}, **kw)
    assert joint.tasks == ["t", "u"] and joint.metric == "euclidean"


def test_overlap_report_covers_every_top_m_and_the_tasks(scored, tmp_path):
    _, acts, _, scores, _, _ = scored
    sel = tmp_path / "t.json"
    select_task_heads(SelectionConfig(m=2, knn=KNN), task="t", activations=acts, scores=scores, out=str(sel))
    other = tmp_path / "u.json"
    other.write_text(SelectionResult(heads=[(0, 0), (1, 1)], k=2, m=2, subset_mse={}, metric="euclidean").to_json())
    out = tmp_path / "overlap.json"
    report = overlap_report(OverlapConfig(top_m=(2, 4)), activations=acts, scores=scores, selected=str(sel),
                            task_selections={"t": str(sel), "u": str(other)}, out=str(out))
    assert set(report) == {"top2_subsets", "top4_subsets", "tasks"} and json.loads(out.read_text()) == report
    names = report["top2_subsets"]["names"]
    assert names == ["all", "half-s42", "half-s24", "first-half", "last-half"]
    assert all(report[k]["overlap_pct"][i][i] == 100.0 for k in ("top2_subsets", "top4_subsets")
               for i in range(len(names)))
