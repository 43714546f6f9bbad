"""RankingAccumulator against hand-computed values on tiny catalogues.

Notation in the comments: pos_r = 1 + #{non-relevant candidates with s_j >= s_r} + (relevant items
ranked before r); log2(3) = 1.5849625, 1/log2(3) = 0.6309298, 1/log2(4) = 0.5, 1/log2(5) = 0.4306766.
"""

import itertools
import math
import pickle

import numpy as np
import pytest

from movierec.evaluation import Ragged, RankingAccumulator

INV_LOG2_3 = 1.0 / math.log2(3.0)
INV_LOG2_5 = 1.0 / math.log2(5.0)


def one_query(
    scores: list[float],
    relevant: list[int],
    excluded: list[int] | None = None,
    ks: tuple[int, ...] = (1, 2, 3, 5),
) -> dict[str, float]:
    acc = RankingAccumulator(ks=ks)
    acc.update(
        np.array([scores], dtype=np.float64),
        Ragged.from_lists([relevant]),
        None if excluded is None else Ragged.from_lists([excluded]),
    )
    return acc.result()


def assert_metrics(result: dict[str, float], expected: dict[str, float]) -> None:
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=1e-12), key


def test_result_keys() -> None:
    result = one_query([0.1, 0.9], [0], ks=(5, 10))
    assert list(result) == [
        "hit_rate@5", "recall@5", "precision@5", "ndcg@5", "mrr@5", "map@5",
        "hit_rate@10", "recall@10", "precision@10", "ndcg@10", "mrr@10", "map@10",
        "mrr", "map", "auc", "queries", "queries_without_relevant", "queries_without_negatives",
    ]  # fmt: skip


def test_single_relevant_item() -> None:
    # scores 0.1 0.9 0.5 0.3 0.7, target item 2 (0.5): items 1 (0.9) and 4 (0.7) beat it -> pos 3
    result = one_query([0.1, 0.9, 0.5, 0.3, 0.7], [2])
    assert_metrics(
        result,
        {
            "hit_rate@1": 0.0, "hit_rate@2": 0.0, "hit_rate@3": 1.0, "hit_rate@5": 1.0,
            "recall@2": 0.0, "recall@3": 1.0,
            "precision@1": 0.0, "precision@3": 1 / 3, "precision@5": 1 / 5,
            "ndcg@2": 0.0, "ndcg@3": 0.5,  # (1/log2(3+1)) / (1/log2(2)) = 0.5
            "mrr@2": 0.0, "mrr@3": 1 / 3, "mrr": 1 / 3,
            "map@2": 0.0, "map@3": 1 / 3, "map": 1 / 3,  # (1/min(1,3)) * (1/3)
            "auc": 0.5,  # 4 negatives, 2 of them score >= 0.5: 1 - 2/4
            "queries": 1, "queries_without_relevant": 0, "queries_without_negatives": 0,
        },
    )  # fmt: skip


def test_target_tied_with_non_relevant_ranks_below_them() -> None:
    # scores 1 2 2 2 0, target item 2 (2): items 1 and 3 also score 2 and go first -> pos 3 (not 1)
    result = one_query([1.0, 2.0, 2.0, 2.0, 0.0], [2])
    assert_metrics(result, {"mrr": 1 / 3, "hit_rate@2": 0.0, "hit_rate@3": 1.0, "auc": 1 - 2 / 4})


def test_constant_model_gets_the_worst_position() -> None:
    # all 5 scores equal: all 4 non-relevant items tie with the target -> pos 5, auc 1 - 4/4 = 0
    result = one_query([0.0] * 5, [0])
    assert_metrics(
        result, {"mrr": 1 / 5, "mrr@3": 0.0, "hit_rate@5": 1.0, "ndcg@5": 1 / math.log2(6), "auc": 0.0}
    )


