"""k-NN head scores and selection (paper eqs 2-5) on synthetic activations."""

import numpy as np
import pytest

from robosteer_assets.steering import overlap, selectors
from robosteer_assets.steering.knn import KnnConfig, head_scores, knn_errors, numpy_reference, ordered_topk
from robosteer_assets.steering.selection import SelectionConfig, SelectionResult, select_heads, select_joint, \
    select_non_overlapping


def planted(N_eps=8, T=25, L=4, H=8, d=16, planted_heads=((1, 2), (3, 5), (0, 7)), seed=0):
    """Heads in ``planted_heads`` encode the action (plus a little noise); the rest are noise."""
    rng = np.random.default_rng(seed)
    N = N_eps * T
    actions = rng.normal(size=(N, 8)).astype(np.float32)
    eps = np.repeat(np.arange(N_eps), T)
    acts = rng.normal(size=(N, L, H, d)).astype(np.float32)
    for l, h in planted_heads:
        proj = rng.normal(size=(8, d)).astype(np.float32)
        acts[:, l, h] = actions @ proj + 0.05 * rng.normal(size=(N, d))
    return acts, actions, eps


# host block 2: enough blocks for the candidate bound; block 64: too few, every row takes the full-row path
HOST_PATHS = [("host", 2), ("host", 64), ("device", 8)]


@pytest.mark.parametrize("topk,block", HOST_PATHS, ids=["host-candidates", "host-full-rows", "device"])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_scores_equal_numpy_reference_for_every_k(metric, topk, block):
    rng = np.random.default_rng(1)
    N, d = 90, 6
    feats = rng.normal(size=(N, 3, d)).astype(np.float32)
    actions = rng.normal(size=(N, 4)).astype(np.float32)
    eps = np.repeat(np.arange(6), 15)
    ks = (1, 5, 10, 20)
    got = knn_errors(feats, actions, eps, KnnConfig(ks=ks, metric=metric, query_chunk=32, head_chunk=2, topk=topk,
                                                    block=block))
    for h in range(3):
        np.testing.assert_allclose(got[h], numpy_reference(feats[:, h], actions, eps, ks, metric), rtol=1e-4)


@pytest.mark.parametrize("topk,block", HOST_PATHS, ids=["host-candidates", "host-full-rows", "device"])
def test_ties_are_broken_by_row_index_like_a_stable_sort(topk, block):
    # quantised features -> many exactly equal similarities, also across the k boundary
    rng = np.random.default_rng(4)
    N = 120
    feats = rng.integers(0, 2, size=(N, 2, 3)).astype(np.float32) + 0.0
    feats[feats.sum(-1) == 0] = 1.0
    actions = rng.normal(size=(N, 3)).astype(np.float32)
    eps = np.repeat(np.arange(8), 15)
    ks = (3, 10, 20)
    got = knn_errors(feats, actions, eps, KnnConfig(ks=ks, query_chunk=50, topk=topk, block=block))
    for h in range(2):
        np.testing.assert_allclose(got[h], numpy_reference(feats[:, h], actions, eps, ks), rtol=1e-4)


def test_ordered_topk_matches_a_stable_descending_sort():
    rng = np.random.default_rng(5)
    sims = rng.integers(0, 6, size=(40, 300)).astype(np.float32)  # heavy ties
    sims[:20] = rng.normal(size=(20, 300))  # and rows without
    want = np.argsort(-sims, axis=-1, kind="stable")[:, :25]
    np.testing.assert_array_equal(ordered_topk(sims, 25), want)
    # candidate pre-filter from block maxima (a valid bound), plus bounds that are too high or too low
    block_max = sims.reshape(40, 30, 10).max(-1)
    lower = np.partition(block_max, 30 - 25, axis=-1)[:, 30 - 25]
    np.testing.assert_array_equal(ordered_topk(sims, 25, lower), want)
    wrong = np.where(np.arange(40) % 2, sims.max(-1), -np.inf).astype(np.float32)
    np.testing.assert_array_equal(ordered_topk(sims, 25, wrong), want)
    # excluded entries (same episode) are never returned, with or without the bound
    excl = rng.random(size=sims.shape) < 0.3
    want_x = np.argsort(-np.where(excl, -np.inf, sims), axis=-1, kind="stable")[:, :25]
    np.testing.assert_array_equal(ordered_topk(sims, 25, exclude=excl), want_x)
    np.testing.assert_array_equal(ordered_topk(sims, 25, lower, exclude=excl), want_x)
    np.testing.assert_array_equal(ordered_topk(sims, 25, wrong, exclude=lambda r, c: excl[r, c]), want_x)


