"""Per-user sums give the means and user-bootstrap intervals of one pass over every query, however
the users are split into parts (the RankingEvaluator's Beam batches)."""

import numpy as np
import pytest

from movierec.evaluation import bootstrap_intervals, paired_difference
from movierec.evaluation.user_sums import UserSums


def queries(seed: int = 0, n_users: int = 60):
    """Per-query values of two metrics for users with 1–6 queries each, grouped by user (as
    `build_queries` orders them), `auc` undefined (NaN) on some queries."""
    rng = np.random.default_rng(seed)
    users = np.repeat(rng.permutation(1000)[:n_users], rng.integers(1, 7, n_users))
    users = np.sort(users, kind="stable")
    recall = rng.integers(0, 2, users.size).astype(np.float64)
    auc = rng.random(users.size)
    auc[rng.random(users.size) < 0.2] = np.nan
    return users, {"recall@20": recall, "auc": auc}


def parts_of(users: np.ndarray, values: dict[str, np.ndarray], cuts: list[int]) -> list[UserSums]:
    """Summaries of consecutive groups of users, joined in a shuffled order (as Beam may)."""
    unique = np.unique(users)
    groups = np.split(unique, cuts)
    parts = []
    for group in groups:
        rows = np.isin(users, group)
        parts.append(UserSums.of_queries({m: v[rows] for m, v in values.items()}, users[rows]))
    return [parts[i] for i in np.random.default_rng(1).permutation(len(parts))]


def test_joined_parts_give_the_means_and_intervals_of_one_pass():
    users, values = queries()
    joined = UserSums.concatenate(parts_of(users, values, [7, 20, 21, 44]))
    means = joined.means()
    assert means["recall@20"] == pytest.approx(values["recall@20"].mean(), rel=1e-12)
    assert means["auc"] == pytest.approx(np.nanmean(values["auc"]), rel=1e-12)
    # the same users give the same draws and the same per-user sums: the intervals are identical
    assert joined.intervals(0.9, n_resamples=300) == bootstrap_intervals(
        values, groups=users, n_resamples=300, level=0.9
    )


def test_paired_sums_give_the_paired_bootstrap_of_the_differences():
    users, a = queries(0)
    b = {m: np.random.default_rng(2).permutation(v) for m, v in a.items()}  # another model, same queries
    differences = {m: a[m] - b[m] for m in a}
    joined = UserSums.concatenate(parts_of(users, differences, [30]))
    got = joined.difference_summaries(0.95, n_resamples=200)
    expected = paired_difference(a, b, groups=users, n_resamples=200, level=0.95)
    for metric, summary in expected.items():
        assert got[metric]["low"] == summary["low"] and got[metric]["high"] == summary["high"]
        assert got[metric]["p_not_greater"] == summary["p_not_greater"]
        assert got[metric]["difference"] == pytest.approx(summary["difference"], rel=1e-12)


def test_a_user_in_two_parts_is_refused_and_names_the_user():
    users, values = queries()
    whole = UserSums.of_queries(values, users)
    with pytest.raises(ValueError, match=f"user {int(whole.users[0])} was summarised in two parts"):
        UserSums.concatenate([whole, UserSums.of_queries({m: v[:9] for m, v in values.items()}, users[:9])])


def test_parts_must_agree_on_the_metrics():
    users, values = queries()
    with pytest.raises(ValueError, match="disagree on the metrics"):
        UserSums.concatenate(
            [UserSums.of_queries(values, users), UserSums.of_queries({"auc": values["auc"]}, users + 5000)]
        )


def test_no_users_give_nan_means_and_intervals():
    nothing = UserSums.of_queries({"recall@20": np.zeros(0)}, np.zeros(0, np.int64))
    assert np.isnan(nothing.means()["recall@20"])
    assert all(np.isnan(bound) for bound in nothing.intervals()["recall@20"])
