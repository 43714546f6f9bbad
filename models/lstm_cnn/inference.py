"""Predictions of a fitted LSTMCNN in blocks: the item tower runs once per call for the whole
catalogue (M_f depends on the item alone), users' histories are looked up in it, and the head rates
row-aligned pairs (`ratings`) or every catalogue item (`catalogue_ratings`)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import ops

from movierec.models.lstm_cnn.history import LikedHistory
from movierec.models.lstm_cnn.network import LSTMCNN

PAIRS_PER_BLOCK = 4096
SCORE_CELLS_PER_BLOCK = 1 << 24  # users × items × head units held at once when scoring the catalogue


class Predictor:
    """Compiled forward passes of `model` (inference mode: no dropout)."""

    def __init__(self, model: LSTMCNN, max_history: int) -> None:
        self.model, self.max_history = model, max_history
        D = model.feature_dim

        @tf.function(input_signature=[tf.TensorSpec((None,), tf.int32)], autograph=False)
        def catalogue(items):
            return model.item_features(items, training=False)

        @tf.function(
            input_signature=[
                tf.TensorSpec((None,), tf.int32),
                tf.TensorSpec((None, None), tf.int32),
                tf.TensorSpec((None, D), tf.float32),
            ],
            autograph=False,
        )
        def users(user_ids, history, features):
            looked_up = ops.take(features, ops.maximum(history, 0), axis=0)
            return model.user_features(user_ids, looked_up, history >= 0)

        @tf.function(
            input_signature=[tf.TensorSpec((None, D), tf.float32), tf.TensorSpec((None, D), tf.float32)],
            autograph=False,
        )
        def rate(user_features, item_features):
            return model.rate(user_features, item_features)

        @tf.function(
            input_signature=[tf.TensorSpec((None, D), tf.float32), tf.TensorSpec((None, D), tf.float32)],
            autograph=False,
        )
        def rate_all(user_features, catalogue_features):
            return model.rate_all(user_features, catalogue_features)

        self._catalogue, self._users, self._rate, self._rate_all = catalogue, users, rate, rate_all

    def catalogue_features(self) -> tf.Tensor:
        return self._catalogue(np.arange(self.model.n_items, dtype=np.int32))

    def _history_items(self, history: LikedHistory, users: np.ndarray, counts: np.ndarray) -> np.ndarray:
        rows = history.windows(users, counts, self.max_history)
        return np.where(
            rows >= 0, history.items[np.maximum(rows, 0)] if len(history.items) else 0, -1
        ).astype(np.int32)

    def _clip(self, ratings: np.ndarray) -> np.ndarray:
        bounds = self.model.rating_range
        return np.clip(ratings, *bounds).astype(np.float32) if bounds else ratings.astype(np.float32)

    def ratings(
        self, history: LikedHistory, users: np.ndarray, items: np.ndarray, counts: np.ndarray
    ) -> np.ndarray:
        """Predicted rating of each (user, item), the user's history being their first `counts` liked
        events (the caller cuts them at the event's time); clipped to the training scale."""
        out = np.zeros(len(users), dtype=np.float32)
        if len(users) == 0:
            return out
        features = self.catalogue_features()
        for start in range(0, len(users), PAIRS_PER_BLOCK):
            block = slice(start, start + PAIRS_PER_BLOCK)
            block_users = np.asarray(users[block], dtype=np.int32)
            user = self._users(
                block_users, self._history_items(history, block_users, counts[block]), features
            )
            item = tf.gather(features, np.asarray(items[block], dtype=np.int32))
            out[block] = ops.convert_to_numpy(self._rate(user, item))
        return self._clip(out)

    def catalogue_ratings(
        self, history: LikedHistory, users: np.ndarray, counts: np.ndarray, clip: bool = True
    ) -> np.ndarray:
        """[len(users), n_items] predicted ratings of the whole catalogue (clipped to the training
        scale unless `clip` is False: rankings use the raw values, where clipping would tie the top)."""
        model = self.model
        out = np.zeros((len(users), model.n_items), dtype=np.float32)
        if len(users) == 0:
            return out
        features = self.catalogue_features()
        rows = max(1, SCORE_CELLS_PER_BLOCK // max(model.n_items * model.head_units, 1))
        for start in range(0, len(users), rows):
            block = slice(start, start + rows)
            block_users = np.asarray(users[block], dtype=np.int32)
            user = self._users(
                block_users, self._history_items(history, block_users, counts[block]), features
            )
            out[block] = ops.convert_to_numpy(self._rate_all(user, features))
        return self._clip(out) if clip else out