def test_ties_among_relevant_items() -> None:
    # scores 3 5 5 1 5, relevant {1, 2} (both 5); non-relevant: 0 (3), 3 (1), 4 (5)
    # each target has 1 non-relevant (item 4) with s >= 5; the two targets take positions 2 and 3
    expected = {
        "hit_rate@1": 0.0, "hit_rate@2": 1.0,
        "recall@1": 0.0, "recall@2": 0.5, "recall@3": 1.0, "recall@5": 1.0,
        "precision@2": 1 / 2, "precision@3": 2 / 3, "precision@5": 2 / 5,
        # ndcg@2 = (1/log2 3) / (1 + 1/log2 3); ndcg@3 = (1/log2 3 + 1/log2 4) / (1 + 1/log2 3)
        "ndcg@2": INV_LOG2_3 / (1 + INV_LOG2_3),
        "ndcg@3": (INV_LOG2_3 + 0.5) / (1 + INV_LOG2_3),
        "mrr@1": 0.0, "mrr@2": 0.5, "mrr": 0.5,
        # map@2 = (1/min(2,2)) * (1/2); map@3 = map = (1/2) * (1/2 + 2/3) = 7/12
        "map@2": 1 / 4, "map@3": 7 / 12, "map": 7 / 12,
        "auc": 1 - 1 / 3,  # 3 negatives, 1 scores >= 5 for either target
    }  # fmt: skip
    assert_metrics(one_query([3.0, 5.0, 5.0, 1.0, 5.0], [1, 2]), expected)
    # swapping which of the tied items is relevant (2 -> 4) changes no metric
    assert_metrics(one_query([3.0, 5.0, 5.0, 1.0, 5.0], [1, 4]), expected)
    assert_metrics(one_query([3.0, 5.0, 5.0, 1.0, 5.0], [4, 2]), expected)


def test_positions_are_kept_on_request() -> None:
    acc = RankingAccumulator(ks=(5,), keep_positions=True)
    acc.update(
        np.array([[3.0, 5.0, 5.0, 1.0, 5.0], [1.0, 0.0, 0.0, 0.0, 0.0]]), Ragged.from_lists([[2, 1], [0]])
    )
    positions = acc.positions()
    np.testing.assert_array_equal(positions.row(0), [2, 3])  # see test_ties_among_relevant_items
    np.testing.assert_array_equal(positions.row(1), [1])
    with pytest.raises(RuntimeError):
        RankingAccumulator().positions()


