"""Retrieve, then re-rank (LSIC §4.2): a ranking-trained MF proposes N candidates, G orders them.

Eq. (1) fits ratings through a logistic ρ, but the paper ranks with MF "for ranking prediction directly,
similar to IRGAN": the candidate MF here is BPR-trained (Rendle et al. 2009) on the positives
(`models.matrix_factorization.BPRMF`, d = `mf_dim`). `rerank` turns both score matrices into one full
ranking: the N candidates first, in G's order, then every other item in MF's order — so a positive
outside the candidates still gets a (low) rank instead of a tie at −inf.
"""

from __future__ import annotations

import keras
import numpy as np

from movierec.models.losses import RankingLoss
from movierec.models.matrix_factorization import BPRMF, TripleSampler


def train_candidate_mf(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, dim: int, epochs: int, seed: int
) -> BPRMF:
    """BPR-MF on (user, positive item) pairs: 4 uniform negatives per pair, Adam 5e-3, batch 1,024
    (the project's BPR-MF defaults, d = `dim`)."""
    keras.utils.set_random_seed(seed)
    model = built_mf(n_users, n_items, dim)
    model.compile(optimizer=keras.optimizers.Adam(5e-3), loss=RankingLoss("bpr"))
    if len(users) and epochs:
        sampler = TripleSampler(users.astype(np.int32), items.astype(np.int32), n_items, 1024, 4, seed)
        model.fit(sampler, epochs=epochs, verbose=0)
    return model


def built_mf(n_users: int, n_items: int, dim: int) -> BPRMF:
    """A BPRMF with its weights created (to train, or to load weights into)."""
    model = BPRMF(n_users, n_items, dim, l2=1e-5)
    model({"user": np.zeros(1, np.int32), "items": np.zeros((1, 1), np.int32)})
    return model


def candidate_mask(mf_scores: np.ndarray, n: int, excluded: np.ndarray | None = None) -> np.ndarray:
    """[B, M] True for each row's top-`n` MF items (excluded items never; ties: lower index first)."""
    scores = np.array(mf_scores, dtype=np.float64)
    if excluded is not None:
        scores[excluded] = -np.inf
    n = min(n, scores.shape[1])
    top = np.argsort(-scores, axis=1, kind="stable")[:, :n]
    mask = np.zeros(scores.shape, dtype=bool)
    np.put_along_axis(mask, top, True, axis=1)
    if excluded is not None:
        mask &= ~excluded
    return mask


def rerank(
    mf_scores: np.ndarray, scorer_scores: np.ndarray, n: int, excluded: np.ndarray | None = None
) -> np.ndarray:
    """One score row per query: the top-`n` MF candidates (not `excluded`) above everything else and
    ordered by `scorer_scores`, the rest by MF. `n` = 0: `scorer_scores` alone (G ranks everything)."""
    scorer_scores = np.asarray(scorer_scores, dtype=np.float64)
    if n <= 0:
        return scorer_scores.astype(np.float32)
    mf = np.asarray(mf_scores, dtype=np.float64)
    mask = candidate_mask(mf, n, excluded)
    # shift the candidates' scores above every non-candidate's MF score, row by row
    top_rest = np.where(mask, -np.inf, mf).max(axis=1, keepdims=True)
    low = np.where(mask, scorer_scores, np.inf).min(axis=1, keepdims=True)
    shift = np.where(np.isfinite(top_rest), top_rest - low + 1.0, 0.0)
    return np.where(mask, scorer_scores + shift, mf).astype(np.float32)
