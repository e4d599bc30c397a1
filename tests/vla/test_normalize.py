"""Norm stats: openpi's file format, statistics and the z-score / quantile formulas (openpi_facts §2.4)."""

import json

import numpy as np
import pytest

from robosteer_assets.vla.normalize import (
    EPS, NormStats, NormStatsError, RunningStats, compute_norm_stats, load_norm_stats, normalize,
    norm_stats_from_json, save_norm_stats, unnormalize, use_quantile_norm)


def _data(seed=0, n=500, d=8):
    rng = np.random.default_rng(seed)
    return rng.normal(loc=np.arange(d), scale=np.linspace(0.5, 3, d), size=(n, d))


def test_statistics_match_numpy_and_streaming_equals_batch():
    x = _data()
    s = compute_norm_stats({"state": x})["state"]
    np.testing.assert_allclose(s.mean, x.mean(0), rtol=1e-12)
    np.testing.assert_allclose(s.std, x.std(0), rtol=1e-9)
    # q = the smallest sample whose empirical CDF reaches q (openpi's histogram rule, exact)
    for q, got in ((0.01, s.q01), (0.99, s.q99)):
        srt = np.sort(x, axis=0)
        k = int(np.ceil(q * len(x))) - 1
        np.testing.assert_array_equal(got, srt[k])
    rs = RunningStats()
    for chunk in np.array_split(x, 7):
        rs.update(chunk)
    s2 = rs.get()
    np.testing.assert_allclose(s2.mean, s.mean, rtol=1e-12)
    np.testing.assert_allclose(s2.std, s.std, rtol=1e-9)
    np.testing.assert_array_equal(s2.q01, s.q01)


def test_json_round_trip_is_openpis_format(tmp_path):
    stats = compute_norm_stats({"state": _data(1), "actions": _data(2)})
    path = save_norm_stats(tmp_path / "assets" / "droid", stats)
    text = path.read_text()
    d = json.loads(text)
    assert list(d) == ["norm_stats"] and set(d["norm_stats"]) == {"state", "actions"}
    assert set(d["norm_stats"]["state"]) == {"mean", "std", "q01", "q99"}
    assert text.startswith('{\n  "norm_stats": {\n    "state": {')  # indent 2
    back = load_norm_stats(path.parent)
    for k in stats:
        for f in ("mean", "std", "q01", "q99"):
            np.testing.assert_array_equal(getattr(back[k], f), getattr(stats[k], f))
    # q01 / q99 are optional in openpi's format
    only = norm_stats_from_json(json.dumps({"norm_stats": {"state": {"mean": [0, 1], "std": [1, 2]}}}))
    assert not only["state"].has_quantiles


def test_bad_files_name_the_field(tmp_path):
    with pytest.raises(NormStatsError, match="expected an object with key 'norm_stats'"):
        norm_stats_from_json('{"state": {}}', source="x.json")
    with pytest.raises(NormStatsError, match=r"x.json: norm_stats.state: NormStats: all vectors must have the same"):
        norm_stats_from_json('{"norm_stats": {"state": {"mean": [0, 1], "std": [1]}}}', source="x.json")
    with pytest.raises(NormStatsError, match="not valid JSON"):
        norm_stats_from_json("{", source="x.json")
    with pytest.raises(NormStatsError, match="norm stats file not found"):
        load_norm_stats(tmp_path / "nope")
    with pytest.raises(NormStatsError, match="NaN or inf"):
        RunningStats().update(np.array([[np.nan, 1.0]]))


def test_zscore_formula_and_padding():
    s = NormStats(mean=np.array([1.0, -2.0, 3.0]), std=np.array([2.0, 0.5, 1e-9]))
    x = np.array([[3.0, -1.0]])  # stats longer than the data: sliced
    np.testing.assert_allclose(normalize(x, s, False), [[(3 - 1) / (2 + EPS), (-1 + 2) / (0.5 + EPS)]])
    y = np.array([[0.5, 2.0, 1.0, 7.0]])  # data longer than the stats: mean 0 / std 1 padding
    np.testing.assert_allclose(unnormalize(y, s, False),
                               [[0.5 * (2 + EPS) + 1, 2.0 * (0.5 + EPS) - 2, 1.0 * (1e-9 + EPS) + 3, 7.0 * (1 + EPS)]])
    z = np.random.default_rng(0).normal(size=(4, 3))
    np.testing.assert_allclose(unnormalize(normalize(z, s, False), s, False), z, rtol=1e-9, atol=1e-12)


def test_quantile_formula_and_padding():
    s = NormStats(mean=np.zeros(2), std=np.ones(2), q01=np.array([-1.0, 0.0]), q99=np.array([3.0, 0.5]))
    x = np.array([-1.0, 0.5])
    np.testing.assert_allclose(normalize(x, s, True), [2 * 0 / (4 + EPS) - 1, 2 * 0.5 / (0.5 + EPS) - 1])
    y = np.array([0.0, 1.0, 9.0])  # the third dim is beyond the stats: untouched
    np.testing.assert_allclose(unnormalize(y, s, True), [0.5 * (4 + EPS) - 1, 1.0 * (0.5 + EPS), 9.0])
    assert use_quantile_norm(pi05=True) and not use_quantile_norm(pi05=False)
    with pytest.raises(NormStatsError, match="needs q01/q99"):
        normalize(x, NormStats(mean=np.zeros(2), std=np.ones(2)), True)
    with pytest.raises(NormStatsError, match="data has 3 dims but the norm stats only 2"):
        normalize(y, s, True)
