"""CSR-style ragged integer sets: one variable-length list of item ids per query.

Relevant and excluded items differ in count from query to query, and a list of Python lists (or a dense
users × items mask) does not scale to the full catalogue, so every caller passes two flat arrays instead:
``indices`` (all ids, query after query) and ``indptr`` (where each query's ids start and stop). This is
the same layout as ``scipy.sparse.csr_matrix`` without requiring scipy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Ragged"]


def _as_int_array(values: object, name: str) -> np.ndarray:
    """Converts to int64, refusing floats: silently truncating 3.7 to item 3 would hide a caller bug."""
    array = np.asarray(values)
    if array.size == 0:
        return np.zeros(array.shape, dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"Ragged.{name} must hold integers, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)


@dataclass(frozen=True, eq=False)
class Ragged:
    """Row ``i`` is ``indices[indptr[i]:indptr[i + 1]]``.

    Frozen so a set handed to an accumulator cannot be re-pointed afterwards; ``eq=False`` because
    element-wise numpy comparison has no single truth value.
    """

    indptr: np.ndarray
    indices: np.ndarray

    def __post_init__(self) -> None:
        indptr = _as_int_array(self.indptr, "indptr")
        indices = _as_int_array(self.indices, "indices")
        if indptr.ndim != 1 or indptr.size == 0:
            raise ValueError("Ragged.indptr must be a non-empty 1-D array (length = rows + 1)")
        if indices.ndim != 1:
            raise ValueError("Ragged.indices must be a 1-D array")
        if indptr[0] != 0 or indptr[-1] != indices.size:
            raise ValueError(
                f"Ragged.indptr must start at 0 and end at len(indices)={indices.size}, "
                f"got {indptr[0]} .. {indptr[-1]}"
            )
        if np.any(np.diff(indptr) < 0):
            raise ValueError("Ragged.indptr must be non-decreasing")
        object.__setattr__(self, "indptr", indptr)
        object.__setattr__(self, "indices", indices)

    @classmethod
    def from_lists(cls, rows: Iterable[Iterable[int]]) -> Ragged:
        """Builds from Python lists; meant for tests and small callers, not for millions of rows."""
        materialised: list[Sequence[int]] = [list(row) for row in rows]
        lengths = np.fromiter((len(row) for row in materialised), dtype=np.int64, count=len(materialised))
        indptr = np.zeros(len(materialised) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        flat = [item for row in materialised for item in row]
        if not all(isinstance(item, int | np.integer) for item in flat):
            raise TypeError("Ragged.from_lists needs integer item ids")
        indices = np.asarray(flat, dtype=np.int64) if flat else np.zeros(0, dtype=np.int64)
        return cls(indptr, indices)

    @classmethod
    def empty(cls, rows: int) -> Ragged:
        """``rows`` empty sets, e.g. "nothing excluded" for a block of that many queries."""
        return cls(np.zeros(rows + 1, dtype=np.int64), np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        return int(self.indptr.size - 1)

    def row(self, i: int) -> np.ndarray:
        """The ids of row ``i`` (a view, not a copy)."""
        n_rows = len(self)
        if not -n_rows <= i < n_rows:
            raise IndexError(f"row {i} out of range for {n_rows} rows")
        i %= n_rows
        return self.indices[self.indptr[i] : self.indptr[i + 1]]

    def lengths(self) -> np.ndarray:
        """Number of ids per row."""
        return np.diff(self.indptr)

    def row_ids(self) -> np.ndarray:
        """The row of every entry of ``indices`` (so per-entry work can be vectorised)."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.lengths())

    def union(self, other: Ragged) -> Ragged:
        """Row-wise concatenation of two sets with the same rows (duplicates are harmless: every user
        of a Ragged reads it as a set)."""
        if len(other) != len(self):
            raise ValueError(f"cannot unite Ragged sets of {len(self)} and {len(other)} rows")
        rows = np.concatenate((self.row_ids(), other.row_ids()))
        order = np.argsort(rows, kind="stable")
        indices = np.concatenate((self.indices, other.indices))[order]
        return Ragged(self.indptr + other.indptr, indices)

    def slice(self, start: int, stop: int) -> Ragged:
        """Rows ``start:stop`` as a new Ragged, so sets can be cut into the same blocks as the scores."""
        n_rows = len(self)
        start, stop, _ = slice(start, stop).indices(n_rows)
        stop = max(start, stop)
        lo, hi = self.indptr[start], self.indptr[stop]
        return Ragged(self.indptr[start : stop + 1] - lo, self.indices[lo:hi])
