"""RRN behind the project's fit/score contract (models/base.py).

- `fit(TrainingData)`: training.py (PMF, then alternating subspace descent, best epoch on held-out
  later training events, final states read off all training events).
- `score(QueryBatch)`: predicted ratings of the whole catalogue at the query's time (the target
  event's timestamp), from the stored states with the wall-clock advanced. Like MF, RRN ranks by
  predicted rating; it reads no context beyond what its states hold (the training events and whatever
  `update_state` fed), so a query's evaluation-period context is not used.
- `predict_ratings(users, items, timestamps=None)`: for RMSE/MAE; each rating from the user's and the
  movie's states before the event's step. Without timestamps, at the latest time the states know.
- `update_state(users, items, ratings, timestamps)`: §4.5, see state.py.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from keras import ops

from movierec.models.base import KerasRecommender, QueryBatch, TrainingData, query_times
from movierec.models.rrn.config import RRNConfig
from movierec.models.rrn.network import NO_STEP, RRN
from movierec.models.rrn.state import StateUpdateReport, update_state
from movierec.models.rrn.training import train


class RRNRecommender(KerasRecommender):
    """Recurrent Recommender Networks (Wu et al., WSDM 2017); hyper-parameters: `RRNConfig`."""

    name = "rrn"
    config_class = RRNConfig
    keras_model: RRN | None

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        self.training_log: dict[str, Any] = {}

    def fit(self, data: TrainingData) -> RRNRecommender:
        model, log = train(data.sequences, data.n_users, data.n_items, self.config)
        self.keras_model = model
        self.training_log = log.to_dict()
        return self

    def now(self) -> int:
        """The latest event time any stored state has read (the time of predictions without one)."""
        model = self._model()
        latest = max(
            int(ops.convert_to_numpy(model.user_states.last_time).max(initial=NO_STEP)),
            int(ops.convert_to_numpy(model.movie_states.last_time).max(initial=NO_STEP)),
        )
        return latest if latest != NO_STEP else 0

    def score(self, batch: QueryBatch) -> np.ndarray:
        model = self._model()
        if len(batch) == 0:
            return np.zeros((0, model.n_items), np.float32)
        return model.score_all(np.asarray(batch.users, dtype=np.int32), query_times(batch, self.now()))

    def predict_ratings(
        self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None
    ) -> np.ndarray:
        model = self._model()
        users = np.asarray(users, dtype=np.int32)
        if timestamps is None:
            timestamps = np.full(len(users), self.now(), dtype=np.int64)
        out = np.zeros(len(users), dtype=np.float32)
        for start in range(0, len(users), 65536):
            block = slice(start, start + 65536)
            out[block] = ops.convert_to_numpy(
                model.predict_ratings(
                    users[block], np.asarray(items[block], np.int32), np.asarray(timestamps[block])
                )
            )
        return out

    def update_state(
        self, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray
    ) -> StateUpdateReport:
        """Feeds new events into the user and movie states (§4.5); weights never change. Events with
        unknown ids, ratings outside the training scale or timestamps earlier than the user's or the
        movie's state are rejected one by one and counted by reason; the rest are applied."""
        return update_state(self._model(), users, items, ratings, timestamps)
