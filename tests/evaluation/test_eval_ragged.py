"""Ragged: the CSR-style per-query item sets every evaluation caller passes."""

import numpy as np
import pytest

from movierec.evaluation import Ragged


def test_from_lists_builds_csr_arrays() -> None:
    sets = Ragged.from_lists([[3, 1], [], [7]])
    # indptr = cumulative lengths 0, 2, 2, 3; indices = rows concatenated
    np.testing.assert_array_equal(sets.indptr, [0, 2, 2, 3])
    np.testing.assert_array_equal(sets.indices, [3, 1, 7])
    assert sets.indptr.dtype == np.int64
    assert sets.indices.dtype == np.int64
    assert len(sets) == 3
    np.testing.assert_array_equal(sets.row(0), [3, 1])
    assert sets.row(1).size == 0
    np.testing.assert_array_equal(sets.row(-1), [7])
    np.testing.assert_array_equal(sets.lengths(), [2, 0, 1])
    np.testing.assert_array_equal(sets.row_ids(), [0, 0, 2])


def test_empty_and_slice() -> None:
    assert len(Ragged.empty(4)) == 4
    assert Ragged.empty(4).indices.size == 0
    assert len(Ragged.from_lists([])) == 0
    sliced = Ragged.from_lists([[1], [2, 3], [], [4, 5, 6]]).slice(1, 4)
    np.testing.assert_array_equal(sliced.indptr, [0, 2, 2, 5])
    np.testing.assert_array_equal(sliced.indices, [2, 3, 4, 5, 6])


def test_row_out_of_range() -> None:
    with pytest.raises(IndexError):
        Ragged.from_lists([[1]]).row(1)


@pytest.mark.parametrize(
    ("indptr", "indices"),
    [
        ([1, 2], [5, 6]),  # must start at 0
        ([0, 3], [5, 6]),  # must end at len(indices)
        ([0, 2, 1, 2], [5, 6]),  # must not decrease
        ([], []),  # needs at least one entry
    ],
)
def test_invalid_layout_raises(indptr: list[int], indices: list[int]) -> None:
    with pytest.raises(ValueError):
        Ragged(np.asarray(indptr, dtype=np.int64), np.asarray(indices, dtype=np.int64))


def test_float_ids_are_refused() -> None:
    with pytest.raises(TypeError):
        Ragged(np.array([0, 1]), np.array([2.5]))
    with pytest.raises(TypeError):
        Ragged.from_lists([[2.5]])
