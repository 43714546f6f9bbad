"""Training LSTM+CNN: MSE on every training rating (§IV.D, eq. 10), Adam, Table VI's schedule.

- Every training rating is a target; its history is the user's liked training ratings strictly earlier
  than it (history.py; the >= 3 filter applies to the LSTM's input only).
- Same-second liked events have no order: each epoch shuffles every tie group of the histories
  (seeded), so the LSTM never learns the canonical order of ties (item index) as if it were time.
- A mini-batch runs the item tower once over the distinct movies it touches (targets and histories).
- Best epoch on held-out training ratings: `fit` only receives training events, so the latest
  `validation_fraction` of them (by time; a timestamp's events stay together) are held out; a first
  run trains on the earlier ones and after every epoch predicts the held-out ratings from histories of
  the earlier ones — as the evaluation period is predicted from the training ratings. The epoch with the
  lowest RMSE is chosen and a second run trains on all training ratings for that many epochs. Test
  users are never read. With `validation_fraction=0`, `epochs` epochs.

A loss that is NaN or infinite stops training with a FloatingPointError naming the epoch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from movierec.models.base import TrainingData, UserSequences, tie_shuffled_order
from movierec.models.epoch_selection import TrainingLog, select_and_refit, train_epochs
from movierec.models.lstm_cnn.config import LSTMCNNConfig
from movierec.models.lstm_cnn.history import LikedHistory
from movierec.models.lstm_cnn.inference import Predictor
from movierec.models.lstm_cnn.network import LSTMCNN, USER_FIELDS

OWNER = "lstm-cnn"


def new_model(data: TrainingData, config: LSTMCNNConfig) -> tuple[LSTMCNN, dict[str, Any]]:
    """An untrained LSTMCNN sized for `data`, its side tables and liked histories filled in; and which
    inputs are on (a missing side feature or an ablation switches one off)."""
    seq, side = data.sequences, data.side_features
    genres = side.item_genres if side is not None else None
    titles = side.item_title_words if side is not None and config.title_cnn else None
    fields = {}
    if side is not None and config.user_features:
        fields = {name: getattr(side, name) for name in USER_FIELDS if getattr(side, name) is not None}
    vocabularies = dict(side.vocabularies) if side is not None else {}
    history = LikedHistory.from_sequences(seq, config.liked_threshold)
    model = LSTMCNN(
        data.n_users,
        data.n_items,
        embedding_dim=config.embedding_dim,
        feature_dim=config.feature_dim,
        title_windows=config.windows,
        title_filters=config.title_filters,
        lstm_units=config.lstm_units,
        head_units=config.head_units,
        dropout=config.dropout,
        n_genres=genres.shape[1] if genres is not None else 0,
        title_vocabulary_size=len(vocabularies.get("item_title_words", ())) if titles is not None else 0,
        title_length=titles.shape[1] if titles is not None else 0,
        user_field_sizes={name: len(vocabularies[name]) for name in fields},
        use_history=config.history_lstm,
        n_liked=len(history.items),
        global_mean=float(seq.ratings.mean()) if len(seq.ratings) else 0.0,
        rating_range=(float(seq.ratings.min()), float(seq.ratings.max())) if len(seq.ratings) else None,
        vocabularies=vocabularies,
    )
    if genres is not None:
        model.item_genres.assign(genres.astype(np.float32))
    if titles is not None:
        model.item_title_words.assign(titles.astype(np.int32))
    if fields:
        model.user_fields.assign(np.stack(list(fields.values()), axis=1).astype(np.int32))
    model.liked_indptr.assign(history.indptr)
    model.liked_items.assign(history.items)
    model.liked_timestamps.assign(history.timestamps)
    inputs = {
        "genres": genres is not None,
        "title_cnn": titles is not None,
        "user_fields": list(fields),
        "history_lstm": config.history_lstm,
    }
    return model, inputs


def stored_history(model: LSTMCNN) -> LikedHistory:
    """The liked training events saved in the model (what `predict_ratings` cuts at each time)."""
    return LikedHistory(
        ops.convert_to_numpy(model.liked_indptr).astype(np.int64),
        ops.convert_to_numpy(model.liked_items).astype(np.int32),
        ops.convert_to_numpy(model.liked_timestamps).astype(np.int64),
    )


class Trainer:
    """Mini-batches of training ratings with their histories; one compiled Adam step each."""

    def __init__(
        self, model: LSTMCNN, sequences: UserSequences, config: LSTMCNNConfig, rng: np.random.Generator
    ):
        self.model, self.config, self.rng = model, config, rng
        self.users = sequences.users.astype(np.int32)
        self.items = sequences.items.astype(np.int32)
        self.ratings = sequences.ratings.astype(np.float32)
        liked = sequences.ratings >= config.liked_threshold
        self.liked = sequences.select(liked)  # in the order of LikedHistory.items
        self.history = LikedHistory.from_sequences(sequences, config.liked_threshold)
        counts = self.history.counts_before(self.users, sequences.timestamps)  # strictly earlier only
        self.windows = self.history.windows(self.users, counts, config.max_history)  # rows into liked
        self.lengths = (self.windows >= 0).sum(axis=1)
        self.optimizer = keras.optimizers.Adam(config.learning_rate)
        self.variables = list(model.trainable_variables)
        self.optimizer.build(self.variables)
        self._step = self._make_step()

    def _make_step(self):
        model, variables, optimizer = self.model, self.variables, self.optimizer

        @tf.function(
            input_signature=[
                tf.TensorSpec((None,), tf.int32),  # distinct movies of the batch
                tf.TensorSpec((None, None), tf.int32),  # histories as rows of those, -1 padding
                tf.TensorSpec((None,), tf.int32),  # users
                tf.TensorSpec((None,), tf.int32),  # targets as rows of the distinct movies
                tf.TensorSpec((None,), tf.float32),  # ratings
            ],
            autograph=False,
        )
        def step(movies, history, users, targets, ratings):
            with tf.GradientTape() as tape:
                features = model.item_features(movies, training=True)
                looked_up = ops.take(features, ops.maximum(history, 0), axis=0)
                user = model.user_features(users, looked_up, history >= 0)
                predicted = model.rate(user, ops.take(features, targets, axis=0))
                mse = ops.mean(ops.square(ratings - predicted))  # eq. (10)
            optimizer.apply(tape.gradient(mse, variables), variables)
            return mse

        return step

    def epoch(self) -> float:
        """One pass over the training ratings in random order; returns their mean squared error."""
        # every tie group of the liked events shuffled: the order of same-second events is not time
        items = (
            self.liked.items[tie_shuffled_order(self.liked, self.rng)]
            if len(self.liked.items)
            else self.liked.items
        )
        total, order, size = 0.0, self.rng.permutation(len(self.users)), self.config.batch_size
        for start in range(0, len(order), size):
            batch = order[start : start + size]
            width = max(int(self.lengths[batch].max(initial=0)), 1)
            rows = self.windows[batch, :width]
            valid = rows >= 0
            history_items = items[rows[valid]]
            movies, inverse = np.unique(np.r_[history_items, self.items[batch]], return_inverse=True)
            history = np.full(rows.shape, -1, dtype=np.int32)
            history[valid] = inverse[: len(history_items)]
            targets = inverse[len(history_items) :].astype(np.int32)
            mse = self._step(
                movies.astype(np.int32), history, self.users[batch], targets, self.ratings[batch]
            )
            total += float(mse) * len(batch)
        return total / max(len(order), 1)


def rmse(predictor: Predictor, history: LikedHistory, users, items, ratings, timestamps) -> float:
    predicted = predictor.ratings(history, users, items, history.counts_before(users, timestamps))
    return float(np.sqrt(np.mean((predicted - ratings) ** 2)))


def run(
    data: TrainingData, config: LSTMCNNConfig, epochs: int, validation: tuple[np.ndarray, ...] | None = None
) -> tuple[LSTMCNN, TrainingLog]:
    """One training run of `epochs` epochs; after each, the RMSE of the held-out (users, items,
    ratings, timestamps) if given, predicted from `data`'s liked ratings before each of them."""
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model, inputs = new_model(data, config)
    log = TrainingLog(inputs=inputs)
    trainer = Trainer(model, data.sequences, config, rng)
    validate = None
    if validation is not None:
        predictor = Predictor(model, config.max_history)

        def validate() -> float:
            return rmse(predictor, trainer.history, *validation)

    log.epochs = train_epochs(OWNER, epochs, trainer.epoch, validate)
    return model, log


def train(data: TrainingData, config: LSTMCNNConfig) -> tuple[LSTMCNN, TrainingLog]:
    """Best epoch on the held-out latest training ratings, then a refit on all of them (module)."""
    return select_and_refit(
        OWNER,
        data.sequences,
        data.n_users,
        data.n_items,
        config.validation_fraction,
        config.epochs,
        lambda events, epochs, validation: run(replace(data, sequences=events), config, epochs, validation),
    )
