"""GRU4Rec behind the project's fit/score contract (models/base.py)."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from movierec.models.base import KerasRecommender, QueryBatch, TrainingData, gather_ranges
from movierec.models.gru4rec.config import GRU4RecConfig
from movierec.models.gru4rec.network import GRU4Rec
from movierec.models.gru4rec.scorer import GRU4RecHistoryScorer
from movierec.models.gru4rec.training import train_gru4rec


class GRU4RecRecommender(KerasRecommender):
    """GRU4Rec trained with session-parallel mini-batches and sampled negatives; scores from the state
    after the query's visible history (its current session, or the whole history: `inference_mode`)."""

    name = "gru4rec"
    keras_model: GRU4Rec | None

    config_class = GRU4RecConfig

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        self.training_log: dict[str, Any] = {}

    def fit(self, data: TrainingData) -> GRU4RecRecommender:
        c = self.config
        keras.utils.set_random_seed(c.seed)
        self.keras_model = GRU4Rec(
            data.n_items,
            c.hidden_size,
            c.n_layers,
            c.embedding_dim,
            c.dropout_input,
            c.dropout_hidden,
            c.final_activation,
            c.constrained_embedding,
            dropout_carried=c.dropout_hidden_on == "state",
        )
        self.training_log = train_gru4rec(self.keras_model, data, c)
        return self

    def query_sequences(self, batch: QueryBatch) -> dict[str, np.ndarray]:
        """Padded inputs [b, T] of `GRU4Rec.encode` for a block of queries (vectorised indexing only).

        The context is the query's current session ("session") or the user's whole visible history
        ("sequence", reset where training reset), capped at the `max_history` latest events.
        """
        c = self.config
        seq = batch.sequences
        positions = np.asarray(batch.positions, dtype=np.int64)
        first = np.asarray(batch.session_starts, dtype=np.int64)
        if c.inference_mode == "sequence":
            first = np.zeros_like(positions)
        first = np.maximum(first, positions - c.max_history)
        lengths = np.maximum(positions - first, 0)
        width = max(int(lengths.max(initial=0)), 1)
        width = -(-width // 16) * 16  # a few distinct shapes only: fewer retraces
        rows = gather_ranges(seq.indptr[np.asarray(batch.users)] + first, lengths)
        query = np.repeat(np.arange(len(batch)), lengths)
        column = np.arange(len(rows)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        items = np.zeros((len(batch), width), np.int32)
        reset = np.zeros((len(batch), width), bool)
        mask = np.zeros((len(batch), width), bool)
        items[query, column] = seq.items[rows]
        mask[query, column] = True
        if c.inference_mode == "sequence" and c.session_mode == "session":
            reset[query, column] = seq.session_start[rows]
        return {"items": items, "reset": reset, "mask": mask}

    def history_scorer(self) -> keras.Model:
        """The serving view (see movierec.serving.export): the same context rule and history cap as
        `query_sequences`, so the served scores equal the evaluated ones for the same history."""
        c = self.config
        return GRU4RecHistoryScorer(
            self._model(),
            inference_mode=c.inference_mode,
            reset_at_sessions=c.inference_mode == "sequence" and c.session_mode == "session",
            max_history=c.max_history,
        )

    def score(self, batch: QueryBatch) -> np.ndarray:
        model = self._model()
        if len(batch) == 0:
            return np.zeros((0, model.n_items), np.float32)
        inputs = self.query_sequences(batch)
        scores = model.predict(inputs, batch_size=len(batch), verbose=0)
        return np.asarray(scores, dtype=np.float32)
