"""top_k: deterministic recommendations (equal scores -> lower item id first), exclusions honoured."""

import numpy as np
import pytest

from movierec.evaluation import Ragged, top_k


def test_order_and_tie_breaking() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0]])
    indices, values = top_k(scores, 4)
    # the three 3.0s in id order (1, 2, 4), then the 2.0 (item 3)
    np.testing.assert_array_equal(indices, [[1, 2, 4, 3]])
    np.testing.assert_array_equal(values, [[3.0, 3.0, 3.0, 2.0]])


def test_ties_at_the_cut_take_the_lowest_ids() -> None:
    # argpartition alone may return any two of five equal items; we must get 0 and 1
    indices, _ = top_k(np.full((2, 5), 7.0), 2)
    np.testing.assert_array_equal(indices, [[0, 1], [0, 1]])
    # cut inside a tie after a strictly better item: 9 first, then the lowest-id 5s (items 0, 2)
    indices, values = top_k(np.array([[5.0, 1.0, 5.0, 9.0, 5.0]]), 3)
    np.testing.assert_array_equal(indices, [[3, 0, 2]])
    np.testing.assert_array_equal(values, [[9.0, 5.0, 5.0]])


def test_excluded_items_are_never_returned() -> None:
    scores = np.array([[1.0, 3.0, 3.0, 2.0, 3.0], [0.0, -np.inf, 1.0, 2.0, 3.0]])
    indices, values = top_k(scores, 2, Ragged.from_lists([[1], [4, 3]]))
    np.testing.assert_array_equal(indices, [[2, 4], [2, 0]])
    np.testing.assert_array_equal(values, [[3.0, 3.0], [1.0, 0.0]])


def test_short_rows_are_padded_and_k_is_capped() -> None:
    # 3 items, 2 excluded -> one real recommendation, then -1 / -inf padding; a -inf candidate stays real
    indices, values = top_k(np.array([[-np.inf, 5.0, 6.0]]), 10, Ragged.from_lists([[1, 2]]))
    np.testing.assert_array_equal(indices, [[0, -1, -1]])
    np.testing.assert_array_equal(values, [[-np.inf, -np.inf, -np.inf]])


def test_matches_a_full_sort_on_random_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 4, size=(50, 30)).astype(np.float32)
    indices, values = top_k(scores, 7)
    for row in range(scores.shape[0]):
        expected = sorted(range(30), key=lambda j, row=row: (-scores[row, j], j))[:7]
        np.testing.assert_array_equal(indices[row], expected)
        np.testing.assert_array_equal(values[row], scores[row, expected])


def test_invalid_input_raises() -> None:
    with pytest.raises(ValueError, match="row 1"):
        top_k(np.array([[1.0, 2.0], [np.nan, 1.0]]), 1)
    with pytest.raises(ValueError):
        top_k(np.zeros((1, 3)), 0)