def test_excluded_items_leave_the_candidates_but_a_relevant_one_stays() -> None:
    # scores 0.9 0.8 0.7 0.6 0.5 0.4, relevant {2, 5}, excluded {0, 2, 3}: E \ R = {0, 3}
    # candidates 1 2 4 5 -> target 2 (0.7): item 1 beats it -> pos 2
    #                       target 5 (0.4): items 1, 4 beat it, target 2 ranks before it -> pos 4
    result = one_query([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [2, 5], [0, 2, 3])
    assert_metrics(
        result,
        {
            "hit_rate@1": 0.0, "hit_rate@2": 1.0,
            "recall@3": 1 / 2, "recall@5": 1.0, "precision@5": 2 / 5,
            "ndcg@5": (INV_LOG2_3 + INV_LOG2_5) / (1 + INV_LOG2_3),
            "mrr": 1 / 2,
            "map@3": 1 / 4,  # (1/min(2,3)) * (1/2)
            "map": 1 / 2,  # (1/2) * (1/2 + 2/4)
            # n_neg = 6 - |E \ R| - |R| = 2; target 2: 1 - 1/2, target 5: 1 - 2/2 -> mean 0.25
            "auc": 0.25,
        },
    )  # fmt: skip
    # without the exclusions: target 2 -> pos 3 (items 0, 1 first), target 5 -> pos 6
    assert_metrics(
        one_query([0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [2, 5]), {"mrr": 1 / 3, "map": (1 / 3 + 2 / 6) / 2}
    )


def test_excluded_item_with_equal_score_does_not_count_as_a_tie() -> None:
    # item 1 ties with the target but is excluded -> only item 3 (also 2.0) counts -> pos 2
    assert_metrics(one_query([1.0, 2.0, 2.0, 2.0], [2], [1]), {"mrr": 1 / 2, "auc": 1 - 1 / 2})


def test_minus_infinity_is_a_valid_low_score() -> None:
    # target at -inf ties (conservatively) with the other -inf candidate and is beaten by 1.0 -> pos 3
    assert_metrics(one_query([-np.inf, -np.inf, 1.0], [0]), {"mrr": 1 / 3, "auc": 0.0})
    # excluding item 1 (also -inf) moves it up one
    assert_metrics(one_query([-np.inf, -np.inf, 1.0], [0], [1]), {"mrr": 1 / 2, "auc": 0.0})


def test_duplicate_ids_are_a_set() -> None:
    assert one_query([0.1, 0.9, 0.5, 0.3, 0.7], [2, 2], [1, 1]) == one_query(
        [0.1, 0.9, 0.5, 0.3, 0.7], [2], [1]
    )


def test_k_larger_than_the_catalogue() -> None:
    # scores 1 2 3, relevant {0, 2}: target 2 -> pos 1;
    # target 0 -> item 1 beats it and target 2 ranks before it -> pos 3
    result = one_query([1.0, 2.0, 3.0], [0, 2], ks=(10,))
    assert_metrics(
        result,
        {
            "hit_rate@10": 1.0, "recall@10": 1.0,
            "precision@10": 2 / 10,  # precision divides by K even past the catalogue
            "ndcg@10": (1 + 0.5) / (1 + INV_LOG2_3),  # ideal uses min(|R|, K) = 2 positions
            "map@10": (1 / 1 + 2 / 3) / 2, "mrr@10": 1.0,
        },
    )  # fmt: skip


def test_queries_without_relevant_are_skipped_and_counted() -> None:
    acc = RankingAccumulator(ks=(3,))
    acc.update(
        np.array([[0.1, 0.9, 0.5, 0.3, 0.7], [1.0, 2.0, 3.0, 4.0, 5.0], [0.0, 0.0, 0.0, 0.0, 9.0]]),
        Ragged.from_lists([[2], [], [4]]),
    )
    result = acc.result()
    # row 0: pos 3; row 2: pos 1; the empty row is not averaged as zeros
    assert result["queries"] == 2
    assert result["queries_without_relevant"] == 1
    assert result["mrr"] == pytest.approx((1 / 3 + 1) / 2)
    assert result["hit_rate@3"] == pytest.approx(1.0)
    np.testing.assert_allclose(acc.per_query()["mrr"], [1 / 3, 1.0])
    np.testing.assert_array_equal(acc.query_rows(), [0, 2])


def test_query_without_negatives_is_left_out_of_auc_only() -> None:
    acc = RankingAccumulator(ks=(1,))
    # row 0: every other item excluded -> n_neg = 0, pos 1; row 1: auc 1 - 2/4 = 0.5 (pos 3)
    acc.update(
        np.array([[0.0, 5.0, 5.0, 5.0, 5.0], [0.1, 0.9, 0.5, 0.3, 0.7]]),
        Ragged.from_lists([[0], [2]]),
        Ragged.from_lists([[1, 2, 3, 4], []]),
    )
    result = acc.result()
    assert result["auc"] == pytest.approx(0.5)
    assert result["queries_without_negatives"] == 1
    assert result["mrr"] == pytest.approx((1 + 1 / 3) / 2)
    auc = acc.per_query()["auc"]
    assert math.isnan(auc[0])
    assert auc[1] == pytest.approx(0.5)


def test_no_queries_gives_nan_means() -> None:
    acc = RankingAccumulator(ks=(1,))
    acc.update(np.zeros((2, 3)), Ragged.empty(2))
    result = acc.result()
    assert math.isnan(result["mrr"])
    assert result["queries"] == 0
    assert result["queries_without_relevant"] == 2


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_invalid_scores_raise_naming_the_row(bad: float) -> None:
    acc = RankingAccumulator()
    scores = np.zeros((3, 4))
    scores[1, 2] = bad
    with pytest.raises(ValueError, match=r"query row 1 of this block \(row 1 overall"):
        acc.update(scores, Ragged.from_lists([[0], [0], [0]]))
    acc.update(np.zeros((2, 4)), Ragged.from_lists([[0], [0]]))
    with pytest.raises(ValueError, match=r"query row 1 of this block \(row 3 overall"):
        acc.update(scores, Ragged.from_lists([[0], [0], [0]]))


def test_invalid_sets_raise() -> None:
    acc = RankingAccumulator()
    with pytest.raises(ValueError, match="outside the catalogue"):
        acc.update(np.zeros((1, 4)), Ragged.from_lists([[4]]))
    with pytest.raises(ValueError, match="outside the catalogue"):
        acc.update(np.zeros((1, 4)), Ragged.from_lists([[0]]), Ragged.from_lists([[-1]]))
    with pytest.raises(ValueError, match="rows"):
        acc.update(np.zeros((2, 4)), Ragged.from_lists([[0]]))
    with pytest.raises(ValueError, match="2-D"):
        acc.update(np.zeros(4), Ragged.from_lists([[0]]))
    with pytest.raises(ValueError):
        RankingAccumulator(ks=(0, 5))
    assert acc.result()["queries"] == 0  # failed updates leave no partial state


def random_block(
    rng: np.random.Generator, n_rows: int, n_items: int
) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    scores = rng.integers(0, 4, size=(n_rows, n_items)).astype(np.float64)
    relevant = [
        sorted(rng.choice(n_items, size=rng.integers(0, 6), replace=False).tolist()) for _ in range(n_rows)
    ]
    excluded = [rng.choice(n_items, size=rng.integers(0, 8), replace=False).tolist() for _ in range(n_rows)]
    return scores, relevant, excluded


def feed(
    acc: RankingAccumulator, scores: np.ndarray, relevant: list, excluded: list, cuts: list[int]
) -> None:
    for lo, hi in itertools.pairwise(cuts):
        acc.update(scores[lo:hi], Ragged.from_lists(relevant[lo:hi]), Ragged.from_lists(excluded[lo:hi]))


def assert_same(a: RankingAccumulator, b: RankingAccumulator) -> None:
    assert a.result() == pytest.approx(b.result(), nan_ok=True, rel=0, abs=0)
    for key, values in a.per_query().items():
        np.testing.assert_array_equal(values, b.per_query()[key], err_msg=key)
    np.testing.assert_array_equal(a.query_rows(), b.query_rows())


def test_blocks_one_by_one_equal_all_at_once() -> None:
    scores, relevant, excluded = random_block(np.random.default_rng(1), 60, 12)
    whole, pieces, chunked = RankingAccumulator(), RankingAccumulator(), RankingAccumulator(pair_budget=1)
    feed(whole, scores, relevant, excluded, [0, 60])
    feed(pieces, scores, relevant, excluded, [0, 1, 2, 17, 40, 41, 60])
    feed(chunked, scores, relevant, excluded, [0, 60])  # one relevant pair compared at a time
    assert_same(whole, pieces)
    assert_same(whole, chunked)
    assert whole.result()["queries"] == sum(1 for r in relevant if r)


def test_merge_equals_a_single_accumulator() -> None:
    scores, relevant, excluded = random_block(np.random.default_rng(2), 50, 9)
    single = RankingAccumulator(keep_positions=True)
    feed(single, scores, relevant, excluded, [0, 10, 30, 50])
    parts = [RankingAccumulator(keep_positions=True) for _ in range(3)]
    feed(parts[0], scores, relevant, excluded, [0, 10])
    feed(parts[1], scores, relevant, excluded, [10, 30])
    feed(parts[2], scores, relevant, excluded, [30, 50])
    merged = parts[0].merge(parts[1].merge(parts[2]))
    assert merged is parts[0]
    assert_same(single, merged)
    np.testing.assert_array_equal(single.positions().indices, merged.positions().indices)
    np.testing.assert_array_equal(single.positions().indptr, merged.positions().indptr)
    with pytest.raises(ValueError):
        RankingAccumulator(ks=(5,)).merge(RankingAccumulator(ks=(10,)))


def test_accumulator_survives_pickling() -> None:
    # Beam serialises accumulators between workers before merging them
    scores, relevant, excluded = random_block(np.random.default_rng(3), 20, 7)
    single, first, second = RankingAccumulator(), RankingAccumulator(), RankingAccumulator()
    feed(single, scores, relevant, excluded, [0, 20])
    feed(first, scores, relevant, excluded, [0, 8])
    feed(second, scores, relevant, excluded, [8, 20])
    merged = pickle.loads(pickle.dumps(first)).merge(pickle.loads(pickle.dumps(second)))
    assert_same(single, merged)
