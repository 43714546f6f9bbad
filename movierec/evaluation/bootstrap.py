"""Percentile-bootstrap confidence intervals for means over queries.

Why: two models' metrics that differ in the third decimal on a few thousand users are often noise; an
interval per metric says so. The resampling unit is the query (user), matching how ``result()`` averages.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

__all__ = ["bootstrap_intervals"]

#: Resampled query slots held at once (resamples per chunk × queries); bounds memory for 10^6 queries.
_RESAMPLE_BUDGET = 1 << 23


def bootstrap_intervals(
    per_query_values: Mapping[str, np.ndarray],
    *,
    n_resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap interval of the mean of every metric, deterministic for a ``seed``.

    All metrics are resampled with the *same* query draws (they come from the same queries, so this
    keeps them paired). NaN marks a value undefined for that query (``auc`` without negatives): each
    resample averages only its defined values, exactly as ``RankingAccumulator.result`` does.
    Resamples are drawn in chunks as per-query multiplicity weights, so memory stays bounded (the
    stacked values plus a fixed budget of resampled slots) and each chunk's means are one matrix product;
    10^6 queries × 21 metrics × 1000 resamples take about 15 s on one core.
    """
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    names = list(per_query_values)
    if not names:
        return {}
    columns = [np.asarray(per_query_values[name], dtype=np.float64) for name in names]
    for name, column in zip(names, columns, strict=True):
        if column.ndim != 1:
            raise ValueError(f"per-query values of {name!r} must be 1-D, got shape {column.shape}")
        if np.isinf(column).any():
            raise ValueError(f"per-query values of {name!r} contain infinities")
    n_queries = columns[0].size
    if any(column.size != n_queries for column in columns):
        sizes = {name: column.size for name, column in zip(names, columns, strict=True)}
        raise ValueError(f"all metrics must have one value per query, got lengths {sizes}")
    if n_queries == 0:
        return {name: (math.nan, math.nan) for name in names}

    values = np.column_stack(columns)
    undefined = np.isnan(values)
    partial = np.flatnonzero(undefined.any(axis=0))  # columns that need a per-resample count
    defined = (~undefined[:, partial]).astype(np.float64)
    values[undefined] = 0.0
    del undefined

    rng = np.random.default_rng(seed)
    step = max(1, _RESAMPLE_BUDGET // n_queries)
    means = np.empty((n_resamples, len(names)), dtype=np.float64)
    index_dtype = np.int32 if n_queries < 2**31 else np.int64  # 32-bit draws are about twice as fast
    weights = np.empty((min(step, n_resamples), n_queries), dtype=np.float64)
    for lo in range(0, n_resamples, step):
        size = min(step, n_resamples - lo)
        draws = rng.integers(0, n_queries, size=(size, n_queries), dtype=index_dtype)
        # One bincount per resample keeps the histogram cache-sized (a flat one over the chunk is slower).
        for i in range(size):
            weights[i] = np.bincount(draws[i], minlength=n_queries)
        del draws
        sums = weights[:size] @ values
        counts = np.full(sums.shape, float(n_queries))
        if partial.size:
            counts[:, partial] = weights[:size] @ defined
        with np.errstate(invalid="ignore", divide="ignore"):
            means[lo : lo + size] = sums / counts

    tail = (1.0 - level) / 2.0
    out: dict[str, tuple[float, float]] = {}
    for j, name in enumerate(names):
        column = means[:, j]
        column = column[~np.isnan(column)]
        if column.size == 0:
            out[name] = (math.nan, math.nan)
            continue
        low, high = np.quantile(column, [tail, 1.0 - tail])
        out[name] = (float(low), float(high))
    return out
