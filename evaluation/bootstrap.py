"""Percentile-bootstrap confidence intervals for means over queries, resampling users.

Why: two models' metrics that differ in the third decimal on a few thousand users are often noise; an
interval per metric says so. The resampling unit is the **user** (``groups``): one user's queries are
correlated (same tastes, same history), so resampling queries one by one would treat them as
independent and understate the uncertainty. A resample draws users with replacement and takes all of
each drawn user's queries; its mean is over those queries, as ``RankingAccumulator.result`` averages.
``paired_difference`` compares two models on the same queries with the same user draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["bootstrap_intervals", "paired_difference"]

#: Resampled query slots held at once (resamples per chunk × queries); bounds memory for 10^6 queries.
_RESAMPLE_BUDGET = 1 << 23


def bootstrap_intervals(
    per_query_values: Mapping[str, np.ndarray],
    *,
    groups: np.ndarray | None = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of the mean of every metric, deterministic for a ``seed``.

    ``groups`` gives each query's resampling unit (its user id); queries of a group are drawn
    together. Without it every query is its own group (only right when queries are independent, e.g.
    one query per user). All metrics are resampled with the *same* draws (they come from the same
    queries, so this keeps them paired). NaN marks a value undefined for that query (``auc`` without
    negatives): each resample averages only its defined values, exactly as
    ``RankingAccumulator.result`` does.
    """
    _check_level(level)
    names, means = resampled_means(per_query_values, groups=groups, n_resamples=n_resamples, seed=seed)
    return {name: percentile_interval(means[:, j], level) for j, name in enumerate(names)}