def test_neighbours_never_come_from_the_query_episode():
    # features constant within an episode: own-episode neighbours would be perfect matches
    eps = np.repeat(np.arange(5), 10)
    feats = np.eye(5, dtype=np.float32)[eps][:, None, :] + 1e-3
    actions = np.repeat(np.arange(5, dtype=np.float32), 10)[:, None]
    err = knn_errors(feats, actions, eps, KnnConfig(ks=(10,)))
    assert err[0, 0] > 1.0  # predictions come from other episodes, so they are wrong


def test_chunked_and_unchunked_agree():
    acts, actions, eps = planted(N_eps=6, T=20, L=2, H=4, d=8, planted_heads=((1, 2), (0, 3)))
    a = acts.reshape(len(eps), 8, 8)
    big = knn_errors(a, actions, eps, KnnConfig(query_chunk=10_000, head_chunk=8))
    small = knn_errors(a, actions, eps, KnnConfig(query_chunk=7, head_chunk=3))
    np.testing.assert_allclose(big, small, rtol=1e-5)


def test_planted_heads_rank_first_and_are_selected():
    acts, actions, eps = planted()
    scores = head_scores(acts, actions, eps)
    at20 = scores.filter(scores["k"] == 20)
    top3 = {(l, h) for l, h in zip(at20["layer"].to_list()[:3], at20["head"].to_list()[:3])}
    assert top3 == {(1, 2), (3, 5), (0, 7)}
    res, _ = select_heads(acts, actions, eps, SelectionConfig(m=3), scores=scores)
    assert set(res.heads) == top3 and res.k in (10, 20, 30, 40)
    assert len(res.subset_mse) == 4 and res.cv > 0
    assert res.mask().sum() == 3
    assert SelectionResult.from_json(res.to_json()).heads == res.heads


def test_multi_task_joint_and_non_overlapping():
    a1 = planted(planted_heads=((1, 2), (3, 5)), seed=2)
    a2 = planted(planted_heads=((0, 0), (2, 6)), seed=3)
    joint, _ = select_joint({"t1": a1, "t2": a2}, SelectionConfig(m=4))
    assert set(joint.heads) == {(1, 2), (3, 5), (0, 0), (2, 6)} and joint.tasks == ["t1", "t2"]
    non = select_non_overlapping({"t1": a1, "t2": a2}, SelectionConfig(m=2))
    assert set(non.per_task["t1"]) == {(1, 2), (3, 5)} and set(non.per_task["t2"]) == {(0, 0), (2, 6)}
    assert len(non.heads) == 4


def test_selectors_return_m_distinct_valid_heads():
    r = selectors.select_random(18, 8, m=20, seed=3)
    assert len(set(r.heads)) == 20 and all(0 <= l < 18 and 0 <= h < 8 for l, h in r.heads)
    assert selectors.select_random(18, 8, m=20, seed=3).heads == r.heads
    acts, _, eps = planted(planted_heads=())
    pos = acts[eps < 4].copy()
    neg = acts[eps >= 4].copy()
    pos[:, 2, 3] += 3.0  # one head separates the tasks
    res, s = selectors.select_classification(pos, neg, m=5)
    assert res.heads[0] == (2, 3) and len(set(res.heads)) == 5
    rise = np.zeros((4, 8))
    rise[1, 1], rise[3, 0] = 2.0, 1.0
    calls = []
    loss = lambda b, hn: float((hn * rise).sum()) + b  # noqa: E731
    r2, secs = selectors.cma_scores(lambda b, hn: calls.append(1) or loss(b, hn), 4, 8, batches=[0.0, 1.0])
    assert selectors.select_cma(r2, m=2).heads == [(1, 1), (3, 0)] and secs >= 0 and len(calls) == 2 * (1 + 32)


def test_overlap():
    assert overlap.overlap_pct([(0, 1), (1, 1)], [(1, 1), (2, 2)]) == 50.0
    names, mat = overlap.overlap_matrix({"a": [(0, 0), (1, 1)], "b": [(0, 0), (2, 2)]})
    assert names == ["a", "b"] and mat[0, 1] == 50 and mat[0, 0] == 100
    subs = overlap.episode_subsets(np.repeat(np.arange(10), 3))
    assert set(subs) == {"all", "half-s42", "half-s24", "first-half", "last-half"}
    assert subs["first-half"].sum() == 15 and subs["all"].all()
    assert overlap.heatmap_png(names, mat, "t")[:4] == b"\x89PNG"
