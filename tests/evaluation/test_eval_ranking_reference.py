"""RankingAccumulator against a slow, plainly written reference on random tie-heavy scores.

The reference sorts each query's candidates explicitly (score descending, then non-relevant before
relevant, then item id) and reads positions off the sorted list, so it shares no code or trick
(NaN masking, lexsort, bincount) with the vectorised implementation.
"""

import math

import numpy as np
import pytest

from movierec.evaluation import Ragged, RankingAccumulator

KS = (1, 3, 5, 10, 40)


def reference_query(
    scores: list[float], relevant: set[int], excluded: set[int], ks: tuple[int, ...]
) -> dict[str, float]:
    excluded = excluded - relevant
    candidates = [j for j in range(len(scores)) if j not in excluded]
    # conservative ties: at an equal score every non-relevant item goes first (False sorts before True)
    ranked = sorted(candidates, key=lambda j: (-scores[j], j in relevant, j))
    positions = sorted(i + 1 for i, j in enumerate(ranked) if j in relevant)
    negatives = [j for j in candidates if j not in relevant]
    out: dict[str, float] = {}
    for k in ks:
        hits = [p for p in positions if p <= k]
        out[f"hit_rate@{k}"] = 1.0 if hits else 0.0
        out[f"recall@{k}"] = len(hits) / len(relevant)
        out[f"precision@{k}"] = len(hits) / k
        dcg = sum(1.0 / math.log2(p + 1) for p in hits)
        idcg = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
        out[f"ndcg@{k}"] = dcg / idcg
        out[f"mrr@{k}"] = 1.0 / positions[0] if positions[0] <= k else 0.0
        precisions = [(i + 1) / p for i, p in enumerate(positions) if p <= k]
        out[f"map@{k}"] = sum(precisions) / min(len(relevant), k)
    out["mrr"] = 1.0 / positions[0]
    out["map"] = sum((i + 1) / p for i, p in enumerate(positions)) / len(relevant)
    if negatives:
        fractions = []
        for r in relevant:
            beaten_or_tied = sum(1 for j in negatives if scores[j] >= scores[r])
            fractions.append(1.0 - beaten_or_tied / len(negatives))
        out["auc"] = sum(fractions) / len(fractions)
    else:
        out["auc"] = math.nan
    return out


def random_queries(
    rng: np.random.Generator, n_queries: int, n_items: int
) -> tuple[np.ndarray, list[list[int]], list[list[int]]]:
    scores = rng.integers(0, 5, size=(n_queries, n_items)).astype(np.float64)  # 5 levels: many ties
    scores[rng.random(scores.shape) < 0.05] = -np.inf
    relevant, excluded = [], []
    for q in range(n_queries):
        rel = rng.choice(n_items, size=rng.integers(0, min(6, n_items) + 1), replace=False).tolist()
        exc = rng.choice(n_items, size=rng.integers(0, n_items // 2 + 1), replace=False).tolist()
        if q % 25 == 3 and rel:  # now and then every non-relevant item is excluded (no negatives)
            exc = [j for j in range(n_items) if j not in rel]
        relevant.append(rel)
        excluded.append(exc)
    return scores, relevant, excluded


@pytest.mark.parametrize(("n_items", "seed"), [(25, 0), (8, 1), (3, 2), (60, 3)])
def test_matches_bruteforce_reference(n_items: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    scores, relevant, excluded = random_queries(rng, 200, n_items)
    acc = RankingAccumulator(ks=KS, pair_budget=7 * n_items)  # 7 pairs per chunk: chunks split queries
    lo = 0
    while lo < len(scores):  # random block sizes
        hi = min(len(scores), lo + int(rng.integers(1, 40)))
        acc.update(scores[lo:hi], Ragged.from_lists(relevant[lo:hi]), Ragged.from_lists(excluded[lo:hi]))
        lo = hi

    expected = [
        reference_query(scores[q].tolist(), set(relevant[q]), set(excluded[q]), KS)
        for q in range(len(scores))
        if relevant[q]
    ]
    per_query = acc.per_query()
    assert set(per_query) == set(expected[0])
    for key, values in per_query.items():
        np.testing.assert_allclose(values, [e[key] for e in expected], rtol=1e-12, atol=1e-12, err_msg=key)

    result = acc.result()
    assert result["queries"] == len(expected)
    assert result["queries_without_relevant"] == sum(1 for r in relevant if not r)
    assert result["queries_without_negatives"] == sum(1 for e in expected if math.isnan(e["auc"]))
    assert result["queries_without_negatives"] > 0
    for key in per_query:
        column = [e[key] for e in expected if not math.isnan(e[key])]
        assert result[key] == pytest.approx(sum(column) / len(column), rel=1e-12), key
