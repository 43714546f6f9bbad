"""Per-user sums of per-query metrics: what means over queries and a user bootstrap need, and no more.

Why: a mean over queries and a bootstrap that resamples users (`movierec.evaluation.bootstrap`) only
read, per user, the sum of the user's query values and how many of them are defined. Workers that
each score a disjoint set of users (the TFX evaluator's Beam transforms) summarise their users, and
`UserSums.concatenate` joins the parts: memory grows with the users, not with the queries, and the
means and intervals are those of one pass over all queries — the same resamples, because the draws
depend only on the number of users, and the same per-user sums, because each user's values are added
in query order wherever the user was scored.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from movierec.evaluation.bootstrap import (
    difference_summary,
    group_sums,
    percentile_interval,
    resampled_group_means,
)

__all__ = ["UserSums"]


@dataclasses.dataclass(frozen=True)
class UserSums:
    """Per user (ascending index), per metric: the sum of the user's defined query values and how many
    values are defined (NaN marks an undefined one, e.g. ``auc`` of a query without negatives).

    Example:
        >>> sums = UserSums.of_queries({"recall@20": np.array([1.0, 0.0, 1.0])}, np.array([7, 7, 3]))
        >>> sums.users.tolist(), sums.means()["recall@20"]
        ([3, 7], 0.6666666666666666)
    """

    users: np.ndarray
    names: tuple[str, ...]
    sums: np.ndarray
    counts: np.ndarray

    def __post_init__(self) -> None:
        shape = (len(self.users), len(self.names))
        if self.sums.shape != shape or self.counts.shape != shape:
            raise ValueError(
                f"sums {self.sums.shape} and counts {self.counts.shape} must be [users, metrics] = {shape}"
            )
        if len(self.users) > 1 and not (np.diff(self.users) > 0).all():
            raise ValueError("users must be unique and ascending")

    @classmethod
    def of_queries(cls, values: Mapping[str, np.ndarray], users: np.ndarray) -> UserSums:
        """Sums of per-query `values` (one array per metric, one value per query) by each query's user."""
        names = tuple(values)
        users = np.asarray(users)
        columns = [np.asarray(values[name], dtype=np.float64) for name in names]
        for name, column in zip(names, columns, strict=True):
            if column.shape != users.shape:
                raise ValueError(f"{name!r} has {column.shape} values for {users.shape} query users")
        unique, group_of = np.unique(users, return_inverse=True)
        if not names:
            empty = np.zeros((unique.size, 0))
            return cls(unique.astype(np.int64), names, empty, empty.copy())
        stacked = np.column_stack(columns) if users.size else np.zeros((0, len(names)))
        sums, counts = group_sums(stacked, group_of.ravel(), unique.size)
        return cls(unique.astype(np.int64), names, sums, counts)

    @classmethod
    def concatenate(cls, parts: Sequence[UserSums]) -> UserSums:
        """One summary of disjoint parts (a user summarised in two parts is an error: its queries would
        count twice)."""
        if not parts:
            raise ValueError("nothing to concatenate")
        names = parts[0].names
        for part in parts[1:]:
            if part.names != names:
                raise ValueError(f"parts disagree on the metrics: {names} vs {part.names}")
        users = np.concatenate([part.users for part in parts])
        order = np.argsort(users, kind="stable")
        users = users[order]
        repeated = users[1:][users[1:] == users[:-1]]
        if repeated.size:
            raise ValueError(f"user {int(repeated[0])} was summarised in two parts")
        return cls(
            users,
            names,
            np.concatenate([part.sums for part in parts])[order],
            np.concatenate([part.counts for part in parts])[order],
        )

    def means(self) -> dict[str, float]:
        """Mean over all defined query values, per metric (NaN where none is defined)."""
        totals, defined = self.sums.sum(axis=0), self.counts.sum(axis=0)
        return {
            name: float(totals[j] / defined[j]) if defined[j] else math.nan
            for j, name in enumerate(self.names)
        }

    def resampled_means(self, n_resamples: int = 1000, seed: int = 0) -> np.ndarray:
        """Bootstrap means [n_resamples, metrics], users drawn with replacement."""
        return resampled_group_means(self.sums, self.counts, n_resamples=n_resamples, seed=seed)

    def intervals(
        self, level: float = 0.95, n_resamples: int = 1000, seed: int = 0
    ) -> dict[str, tuple[float, float]]:
        """Percentile user-bootstrap interval of each metric's mean."""
        means = self.resampled_means(n_resamples, seed)
        return {name: percentile_interval(means[:, j], level) for j, name in enumerate(self.names)}

    def difference_summaries(
        self, level: float = 0.95, n_resamples: int = 1000, seed: int = 0
    ) -> dict[str, dict[str, float]]:
        """For sums of per-query differences a − b (see `paired_difference`): per metric the
        ``difference``, its interval ``low``/``high`` and ``p_not_greater``."""
        points, means = self.means(), self.resampled_means(n_resamples, seed)
        return {
            name: difference_summary(points[name], means[:, j], level) for j, name in enumerate(self.names)
        }
