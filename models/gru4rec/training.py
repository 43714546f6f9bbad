"""GRU4Rec's training: the epoch loop over session-parallel mini-batches and the compiled step
function (the only place that uses TensorFlow directly: Keras 3 has no backend-neutral
GradientTape / tf.function)."""

from __future__ import annotations

import functools
import time
from typing import Any

import keras
import numpy as np

from movierec.models.base import TrainingData, tie_shuffled_order
from movierec.models.gru4rec.batching import (
    negative_mask,
    popularity_sampler,
    session_parallel_batches,
    training_sessions,
)
from movierec.models.gru4rec.config import GRU4RecConfig
from movierec.models.gru4rec.network import GRU4Rec
from movierec.models.losses import RANKING_LOSSES


def sparse_adagrad(learning_rate: float) -> keras.optimizers.Optimizer:
    """Adagrad whose updates of row-sparse gradients (item lookups: input rows, output rows of the
    candidates) touch those rows only. The same arithmetic as dense Adagrad, since untouched rows get
    a zero gradient, but each step costs O(rows used) instead of O(catalogue)."""
    import tensorflow as tf

    class SparseAdagrad(keras.optimizers.Adagrad):
        def update_step(self, gradient, variable, learning_rate):
            if not isinstance(gradient, tf.IndexedSlices):
                return super().update_step(gradient, variable, learning_rate)
            rows, position = tf.unique(gradient.indices)
            values = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
            accumulator = self._accumulators[self._get_variable_index(variable)]
            self.assign_add(accumulator, tf.IndexedSlices(tf.square(values), rows))
            denominator = tf.sqrt(tf.gather(accumulator, rows) + self.epsilon)
            lr = tf.cast(learning_rate, variable.dtype)
            self.assign_sub(variable, tf.IndexedSlices(lr * values / denominator, rows))

    # Accumulators start at zero (not Keras' 0.1), so a row's first step has size ≈ learning_rate,
    # as in the paper's Adagrad; epsilon only guards the division.
    return SparseAdagrad(learning_rate, initial_accumulator_value=0.0, epsilon=1e-6)


