"""Training RRN as in Wu et al. §3.4 and §4.1.

1. **Stationary factors first**: the biased MF inside `RRN.stationary` is fitted alone (a small PMF,
   Adam, MSE), as the paper initialises u_i, m_j "by a small pre-trained PMF".
2. **The networks, by alternating subspace descent** (§3.4): every epoch is a *user pass* — mini-batches
   of users, each user's whole step sequence through the user LSTM, gradients from all of its ratings,
   with the movies' dynamic vectors m̃ computed beforehand and held fixed — then a *movie pass*, the
   same with the users' ũ fixed. Adam for the networks; optionally SGD for the stationary factors of
   the side being trained (`stationary_learning_rate`, 0 by default: PMF's factors stay).
3. **Causality**: a rating of step t is predicted by the probe of step t, i.e. from the state after the
   steps before t (see network.py); the loss is eq. (8) with R(θ) an L2 penalty.
4. **Best epoch on validation RMSE**: `fit` only receives training events, so the latest
   `validation_fraction` of them (by time; a timestamp's events stay together) are held out. A first
   run trains on the earlier events and, after every epoch, reads their final states and predicts the
   held-out ratings from them with the wall-clock advanced — exactly how the test period is predicted.
   The epoch with the lowest RMSE is chosen; a second run trains on all training events for that many
   epochs (its PMF sees the held-out users too). With `validation_fraction=0`, `epochs` epochs.

A loss that is NaN or infinite stops training with a FloatingPointError naming the phase and epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from movierec.models.base import UserSequences
from movierec.models.epoch_selection import TrainingLog, select_and_refit
from movierec.models.rrn.config import RRNConfig
from movierec.models.rrn.network import NO_STEP, RRN
from movierec.models.rrn.state import feed_events
from movierec.models.rrn.steps import StepSequences, group_steps

OTHER = {"user": "movie", "movie": "user"}


OWNER = "rrn"


@dataclass
class RRNTrainingLog(TrainingLog):
    """The rating models' training log plus PMF's pre-training losses (§3.4)."""

    pmf_losses: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"pmf_losses": self.pmf_losses, **super().to_dict()}


def new_model(sequences: UserSequences, n_users: int, n_items: int, config: RRNConfig) -> RRN:
    """An untrained RRN sized for the data; τ is standardised with the training timestamps' mean and
    standard deviation (§4.1), the global mean and the rating scale are the training ratings'."""
    times = sequences.timestamps.astype(np.float64)
    std = float(times.std()) if len(times) > 1 else 0.0
    return RRN(
        n_users,
        n_items,
        stationary_dim=config.stationary_dim,
        embedding_dim=config.embedding_dim,
        hidden_size=config.hidden_size,
        dynamic_dim=config.dynamic_dim,
        user_step=config.user_step,
        movie_step=config.movie_step,
        input_scaling=config.input_scaling,
        rating_input=config.rating_input,
        time_mean=float(times.mean()) if len(times) else 0.0,
        time_std=std if std > 0 else 1.0,
        global_mean=float(sequences.ratings.mean()) if len(times) else 0.0,
        rating_range=(float(sequences.ratings.min()), float(sequences.ratings.max())) if len(times) else None,
        stationary_l2=config.stationary_l2,
    )


def pretrain_stationary(model: RRN, sequences: UserSequences, config: RRNConfig) -> list[float]:
    """Fits the stationary part alone (PMF with biases, Adam on the MSE); returns the epoch losses."""
    if config.pmf_epochs == 0:
        return []
    stationary = model.stationary
    stationary.compile(optimizer=keras.optimizers.Adam(config.pmf_learning_rate), loss="mse")
    x = {"user": sequences.users.astype(np.int32), "item": sequences.items.astype(np.int32)}
    history = stationary.fit(
        x,
        sequences.ratings,
        batch_size=config.pmf_batch_size,
        epochs=config.pmf_epochs,
        shuffle=True,
        verbose=0,
    )
    losses = [float(v) for v in history.history["loss"]]
    for epoch, loss in enumerate(losses, start=1):
        if not np.isfinite(loss):
            raise FloatingPointError(f"rrn: the PMF pre-training loss became {loss} in epoch {epoch}")
    return losses


