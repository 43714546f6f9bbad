"""Item-KNN baseline of the GRU4Rec paper (Hidasi et al., ICLR 2016, §4).

Items similar to the session's latest item are recommended (when several items share the
latest second, their similarities are summed: same-timestamp events are unordered, see
models/base.py). Similarity is the cosine between the
items' session-occurrence vectors, regularised against coincidental high similarity of rare items:
    sim(i, j) = cooc(i, j) / ((supp_i + λ)^α · (supp_j + λ)^(1−α)),
where supp counts the sessions that contain an item (α = 0.5 gives the regularised cosine).
"""

from __future__ import annotations

import dataclasses
import io
from typing import Any

import numpy as np
import scipy.sparse as sp

from movierec import storage
from movierec.models.base import QueryBatch, TrainingData
from movierec.models.hyperparameters import (
    Range,
    hyperparameter,
    is_number,
    make_config,
    require,
    require_numbers,
)


def _inverse_power(values: np.ndarray, exponent: float) -> np.ndarray:
    """values ** -exponent, and 0 for items no session contains (they have no similarity at all)."""
    result = np.zeros_like(values, dtype=np.float64)
    positive = values > 0
    result[positive] = values[positive] ** -exponent
    return result


@dataclasses.dataclass(frozen=True)
class ItemKNNConfig:
    # search=: the paper fixes λ = 20 and α = 0.5 and gives no ranges; these are ours (λ log-uniform)
    regularization: float = hyperparameter(
        20.0,
        "λ added to every support against rare-item coincidences",
        search=Range(1.0, 500.0, log=True),
    )
    alpha: float = hyperparameter(
        0.5, "α of the asymmetric cosine (0.5: the regularised cosine)", search=Range(0.0, 1.0, step=0.05)
    )

    def __post_init__(self) -> None:
        require_numbers(self, "itemknn", ("regularization",), 0)
        # α = 1 is a valid end of the asymmetric cosine above: a closed interval, not require_numbers' [0, 1)
        require(
            is_number(self.alpha) and 0 <= self.alpha <= 1,
            "itemknn",
            "alpha",
            f"must be in [0, 1], got {self.alpha!r}",
        )


class ItemKNN:
    """Args: `regularization` (λ) and `alpha` (α) of the similarity above (`ItemKNNConfig`).

    Example:
        >>> from movierec.models import ItemKNN, TrainingData, UserSequences, QueryBatch
        >>> seqs = UserSequences.from_lists([[0, 1, 2], [0, 1]])
        >>> knn = ItemKNN(regularization=0.0).fit(TrainingData(2, 3, seqs))
        >>> int(knn.score(QueryBatch([1], [1], [0], seqs)).argmax())  # after item 0: item 1
        1
    """

    name = "itemknn"
    config_class = ItemKNNConfig

    def __init__(self, **hparams: Any) -> None:
        self.config = make_config(ItemKNNConfig, hparams, self.name)
        self.regularization, self.alpha = self.config.regularization, self.config.alpha
        self.similarity: sp.csr_matrix | None = None
        self.popularity: np.ndarray | None = None

    def fit(self, data: TrainingData) -> ItemKNN:
        seq = data.sequences
        session = np.cumsum(seq.session_start) - 1
        incidence = sp.csr_matrix(
            (np.ones(len(seq.items), dtype=np.float32), (session, seq.items)),
            shape=(int(session[-1]) + 1 if len(session) else 0, data.n_items),
        )
        incidence.data[:] = 1.0  # an item counts once per session (duplicates were summed)
        support = np.asarray(incidence.sum(axis=0)).ravel() + self.regularization
        cooccurrence = (incidence.T @ incidence).tocsr()
        cooccurrence.setdiag(0)
        cooccurrence.eliminate_zeros()
        left = sp.diags(_inverse_power(support, self.alpha))
        right = sp.diags(_inverse_power(support, 1.0 - self.alpha))
        self.similarity = (left @ cooccurrence @ right).astype(np.float32).tocsr()
        counts = np.bincount(seq.items, minlength=data.n_items).astype(np.float32)
        self.popularity = counts / (counts.max() + 1.0)
        return self

    def score(self, batch: QueryBatch) -> np.ndarray:
        if self.similarity is None or self.popularity is None:
            raise RuntimeError("ItemKNN must be fitted before scoring")
        query, last = batch.last_group(within_session=True)
        pairs = sp.csr_matrix(
            (np.ones(len(query), dtype=np.float32), (query, last)),
            shape=(len(batch), self.similarity.shape[0]),
        )
        scores = np.asarray((pairs @ self.similarity).todense(), dtype=np.float32)
        # Items with no similarity (and queries with no session context) fall back on popularity,
        # scaled far below any similarity so it only breaks ties.
        return scores + 1e-6 * self.popularity

    def get_config(self) -> dict[str, Any]:
        return dataclasses.asdict(self.config)

    def save(self, directory: str) -> None:
        if self.similarity is None:
            raise RuntimeError("ItemKNN must be fitted before saving")
        buffer = io.BytesIO()  # scipy writes local files only; storage also writes gs:// URIs
        sp.save_npz(buffer, self.similarity)
        storage.write_bytes(storage.join(directory, "similarity.npz"), buffer.getvalue())
        storage.save_npz(storage.join(directory, "weights.npz"), popularity=self.popularity)

    @classmethod
    def load(cls, directory: str, config: dict[str, Any]) -> ItemKNN:
        model = cls(**config)
        similarity = storage.read_bytes(storage.join(directory, "similarity.npz"))
        model.similarity = sp.load_npz(io.BytesIO(similarity)).tocsr()
        model.popularity = storage.load_npz(storage.join(directory, "weights.npz"))["popularity"]
        return model