def make_train_chunk(
    model: GRU4Rec, optimizer: keras.optimizers.Optimizer, loss_fn, batch_size: int, n_sample: int
):
    """A compiled function that runs K training steps: (state, chunk arrays [K, …]) → (state, loss sum).

    Inside a `tf.distribute` strategy's scope (the TFX Trainer fits inside `MirroredStrategy.scope()`),
    every step runs under `strategy.run`, even with one replica (its variables are still mirrored and
    can only be updated from a replica context): replica r of R trains lanes [r·B/R, (r+1)·B/R) of the
    B session-parallel lanes, and its slice of the hidden state goes back into the [L, B, H] state
    carried between steps and calls. The reported loss is the global mean. Outside any scope (the
    default strategy) the step runs directly, as it always did.
    """
    import tensorflow as tf  # Keras 3 has no backend-neutral GradientTape / tf.function

    distributed = tf.distribute.has_strategy()  # fit runs inside some strategy's scope
    strategy = tf.distribute.get_strategy()
    replicas = int(strategy.num_replicas_in_sync)
    if batch_size % replicas:
        raise ValueError(
            f"gru4rec: batch_size={batch_size} is not divisible by the {replicas} replicas of the "
            f"distribution strategy; each replica trains batch_size / replicas session-parallel lanes"
        )
    lanes = batch_size // replicas
    columns = tf.range(lanes, dtype=tf.int32)

    def one_step(state, items, targets, reset, active, samples, n_active):
        """One step over `lanes` lanes; the loss is their summed lane losses / `n_active`, the number of
        active lanes of the whole batch (on one device: the batch mean)."""
        with tf.GradientTape() as tape:
            state, hidden = model.step(items, state, reset, training=True)
            candidates = tf.concat([targets, samples], axis=0)
            scores = model.score_items(hidden, candidates)  # [b, b + S]
            per_lane = loss_fn(scores, columns, negative_mask(targets, samples, active))
            loss = tf.reduce_sum(per_lane * tf.cast(active, scores.dtype)) / n_active
        variables = model.trainable_variables
        # Under several replicas, `apply` all-reduces (sums) the replicas' gradients before the
        # update: with every replica's loss divided by the global `n_active`, the sum is the gradient
        # of the global batch mean, as on one device.
        optimizer.apply(tape.gradient(loss, variables), variables)
        return state, loss

    def active_count(active):
        return tf.maximum(tf.reduce_sum(tf.cast(active, tf.float32)), 1.0)

    def replica_step(state, items, targets, reset, active, samples):
        """`one_step` on this replica's lanes (inside `strategy.run`). The candidates are these lanes'
        targets plus the shared extra samples: the mini-batch negatives of §3.1.2 become per-replica
        (B/R targets instead of B), the sampled ones are the whole batch's."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group

        def mine(lane_values):  # [B] → this replica's [B/R]
            return tf.reshape(lane_values, (replicas, lanes))[replica]

        local_state = tf.reshape(state, (model.n_layers, replicas, lanes, model.hidden_size))[:, replica]
        return one_step(
            local_state, mine(items), mine(targets), mine(reset), mine(active), samples, active_count(active)
        )

    def distributed_step(state, items, targets, reset, active, samples):
        states, losses = strategy.run(replica_step, args=(state, items, targets, reset, active, samples))
        # local results are in replica order: the lane slices, put back together along the lane axis
        state = tf.concat(strategy.experimental_local_results(states), axis=1)
        return state, strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None)

    def single_step(state, items, targets, reset, active, samples):
        return one_step(state, items, targets, reset, active, samples, active_count(active))

    step = distributed_step if distributed else single_step

    spec = tf.TensorSpec
    signature = [
        spec((model.n_layers, batch_size, model.hidden_size), tf.float32),
        spec((None, batch_size), tf.int32),
        spec((None, batch_size), tf.int32),
        spec((None, batch_size), tf.bool),
        spec((None, batch_size), tf.bool),
        spec((None, n_sample), tf.int32),
    ]

    @tf.function(input_signature=signature, autograph=False)
    def train_chunk(state, items, targets, reset, active, samples):
        def body(k, state, total):
            state, loss = step(state, items[k], targets[k], reset[k], active[k], samples[k])
            return k + 1, state, total + loss

        def more(k, state, total):
            return k < tf.shape(items)[0]

        _, state, total = tf.while_loop(more, body, (tf.constant(0), state, tf.constant(0.0)))
        return state, total

    return train_chunk


def make_optimizer(config: GRU4RecConfig) -> keras.optimizers.Optimizer:
    rate, momentum = config.learning_rate, config.momentum
    if config.optimizer == "adagrad":
        return sparse_adagrad(rate)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(rate)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(rate, momentum=momentum)
    return keras.optimizers.SGD(rate, momentum=momentum, nesterov=momentum > 0)


def make_loss(config: GRU4RecConfig):
    if config.loss == "bpr-max":
        return functools.partial(RANKING_LOSSES[config.loss], score_regularization=config.bpreg)
    return RANKING_LOSSES[config.loss]


def train_gru4rec(model: GRU4Rec, data: TrainingData, config: GRU4RecConfig) -> dict[str, Any]:
    """Trains `model` in place on `data`'s sessions for `config.epochs` epochs; returns the training
    log (loss per epoch, steps, seconds, training targets per second)."""
    c = config
    rng = np.random.default_rng(c.seed)
    seq = data.sequences
    optimizer = make_optimizer(c)
    optimizer.build(model.trainable_variables)
    batch_size, n_sample = c.batch_size, c.n_sample
    train_chunk = make_train_chunk(model, optimizer, make_loss(c), batch_size, n_sample)
    probabilities = popularity_sampler(seq.items, data.n_items, c.sample_alpha) if n_sample else None

    starts, lengths = training_sessions(seq, c.session_mode)
    started, steps, losses = time.perf_counter(), 0, []
    for epoch in range(c.epochs):
        order = rng.permutation(len(starts)) if c.shuffle_sessions else np.arange(len(starts))
        # Same-second events in a new random order every epoch: the network must not learn the
        # stored (item-index) order of tie groups, which carries no information about time.
        epoch_items = seq.items[tie_shuffled_order(seq, rng)]
        items, targets, reset, active = session_parallel_batches(
            epoch_items, starts[order], lengths[order], batch_size
        )
        if c.epoch_tail == "drop":  # stop once fewer than half the usable lanes still have a session
            busy = active.sum(axis=1) >= max(1, min(batch_size, len(starts)) // 2)
            cut = len(busy) if busy.all() else int(np.argmin(busy))
            items, targets, reset, active = items[:cut], targets[:cut], reset[:cut], active[:cut]
        if n_sample:  # shared by the mini-batch, one draw per step (2018, §3.1)
            samples = rng.choice(data.n_items, size=(len(items), n_sample), p=probabilities).astype(np.int32)
        else:
            samples = np.zeros((len(items), 0), np.int32)
        state = model.initial_state(batch_size)
        epoch_loss = 0.0
        for k in range(0, len(items), c.steps_per_call):
            chunk = slice(k, k + c.steps_per_call)
            state, total = train_chunk(
                state, items[chunk], targets[chunk], reset[chunk], active[chunk], samples[chunk]
            )
            epoch_loss += float(total)
        steps += len(items)
        losses.append(epoch_loss / max(len(items), 1))
        if not np.isfinite(losses[-1]):
            raise FloatingPointError(f"gru4rec: the training loss became {losses[-1]} in epoch {epoch + 1}")
    seconds = time.perf_counter() - started
    n_targets = int((lengths - 1).sum()) * c.epochs
    return {
        "epoch_losses": losses,
        "steps": steps,
        "seconds": seconds,
        "events_per_second": n_targets / seconds if seconds > 0 else float("nan"),
    }