class SideTrainer:
    """One side's half of the subspace descent: mini-batches of whole step sequences of users (or
    movies), the other side's dynamic vectors held fixed."""

    def __init__(
        self,
        model: RRN,
        side: str,
        sequences: UserSequences,
        config: RRNConfig,
        rng: np.random.Generator,
    ):
        self.model, self.side, self.config, self.rng = model, side, config, rng
        self.network = model.network(side)
        users, items = sequences.users.astype(np.int64), sequences.items.astype(np.int64)
        entity, other, n = (users, items, model.n_users) if side == "user" else (items, users, model.n_items)
        self.steps: StepSequences = group_steps(
            entity, other, sequences.ratings, sequences.timestamps, n, model.granularity(side)
        )
        self.users, self.items = users.astype(np.int32), items.astype(np.int32)
        self.n_events = len(users)
        self.network_variables = list(self.network.trainable_variables)
        s = model.stationary
        self.stationary_variables = (
            [s.user_factors.embeddings, s.user_bias.embeddings]
            if side == "user"
            else [s.item_factors.embeddings, s.item_bias.embeddings]
        )
        self.train_stationary = config.stationary_learning_rate > 0
        self.optimizer = keras.optimizers.Adam(config.learning_rate, global_clipnorm=config.clipnorm or None)
        self.optimizer.build(self.network_variables)
        self.stationary_optimizer = keras.optimizers.SGD(config.stationary_learning_rate or 0.01)
        if self.train_stationary:
            self.stationary_optimizer.build(self.stationary_variables)
        self._train_step = self._make_train_step()
        self._forward = self._make_forward()

    # -- batches -----------------------------------------------------------------------------------

    def batches(self, shuffle: bool) -> list[np.ndarray]:
        """Entities with steps in mini-batches of similar sequence length (little padding); the order
        within a length and the order of the batches are random when `shuffle`."""
        entities = np.flatnonzero(self.steps.lengths > 0)
        if shuffle:
            entities = self.rng.permutation(entities)
        entities = entities[np.argsort(self.steps.lengths[entities], kind="stable")]
        size = self.config.batch_size
        chunks = [entities[k : k + size] for k in range(0, len(entities), size)]
        if shuffle:
            chunks = [chunks[k] for k in self.rng.permutation(len(chunks))]
        return chunks

    def batch_inputs(self, entities: np.ndarray) -> dict[str, np.ndarray]:
        """Padded step matrices and the flat events of a batch of entities (vectorised numpy)."""
        steps = self.steps
        rows, _ = steps.padded(entities)
        valid = rows >= 0
        safe = np.where(valid, rows, 0)
        step_matrix = np.where(valid, steps.steps[safe], 0)
        previous = np.where(valid & ~steps.newbie[safe], steps.previous_steps[safe], NO_STEP)
        previous = np.where(valid, previous, 0)
        owner, events = steps.events_of_steps(rows[valid])
        slots = np.flatnonzero(valid.ravel())[owner]
        counts = np.zeros(rows.size, dtype=np.float32)
        counts[np.flatnonzero(valid.ravel())] = steps.step_sizes[rows[valid]]
        source = steps.source[events]
        return {
            "steps": step_matrix.astype(np.int64),
            "previous": previous.astype(np.int64),
            "slots": slots.astype(np.int32),
            "others": steps.other[events].astype(np.int32),
            "ratings": steps.ratings[events].astype(np.float32),
            "counts": counts,
            "source": source,
        }

    # -- compiled steps ----------------------------------------------------------------------------

    def _dynamic_of_events(self, steps, previous, slots, others, ratings, counts):
        """The probe (dynamic vector) of each event's own step: predicts it from earlier steps only."""
        model, network = self.model, self.network
        shape = ops.shape(steps)
        n_slots = shape[0] * shape[1]
        sums = network.rating_sums(slots, others, ratings, n_slots)  # eq. (5), x_t part
        inputs = sums * ops.expand_dims(model.input_scale(counts), -1)
        inputs = ops.reshape(inputs, (shape[0], shape[1], model.embedding_dim))
        features = model.step_features(steps, previous, self.side)
        zeros = ops.zeros((shape[0], model.hidden_size))
        _, _, dynamic = network.sequence(inputs, features, zeros, zeros)  # eq. (6) + probes
        return ops.take(ops.reshape(dynamic, (n_slots, model.dynamic_dim)), slots, axis=0)

    def _signature(self, with_targets: bool) -> list[tf.TensorSpec]:
        spec = [
            tf.TensorSpec((None, None), tf.int64),
            tf.TensorSpec((None, None), tf.int64),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.int32),
            tf.TensorSpec((None,), tf.float32),
            tf.TensorSpec((None,), tf.float32),
        ]
        if with_targets:
            spec += [
                tf.TensorSpec((None, self.model.dynamic_dim), tf.float32),
                tf.TensorSpec((None,), tf.int32),
                tf.TensorSpec((None,), tf.int32),
            ]
        return spec

    def _make_train_step(self):
        model, config = self.model, self.config
        network_variables, stationary_variables = self.network_variables, self.stationary_variables
        train_stationary = self.train_stationary

        @tf.function(input_signature=self._signature(with_targets=True), autograph=False)
        def train_step(steps, previous, slots, others, ratings, counts, fixed, users, items):
            with tf.GradientTape() as tape:
                dynamic = self._dynamic_of_events(steps, previous, slots, others, ratings, counts)
                stationary = model.stationary({"user": users, "item": items})
                predicted = stationary + ops.sum(dynamic * fixed, axis=-1)  # eq. (7) + μ + biases
                mse = ops.mean(ops.square(ratings - predicted))  # eq. (8)
                loss = mse
                if config.l2:
                    loss += config.l2 * sum(ops.sum(ops.square(v)) for v in network_variables)
                if train_stationary and config.stationary_l2:
                    s = model.stationary
                    rows = (
                        (s.user_factors(users), s.user_bias(users))
                        if self.side == "user"
                        else (s.item_factors(items), s.item_bias(items))
                    )
                    loss += config.stationary_l2 * ops.mean(
                        ops.sum(ops.square(rows[0]), -1) + ops.sum(ops.square(rows[1]), -1)
                    )
            variables = network_variables + (stationary_variables if train_stationary else [])
            gradients = tape.gradient(loss, variables)
            self.optimizer.apply(gradients[: len(network_variables)], network_variables)
            if train_stationary:
                self.stationary_optimizer.apply(gradients[len(network_variables) :], stationary_variables)
            return mse

        return train_step

    def _make_forward(self):
        @tf.function(input_signature=self._signature(with_targets=False), autograph=False)
        def forward(steps, previous, slots, others, ratings, counts):
            return self._dynamic_of_events(steps, previous, slots, others, ratings, counts)

        return forward

    # -- epochs --------------------------------------------------------------------------------------

    def _arguments(self, batch: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [batch[k] for k in ("steps", "previous", "slots", "others", "ratings", "counts")]

    def train_epoch(self, fixed_other: np.ndarray) -> float:
        """One pass over this side's entities with the other side's vectors `fixed_other` [n_events, d]
        (per training event, in `sequences` order) held fixed. Returns the rating-weighted mean MSE."""
        total, count = 0.0, 0
        for entities in self.batches(shuffle=True):
            batch = self.batch_inputs(entities)
            source = batch["source"]
            mse = self._train_step(
                *self._arguments(batch), fixed_other[source], self.users[source], self.items[source]
            )
            total += float(mse) * len(source)
            count += len(source)
        return total / max(count, 1)

    def dynamic_per_event(self) -> np.ndarray:
        """This side's dynamic vector for every training event (its step's probe), [n_events, d]."""
        out = np.zeros((self.n_events, self.model.dynamic_dim), dtype=np.float32)
        for entities in self.batches(shuffle=False):
            batch = self.batch_inputs(entities)
            out[batch["source"]] = ops.convert_to_numpy(self._forward(*self._arguments(batch)))
        return out


def read_states(model: RRN, sequences: UserSequences) -> None:
    """Resets the stored states and feeds every event of `sequences` into them."""
    model.user_states.reset()
    model.movie_states.reset()
    feed_events(model, sequences.users, sequences.items, sequences.ratings, sequences.timestamps)


def rmse(
    model: RRN, users: np.ndarray, items: np.ndarray, ratings: np.ndarray, timestamps: np.ndarray
) -> float:
    predicted = ops.convert_to_numpy(model.predict_ratings(users, items, timestamps))
    return float(np.sqrt(np.mean((predicted - ratings) ** 2)))


def run(
    sequences: UserSequences,
    n_users: int,
    n_items: int,
    config: RRNConfig,
    epochs: int,
    validation: tuple[np.ndarray, ...] | None = None,
) -> tuple[RRN, RRNTrainingLog]:
    """One training run: PMF, then `epochs` alternating epochs; after each, the validation RMSE of the
    held-out (users, items, ratings, timestamps) if given. Returns the model with its final states
    read off `sequences`."""
    keras.utils.set_random_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    model = new_model(sequences, n_users, n_items, config)
    log = RRNTrainingLog(pmf_losses=pretrain_stationary(model, sequences, config))
    if validation is not None:
        read_states(model, sequences)
        log.epochs.append({"epoch": 0, "seconds": 0.0, "validation_rmse": rmse(model, *validation)})
    users = SideTrainer(model, "user", sequences, config, rng)
    movies = SideTrainer(model, "movie", sequences, config, rng)
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        user_loss = users.train_epoch(movies.dynamic_per_event())  # movie states fixed
        _check(user_loss, epoch, "user")
        movie_loss = movies.train_epoch(users.dynamic_per_event())  # user states fixed
        _check(movie_loss, epoch, "movie")
        entry = {
            "epoch": epoch,
            "user_loss": user_loss,
            "movie_loss": movie_loss,
            "seconds": time.perf_counter() - started,
        }
        if validation is not None:
            read_states(model, sequences)
            entry["validation_rmse"] = rmse(model, *validation)
        log.epochs.append(entry)
    if validation is None:
        read_states(model, sequences)
    return model, log


def _check(loss: float, epoch: int, side: str) -> None:
    if not np.isfinite(loss):
        raise FloatingPointError(f"rrn: the training loss became {loss} in epoch {epoch} ({side} pass)")


def train(
    sequences: UserSequences, n_users: int, n_items: int, config: RRNConfig
) -> tuple[RRN, RRNTrainingLog]:
    """The whole §3.4/§4.1 procedure with the best epoch chosen on held-out later events (module)."""
    return select_and_refit(
        OWNER,
        sequences,
        n_users,
        n_items,
        config.validation_fraction,
        config.epochs,
        lambda events, epochs, validation: run(events, n_users, n_items, config, epochs, validation),
    )
