"""IARN behind the project's fit/score contract (models/base.py).

- `fit(TrainingData)`: training.py; genres come from `TrainingData.side_features` (no genre table
  switches the feature encoder off, recorded in `training_log["inputs"]`).
- `predict_ratings(users, items, timestamps=None)`: for RMSE/MAE; both histories are *training*
  ratings strictly earlier than the event (all of them without timestamps); clipped to the training
  rating scale.
- `score(QueryBatch)`: predicted ratings (unclipped, so the ranking keeps its resolution above the
  top of the scale) of the whole catalogue at the query's time, i.e. its target's timestamp: the user
  side is the query's visible context (its events before the target's tie group, which may include
  earlier evaluation-period events with their ratings), each item's side its training raters strictly
  before that time. One gated pass per (query, item) for the iarn backbone (inference.py).
- `explain(user, item, timestamp=None)`: both histories with each event's gate and the prediction.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from movierec.models.base import KerasRecommender, QueryBatch, TrainingData, query_times
from movierec.models.iarn.config import IARNConfig
from movierec.models.iarn.history import context_history
from movierec.models.iarn.inference import Predictor
from movierec.models.iarn.network import IARN
from movierec.models.iarn.training import stored_sequences, train


class IARNRecommender(KerasRecommender):
    """Interacting Attention-gated Recurrent Networks (Pei et al., CIKM 2017); hyper-parameters:
    `IARNConfig`."""

    name = "iarn"
    config_class = IARNConfig
    keras_model: IARN | None

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        self.training_log: dict[str, Any] = {}
        self._predictor: Predictor | None = None

    def fit(self, data: TrainingData) -> IARNRecommender:
        model, log = train(data, self.config)
        self.keras_model = model
        self.training_log = log.to_dict()
        self._predictor = None
        return self

    def _ready(self) -> Predictor:
        if self._predictor is None:
            model = self._model()
            self._predictor = Predictor(model, stored_sequences(model), self.config.max_history)
        return self._predictor

    def now(self) -> int:
        """One second after the latest training event: a time that sees every training event."""
        stamps = self._ready().user_history.timestamps
        return int(stamps.max()) + 1 if len(stamps) else 0

    def predict_ratings(
        self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None
    ) -> np.ndarray:
        return self._ready().ratings(
            np.asarray(users, dtype=np.int64),
            np.asarray(items, dtype=np.int64),
            None if timestamps is None else np.asarray(timestamps, dtype=np.int64),
        )

    def score(self, batch: QueryBatch) -> np.ndarray:
        predictor = self._ready()
        n = self._model().n_items
        if len(batch) == 0:
            return np.zeros((0, n), np.float32)
        positions = np.asarray(batch.positions, dtype=np.int64)
        history = context_history(batch.sequences, batch.users, positions)  # one owner per query
        return predictor.catalogue(history, np.arange(len(batch)), positions, query_times(batch, self.now()))

    def explain(self, user: int, item: int, timestamp: int | None = None) -> dict[str, Any]:
        """Why IARN predicts what it does for (user, item) at `timestamp` (default: after every
        training event): the user's rated items and the item's raters it read (training ratings
        strictly before the timestamp, the latest `max_history` of each, oldest first), each with its
        attention gate a_t (eqs. 6, 8: how much the step entered the state; None for the rnn and lstm
        backbones, which have no scalar gate), and the predicted rating (clipped to the training scale,
        as `predict_ratings`; `raw_rating` unclipped, as `score` ranks)."""
        model = self._model()
        if not 0 <= int(user) < model.n_users:
            raise ValueError(f"iarn.explain: user must be in [0, {model.n_users}), got {user!r}")
        if not 0 <= int(item) < model.n_items:
            raise ValueError(f"iarn.explain: item must be in [0, {model.n_items}), got {item!r}")
        stamp = self.now() if timestamp is None else int(timestamp)
        found = self._ready().explain(int(user), int(item), stamp)

        def events(side: str, other: str) -> list[dict[str, Any]]:
            part = found[side]
            gates = part["gates"]
            return [
                {
                    other: int(part["others"][k]),
                    "rating": float(part["ratings"][k]),
                    "timestamp": int(part["timestamps"][k]),
                    "gate": None if gates is None else float(gates[k]),
                }
                for k in range(len(part["others"]))
            ]

        return {
            "user": int(user),
            "item": int(item),
            "timestamp": stamp,
            "backbone": self.config.backbone,
            "predicted_rating": found["rating"],
            "raw_rating": found["raw_rating"],
            "user_history": events("user", "item"),
            "item_history": events("item", "user"),
        }