def paired_difference(
    per_query_a: Mapping[str, np.ndarray],
    per_query_b: Mapping[str, np.ndarray],
    *,
    groups: np.ndarray | None = None,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """Paired bootstrap of mean(a) − mean(b) for two models scored on the *same* queries.

    Both models' values enter each resample through the same user draws, so the interval reflects
    how differently the two models fare on the same users (narrower than two separate intervals
    suggest, and the right test for "is a better than b"). Returns, per metric present in both, the
    ``difference``, its interval ``low``/``high``, and ``p_not_greater``: the share of resamples with
    a − b <= 0 (a one-sided bootstrap p-value for "a is better than b").
    """
    _check_level(level)
    differences = {}
    for name in (name for name in per_query_a if name in per_query_b):
        a = np.asarray(per_query_a[name], dtype=np.float64)
        b = np.asarray(per_query_b[name], dtype=np.float64)
        if a.shape != b.shape:
            raise ValueError(
                f"{name!r}: the two models were scored on different queries ({a.size} vs {b.size} values)"
            )
        differences[name] = a - b  # NaN where either is undefined
    names, means = resampled_means(differences, groups=groups, n_resamples=n_resamples, seed=seed)
    return {
        name: difference_summary(float(np.nanmean(differences[name])), means[:, j], level)
        for j, name in enumerate(names)
    }


def difference_summary(point: float, resampled: np.ndarray, level: float) -> dict[str, float]:
    """A difference of means, its percentile interval from the bootstrap `resampled` means and
    ``p_not_greater``, the share of resamples <= 0 (NaN resamples left out)."""
    low, high = percentile_interval(resampled, level)
    defined = resampled[~np.isnan(resampled)]
    return {
        "difference": point,
        "low": low,
        "high": high,
        "p_not_greater": float((defined <= 0).mean()) if defined.size else math.nan,
    }


def resampled_means(
    per_query_values: Mapping[str, np.ndarray],
    *,
    groups: np.ndarray | None = None,
    n_resamples: int = 1000,
    seed: int = 0,
) -> tuple[list[str], np.ndarray]:
    """The metric names and their bootstrap means [n_resamples, metrics] (NaN where a resample has no
    defined value). Resamples are drawn in chunks as per-group multiplicity weights, so memory stays
    bounded and each chunk's means are one matrix product of the weights with per-group sums and
    counts; 10^6 queries × 21 metrics × 1000 resamples take seconds on one core."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    names = list(per_query_values)
    columns = [np.asarray(per_query_values[name], dtype=np.float64) for name in names]
    for name, column in zip(names, columns, strict=True):
        if column.ndim != 1:
            raise ValueError(f"per-query values of {name!r} must be 1-D, got shape {column.shape}")
        if np.isinf(column).any():
            raise ValueError(f"per-query values of {name!r} contain infinities")
    n_queries = columns[0].size if columns else 0
    if any(column.size != n_queries for column in columns):
        sizes = {name: column.size for name, column in zip(names, columns, strict=True)}
        raise ValueError(f"all metrics must have one value per query, got lengths {sizes}")
    if not names or n_queries == 0:
        return names, np.full((n_resamples, len(names)), math.nan)
    if groups is None:
        group_of = np.arange(n_queries)
    else:
        groups = np.asarray(groups)
        if groups.shape != (n_queries,):
            raise ValueError(f"groups must give one label per query ({n_queries}), got shape {groups.shape}")
        group_of = np.unique(groups, return_inverse=True)[1].ravel()
    n_groups = int(group_of.max()) + 1

    values = np.column_stack(columns)
    if groups is None:
        undefined = np.isnan(values)
        values[undefined] = 0.0
        sums_by_group, counts_by_group = values, (~undefined).astype(np.float64)
    else:
        sums_by_group, counts_by_group = group_sums(values, group_of, n_groups)
    return names, resampled_group_means(sums_by_group, counts_by_group, n_resamples=n_resamples, seed=seed)


def group_sums(values: np.ndarray, group_of: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """Per group and metric, the sum of its queries' defined values and how many are defined
    ([n_groups, metrics] each) from per-query `values` [queries, metrics] (NaN = undefined) and each
    query's group index. Values are added in query order, so a group's sum does not depend on which
    other groups were summarised with it."""
    undefined = np.isnan(values)
    values = np.where(undefined, 0.0, values)
    defined = (~undefined).astype(np.float64)
    sums = np.column_stack(
        [np.bincount(group_of, weights=values[:, j], minlength=n_groups) for j in range(values.shape[1])]
    )
    counts = np.column_stack(
        [np.bincount(group_of, weights=defined[:, j], minlength=n_groups) for j in range(values.shape[1])]
    )
    return sums.reshape(n_groups, values.shape[1]), counts.reshape(n_groups, values.shape[1])


def resampled_group_means(
    sums_by_group: np.ndarray, counts_by_group: np.ndarray, *, n_resamples: int = 1000, seed: int = 0
) -> np.ndarray:
    """Bootstrap means [n_resamples, metrics] from per-group sums and defined counts [groups, metrics]
    (groups drawn with replacement; NaN where a resample has no defined value). The draws depend only
    on the number of groups and `seed`: the same groups, summarised in one place or in many, give the
    same resamples."""
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    sums_by_group = np.asarray(sums_by_group, dtype=np.float64)
    counts_by_group = np.asarray(counts_by_group, dtype=np.float64)
    if sums_by_group.ndim != 2 or sums_by_group.shape != counts_by_group.shape:
        raise ValueError(
            f"sums and counts must both be [groups, metrics], got {sums_by_group.shape} and "
            f"{counts_by_group.shape}"
        )
    n_groups, n_metrics = sums_by_group.shape
    if n_groups == 0:
        return np.full((n_resamples, n_metrics), math.nan)
    rng = np.random.default_rng(seed)
    step = max(1, _RESAMPLE_BUDGET // n_groups)
    means = np.empty((n_resamples, n_metrics), dtype=np.float64)
    index_dtype = np.int32 if n_groups < 2**31 else np.int64  # 32-bit draws are about twice as fast
    weights = np.empty((min(step, n_resamples), n_groups), dtype=np.float64)
    for lo in range(0, n_resamples, step):
        size = min(step, n_resamples - lo)
        draws = rng.integers(0, n_groups, size=(size, n_groups), dtype=index_dtype)
        # One bincount per resample keeps the histogram cache-sized (a flat one over the chunk is slower).
        for i in range(size):
            weights[i] = np.bincount(draws[i], minlength=n_groups)
        del draws
        with np.errstate(invalid="ignore", divide="ignore"):
            means[lo : lo + size] = (weights[:size] @ sums_by_group) / (weights[:size] @ counts_by_group)
    return means


def _check_level(level: float) -> None:
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")


def percentile_interval(column: np.ndarray, level: float) -> tuple[float, float]:
    """The central `level` interval of bootstrap means (NaN resamples left out)."""
    column = column[~np.isnan(column)]
    if column.size == 0:
        return (math.nan, math.nan)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(column, [tail, 1.0 - tail])
    return (float(low), float(high))
