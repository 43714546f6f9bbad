"""bootstrap_intervals: percentile bootstrap of the mean over queries."""

import math

import numpy as np
import pytest

from movierec.evaluation import bootstrap_intervals, paired_difference


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


def test_users_are_resampled_not_queries() -> None:
    # 50 users with 40 queries each; a user's queries all share one value (perfectly correlated), so
    # the mean's uncertainty is that of 50 values, not 2,000: resampling queries would understate it.
    rng = np.random.default_rng(1)
    per_user = rng.random(50)
    values = {"recall@20": np.repeat(per_user, 40)}
    users = np.repeat(np.arange(50) * 7 + 3, 40)  # any labels
    by_query = bootstrap_intervals(values, n_resamples=500, seed=0)["recall@20"]
    by_user = bootstrap_intervals(values, groups=users, n_resamples=500, seed=0)["recall@20"]
    expected_width = 4 * per_user.std() / math.sqrt(50)
    assert by_user[1] - by_user[0] == pytest.approx(expected_width, rel=0.25)
    assert by_query[1] - by_query[0] < 0.3 * (by_user[1] - by_user[0])
    assert by_user[0] < per_user.mean() < by_user[1]


def test_user_resampling_averages_queries_not_users() -> None:
    # a resample's mean is over the drawn users' queries (as the reported metric), so a constant
    # value per query gives a point interval even with unequal numbers of queries per user
    values = {"mrr": np.array([0.5, 0.5, 0.5, 0.5]), "auc": np.array([1.0, np.nan, 0.0, 1.0])}
    result = bootstrap_intervals(values, groups=np.array([0, 0, 0, 1]), n_resamples=200)
    assert result["mrr"] == (0.5, 0.5)
    with pytest.raises(ValueError, match="one label per query"):
        bootstrap_intervals(values, groups=np.zeros(3))


def test_paired_difference_sees_a_consistent_small_gain() -> None:
    # model a beats b by 0.01 on every user while users vary a lot: separate intervals overlap, the
    # paired interval excludes zero
    rng = np.random.default_rng(2)
    users = np.repeat(np.arange(200), 5)
    b = np.repeat(rng.random(200), 5)
    a = b + 0.01
    separate_a = bootstrap_intervals({"m": a}, groups=users, seed=0)["m"]
    separate_b = bootstrap_intervals({"m": b}, groups=users, seed=0)["m"]
    assert separate_a[0] < separate_b[1]  # overlapping
    paired = paired_difference({"m": a}, {"m": b}, groups=users)["m"]
    assert paired["difference"] == pytest.approx(0.01)
    assert paired["low"] == pytest.approx(0.01) and paired["high"] == pytest.approx(0.01)
    assert paired["p_not_greater"] == 0.0
    jitter = rng.normal(0, 0.1, b.size)
    noise = paired_difference({"m": b + jitter - jitter.mean()}, {"m": b}, groups=users)["m"]
    assert noise["low"] < 0 < noise["high"] and 0.05 < noise["p_not_greater"] < 0.95
    with pytest.raises(ValueError, match="different queries"):
        paired_difference({"m": a}, {"m": b[:-1]})
