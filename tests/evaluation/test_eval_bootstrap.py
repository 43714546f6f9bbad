"""bootstrap_intervals: percentile bootstrap of the mean over queries."""

import math

import numpy as np
import pytest

from movierec.evaluation import bootstrap_intervals


def test_interval_contains_the_mean_and_is_deterministic() -> None:
    rng = np.random.default_rng(0)
    values = {"recall@10": rng.random(500), "hit_rate@10": (rng.random(500) < 0.3).astype(float)}
    first = bootstrap_intervals(values, n_resamples=400, seed=7)
    assert first == bootstrap_intervals(values, n_resamples=400, seed=7)
    assert first != bootstrap_intervals(values, n_resamples=400, seed=8)
    for key, column in values.items():
        low, high = first[key]
        assert low < column.mean() < high
        # the standard error of a mean of 500 values is std/sqrt(500); a 95% interval spans about 4 of them
        width = 4 * column.std() / math.sqrt(column.size)
        assert high - low == pytest.approx(width, rel=0.2)
    narrower = bootstrap_intervals(values, n_resamples=400, level=0.5, seed=7)
    assert narrower["recall@10"][1] - narrower["recall@10"][0] < first["recall@10"][1] - first["recall@10"][0]


def test_constant_values_give_a_point_interval() -> None:
    assert bootstrap_intervals({"mrr": np.full(10, 0.25)}, n_resamples=50) == {"mrr": (0.25, 0.25)}


def test_nan_values_are_left_out_of_each_resample() -> None:
    # auc is NaN for queries without negatives; the defined values are all 0.75
    values = {"auc": np.array([0.75, np.nan, 0.75, 0.75, np.nan]), "mrr": np.array([1.0, 0.5, 1.0, 0.5, 1.0])}
    result = bootstrap_intervals(values, n_resamples=200)
    assert result["auc"] == (0.75, 0.75)
    assert 0.5 <= result["mrr"][0] <= result["mrr"][1] <= 1.0
    assert all(math.isnan(v) for v in bootstrap_intervals({"auc": np.full(2, np.nan)}, n_resamples=10)["auc"])


def test_chunked_resampling_handles_many_queries() -> None:
    # 3 x 10^6 queries leave room for only 2 resamples per chunk, so 8 resamples take 4 chunks
    values = np.zeros(3_000_000)
    values[::2] = 1.0  # mean 0.5, standard error 0.5 / sqrt(3e6) = 0.00029
    low, high = bootstrap_intervals({"hit_rate@10": values}, n_resamples=8)["hit_rate@10"]
    assert 0.5 - 0.002 < low <= high < 0.5 + 0.002


def test_invalid_input_raises() -> None:
    with pytest.raises(ValueError, match="one value per query"):
        bootstrap_intervals({"a": np.zeros(3), "b": np.zeros(4)})
    with pytest.raises(ValueError):
        bootstrap_intervals({"a": np.zeros(3)}, level=1.0)
    with pytest.raises(ValueError):
        bootstrap_intervals({"a": np.zeros(3)}, n_resamples=0)
    assert bootstrap_intervals({}) == {}
    assert all(math.isnan(v) for v in bootstrap_intervals({"a": np.zeros(0)})["a"])
