"""LSTM+CNN behind the project's fit/score contract (models/base.py).

- `fit(TrainingData)`: training.py; side features come from `TrainingData.side_features` (a missing
  table switches those inputs off).
- `predict_ratings(users, items, timestamps=None)`: for RMSE/MAE; each user's history is their liked
  *training* ratings strictly earlier than the event (all of them without timestamps).
- `score(QueryBatch)`: predicted ratings of the whole catalogue at the query's time, the history being
  the liked events of the query's visible context (its events before the target's tie group, which
  may include earlier evaluation-period events with their ratings). Ranks by predicted rating, as the
  paper's top-K list (Fig. 7) does, unclipped: clipping to the rating scale would tie every item
  predicted above the top of the scale, and ties count against the target.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from movierec.models.base import KerasRecommender, QueryBatch, TrainingData, UserSequences
from movierec.models.lstm_cnn.config import LSTMCNNConfig
from movierec.models.lstm_cnn.history import LikedHistory, liked_counts_at
from movierec.models.lstm_cnn.inference import Predictor
from movierec.models.lstm_cnn.network import LSTMCNN
from movierec.models.lstm_cnn.training import stored_history, train


class LSTMCNNRecommender(KerasRecommender):
    """LSTM+CNN (Wang, Ye, Yang & Miao 2020); hyper-parameters: `LSTMCNNConfig`."""

    name = "lstm-cnn"
    config_class = LSTMCNNConfig
    keras_model: LSTMCNN | None

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        self.training_log: dict[str, Any] = {}
        self._predictor: Predictor | None = None
        self._history: LikedHistory | None = None
        self._context: tuple[UserSequences, LikedHistory] | None = None

    def fit(self, data: TrainingData) -> LSTMCNNRecommender:
        model, log = train(data, self.config)
        self.keras_model = model
        self.training_log = log.to_dict()
        self._predictor = self._history = self._context = None
        return self

    def _ready(self) -> tuple[Predictor, LikedHistory]:
        if self._predictor is None or self._history is None:
            model = self._model()
            self._predictor = Predictor(model, self.config.max_history)
            self._history = stored_history(model)
        return self._predictor, self._history

    def predict_ratings(
        self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None
    ) -> np.ndarray:
        predictor, history = self._ready()
        users = np.asarray(users, dtype=np.int64)
        if timestamps is None:
            counts = np.diff(history.indptr)[users]
        else:
            counts = history.counts_before(users, np.asarray(timestamps, dtype=np.int64))
        return predictor.ratings(history, users, np.asarray(items, dtype=np.int64), counts)

    def now(self) -> int:
        """Just after the latest liked training event the model stores (0 for none): the time at which
        `recommend` reads every stored history."""
        _, history = self._ready()
        return int(history.timestamps.max()) + 1 if len(history.timestamps) else 0

    def score(self, batch: QueryBatch) -> np.ndarray:
        predictor, _ = self._ready()
        if self._context is None or self._context[0] is not batch.sequences:  # one stream, many blocks
            self._context = (
                batch.sequences,
                LikedHistory.from_sequences(batch.sequences, self.config.liked_threshold),
            )
        context = self._context[1]
        users = np.asarray(batch.users, dtype=np.int64)
        counts = liked_counts_at(batch.sequences, self.config.liked_threshold, users, batch.positions)
        return predictor.catalogue_ratings(context, users, counts, clip=False)
