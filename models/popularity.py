"""Popularity baselines of the GRU4Rec paper (Hidasi et al., ICLR 2016, §4): POP and S-POP."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from movierec import storage
from movierec.models.base import QueryBatch, TrainingData
from movierec.models.hyperparameters import make_config


@dataclasses.dataclass(frozen=True)
class PopularityConfig:
    """POP and S-POP have no hyper-parameters."""


class Popularity:
    """POP: every user gets the items with the most training events."""

    name = "pop"
    config_class = PopularityConfig

    def __init__(self, **hparams: Any) -> None:
        make_config(PopularityConfig, hparams, self.name)
        self.counts: np.ndarray | None = None

    def fit(self, data: TrainingData) -> Popularity:
        self.counts = np.bincount(data.sequences.items, minlength=data.n_items).astype(np.float32)
        return self

    @classmethod
    def from_counts(cls, counts: np.ndarray) -> Popularity:
        """The model `fit` gives for these training-event counts per item index (counted elsewhere,
        e.g. by a Beam combine over the training histories)."""
        counts = np.asarray(counts)
        if counts.ndim != 1 or (counts < 0).any():
            raise ValueError(f"counts must be one non-negative count per item, got shape {counts.shape}")
        model = cls()
        model.counts = counts.astype(np.float32)
        return model

    def score(self, batch: QueryBatch) -> np.ndarray:
        return np.tile(self._fitted_counts(), (len(batch), 1))

    def _fitted_counts(self) -> np.ndarray:
        if self.counts is None:
            raise RuntimeError(f"{type(self).__name__} must be fitted before scoring")
        return self.counts

    def get_config(self) -> dict[str, Any]:
        return {}

    def save(self, directory: str) -> None:
        storage.save_npz(storage.join(directory, "weights.npz"), counts=self._fitted_counts())

    @classmethod
    def load(cls, directory: str, config: dict[str, Any]) -> Popularity:
        model = cls(**config)
        model.counts = storage.load_npz(storage.join(directory, "weights.npz"))["counts"]
        return model


class SessionPopularity(Popularity):
    """S-POP: the most frequent items of the current session; global popularity breaks ties."""

    name = "spop"

    def score(self, batch: QueryBatch) -> np.ndarray:
        counts = self._fitted_counts()
        # Global popularity scaled into [0, 1): it only orders items with equal session counts.
        scores = np.tile(counts / (counts.max() + 1.0), (len(batch), 1))
        query, items = batch.visible(within_session=True)
        np.add.at(scores, (query, items), 1.0)
        return scores
