"""Training IARN: MSE on every training rating (eq. 13), RMSprop with gradients clipped to [−10, 10]
and dropout (§3.4, §4.1).

- Every training rating (i, j, r, t) is an instance; its user history is i's training ratings strictly
  before t and its item history j's training ratings strictly before t, the latest `max_history` of
  each (history.py). The windows are computed once per run; a mini-batch gathers them as tensors.
- Same-second events have no order: each epoch shuffles every tie group of both sides' histories
  (seeded), so the recurrences never learn the canonical order of ties (index order) as if it were time.
- Best epoch on held-out training ratings: `fit` only receives training events, so the latest
  `validation_fraction` of them (by time; a timestamp's events stay together; `models.base.holdout`)
  are held out; a first run trains on the earlier ones and after every epoch predicts the held-out
  ratings from histories of the earlier ones, as the evaluation period is predicted from the training
  ratings. The epoch with the lowest RMSE is chosen and a second run trains on all training ratings
  for that many epochs. Test users are never read. With `validation_fraction=0`, `epochs` epochs.

A loss that is NaN or infinite stops training with a FloatingPointError naming the epoch.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from movierec.models.base import TrainingData, UserSequences
from movierec.models.epoch_selection import TrainingLog, select_and_refit, train_epochs
from movierec.models.iarn.config import IARNConfig
from movierec.models.iarn.features import genre_parents
from movierec.models.iarn.history import EventHistory, gather_window
from movierec.models.iarn.inference import Predictor
from movierec.models.iarn.network import IARN

OWNER = "iarn"


def new_model(data: TrainingData, config: IARNConfig) -> tuple[IARN, dict[str, Any]]:
    """An untrained IARN sized for `data`, with its genre table and training events filled in; and
    which inputs are on (no genre table, or features="none", switches the feature encoder off)."""
    seq, side = data.sequences, data.side_features
    genres = side.item_genres if side is not None and config.features != "none" else None
    names = list(side.vocabularies.get("item_genres", ())) if side is not None else []
    if genres is not None and len(names) != genres.shape[1]:
        names = [f"genre_{k}" for k in range(genres.shape[1])]  # unnamed: every genre under "Other"
    model = IARN(
        data.n_users,
        data.n_items,
        backbone=config.backbone,
        features=config.features,
        embedding_dim=config.embedding_dim,
        hidden_size=config.hidden_size,
        latent_dim=config.latent_dim,
        attention_units=config.attention_units,
        rating_input=config.rating_input,
        dropout=config.dropout,
        n_genres=genres.shape[1] if genres is not None else 0,
        genre_parents=genre_parents(names).tolist() if genres is not None else None,
        n_events=len(seq.items),
        global_mean=float(seq.ratings.mean()) if len(seq.ratings) else 0.0,
        rating_range=(float(seq.ratings.min()), float(seq.ratings.max())) if len(seq.ratings) else None,
        vocabularies={"item_genres": names} if genres is not None else {},
    )
    if genres is not None:
        model.item_genres.assign(genres.astype(np.float32))
    model.event_indptr.assign(seq.indptr.astype(np.int64))
    model.event_items.assign(seq.items.astype(np.int32))
    model.event_ratings.assign(seq.ratings.astype(np.float32))
    model.event_timestamps.assign(seq.timestamps.astype(np.int64))
    inputs = {
        "backbone": config.backbone,
        "features": config.features if model.use_features else "none",
        "rating_input": config.rating_input,
    }
    return model, inputs


def stored_sequences(model: IARN) -> UserSequences:
    """The training events saved in the model (both sides' histories are built from them)."""
    items = ops.convert_to_numpy(model.event_items).astype(np.int32)
    return UserSequences(
        ops.convert_to_numpy(model.event_indptr).astype(np.int64),
        items,
        ops.convert_to_numpy(model.event_ratings).astype(np.float32),
        ops.convert_to_numpy(model.event_timestamps).astype(np.int64),
        np.zeros(len(items), dtype=bool),
    )


class Trainer:
    """Mini-batches of training ratings with both histories; one compiled RMSprop step each."""

    def __init__(self, model: IARN, data: TrainingData, config: IARNConfig, rng: np.random.Generator) -> None:
        self.model, self.config, self.rng = model, config, rng
        seq = data.sequences
        self.users = seq.users.astype(np.int32)
        self.items = seq.items.astype(np.int32)
        self.ratings = seq.ratings.astype(np.float32)
        self.user_history = EventHistory.of_users(seq)
        self.item_history = EventHistory.of_items(seq, data.n_items)
        L = config.max_history
        # strictly earlier events only: a rating and its same-second events never see each other
        self.user_rows = self.user_history.windows(
            self.users, self.user_history.counts_before(self.users, seq.timestamps), L
        )
        self.item_rows = self.item_history.windows(
            self.items, self.item_history.counts_before(self.items, seq.timestamps), L
        )
        self.user_lengths = (self.user_rows >= 0).sum(axis=1)
        self.item_lengths = (self.item_rows >= 0).sum(axis=1)
        clip = config.clip_value if config.clip_value > 0 else None
        self.optimizer = keras.optimizers.RMSprop(config.learning_rate, clipvalue=clip)
        self.variables = list(model.trainable_variables)
        self.optimizer.build(self.variables)
        self._step = self._make_step()

    def _make_step(self):
        model, variables, optimizer = self.model, self.variables, self.optimizer

        @tf.function(
            input_signature=[
                tf.TensorSpec((None, None), tf.int32),  # the user's items, -1 padding
                tf.TensorSpec((None, None), tf.float32),  # their ratings
                tf.TensorSpec((None, None), tf.int32),  # the item's users, -1 padding
                tf.TensorSpec((None, None), tf.float32),  # their ratings
                tf.TensorSpec((None,), tf.int32),  # the items (feature encoder)
                tf.TensorSpec((None,), tf.float32),  # the target ratings
            ],
            autograph=False,
        )
        def step(user_items, user_ratings, item_users, item_ratings, items, ratings):
            inputs = {
                "user_items": user_items,
                "user_ratings": user_ratings,
                "item_users": item_users,
                "item_ratings": item_ratings,
                "items": items,
            }
            with tf.GradientTape() as tape:
                predicted = model(inputs, training=True)
                mse = ops.mean(ops.square(ratings - predicted))  # eq. (13)
            optimizer.apply(tape.gradient(mse, variables), variables)
            return mse

        return step

    def batch(self, rows: np.ndarray, user_history: EventHistory, item_history: EventHistory) -> tuple:
        """The step's tensors for training instances `rows` (windows cut to the batch's longest)."""
        user_width = max(int(self.user_lengths[rows].max(initial=0)), 1)
        item_width = max(int(self.item_lengths[rows].max(initial=0)), 1)
        user_items, user_ratings = gather_window(user_history, self.user_rows[rows, :user_width])
        item_users, item_ratings = gather_window(item_history, self.item_rows[rows, :item_width])
        return user_items, user_ratings, item_users, item_ratings, self.items[rows], self.ratings[rows]

    def epoch(self) -> float:
        """One pass over the training ratings in random order; returns their mean squared error."""
        user_history = self.user_history.tie_shuffled(self.rng)
        item_history = self.item_history.tie_shuffled(self.rng)
        total, order, size = 0.0, self.rng.permutation(len(self.users)), self.config.batch_size
        for start in range(0, len(order), size):
            rows = order[start : start + size]
            mse = self._step(*self.batch(rows, user_history, item_history))
            total += float(mse) * len(rows)
        return total / max(len(order), 1)


def run(
    data: TrainingData, config: IARNConfig, epochs: int, validation: tuple[np.ndarray, ...] | None = None
) -> tuple[IARN, TrainingLog]:
    """One training run of `epochs` epochs; after each, the RMSE of the held-out (users, items,
    ratings, timestamps) if given, predicted from `data`'s ratings before each of them."""
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model, inputs = new_model(data, config)
    log = TrainingLog(inputs=inputs)
    trainer = Trainer(model, data, config, rng)
    validate = None
    if validation is not None:
        predictor = Predictor(model, data.sequences, config.max_history)
        users, items, ratings, timestamps = validation

        def validate() -> float:
            predicted = predictor.ratings(users, items, timestamps)
            return float(np.sqrt(np.mean((predicted - ratings) ** 2)))

    log.epochs = train_epochs(OWNER, epochs, trainer.epoch, validate)
    return model, log


def train(data: TrainingData, config: IARNConfig) -> tuple[IARN, TrainingLog]:
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
