"""GRU4Rec's training: the epoch loop over session-parallel mini-batches and the compiled step
function (the only place that uses TensorFlow directly: Keras 3 has no backend-neutral
GradientTape / tf.function)."""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import keras
import numpy as np
from keras import ops

from movierec.models.base import TrainingData
from movierec.models.gru4rec.batching import (
    InverseCdfSampler,
    catalogue_negatives,
    epoch_batches,
    narrowing_segments,
    negative_mask,
    popularity_sampler,
    training_sessions,
)
from movierec.models.gru4rec.config import GRU4RecConfig
from movierec.models.gru4rec.network import GRU4Rec
from movierec.models.losses import RANKING_LOSSES, bpr_max_loss, bpr_max_value_and_gradient

# an epoch's tail runs on 1/TAIL_SHRINK of the lanes once its busy lanes fit there (`narrowing_segments`;
# on ML-100K a step's cost hardly falls below an eighth of the lanes)
TAIL_SHRINK = 8


def indexed_adagrad(
    learning_rate: float, momentum: float = 0.0, nesterov: bool = False, epsilon: float = 1e-6
) -> keras.optimizers.Optimizer:
    """Adagrad as in the authors' GRU4Rec — θ ← θ − lr g / √(Σg² + ε), optionally with momentum —
    whose updates of row-sparse gradients (item lookups: input rows, output rows of the candidates)
    touch those rows only.

    Without momentum each variable's update is one TensorFlow kernel (`ResourceApplyAdagradV2`, or
    its sparse form on the unique rows; CPU and GPU) instead of ~7 elementwise passes over the
    variable: the accumulator starts at ε and the kernels run with no epsilon of their own, so
    √accumulator is √(Σg² + ε). Untouched rows get no update (dense Adagrad would give them a zero
    one). With momentum μ, the step of the official implementation: v ← μ v − lr g / √(Σg² + ε),
    θ ← θ + v (or θ + μ v − lr g / √(Σg² + ε) with `nesterov`); for a row-sparse gradient only the
    touched rows' velocity decays, as in the official's indexed update.
    """
    import tensorflow as tf

    class IndexedAdagrad(keras.optimizers.Adagrad):
        def build(self, variables):
            super().build(variables)
            self._velocities = (
                [self.add_variable_from_reference(variable, "velocity") for variable in variables]
                if momentum
                else []
            )

        def update_step(self, gradient, variable, learning_rate):
            index = self._get_variable_index(variable)
            accumulator = self._accumulators[index].value  # the resource variable (see take_rows)
            lr = tf.cast(learning_rate, variable.dtype)
            variable = variable.value if isinstance(variable, keras.Variable) else variable
            sparse = isinstance(gradient, tf.IndexedSlices)
            if sparse:  # duplicate rows summed first: the kernels apply each listed row on its own
                rows, position = tf.unique(gradient.indices)
                gradient = tf.math.unsorted_segment_sum(gradient.values, position, tf.shape(rows)[0])
            if not momentum:
                if sparse:
                    tf.raw_ops.ResourceSparseApplyAdagradV2(
                        var=variable.handle,
                        accum=accumulator.handle,
                        lr=lr,
                        epsilon=0.0,
                        grad=gradient,
                        indices=rows,
                    )
                else:
                    tf.raw_ops.ResourceApplyAdagradV2(
                        var=variable.handle, accum=accumulator.handle, lr=lr, epsilon=0.0, grad=gradient
                    )
                return
            velocity = self._velocities[index]
            if sparse:
                self.assign_add(accumulator, tf.IndexedSlices(tf.square(gradient), rows))
                step = lr * gradient / tf.sqrt(tf.gather(accumulator, rows))
                updated = momentum * tf.gather(velocity.value, rows) - step
                self.assign(velocity, tf.IndexedSlices(updated, rows))
            else:
                self.assign_add(accumulator, tf.square(gradient))
                step = lr * gradient / tf.sqrt(accumulator)
                updated = momentum * velocity - step
                self.assign(velocity, updated)
            delta = momentum * updated - step if nesterov else updated
            self.assign_add(variable, tf.IndexedSlices(delta, rows) if sparse else delta)

    # the accumulator starts at ε (not Keras' 0.1), so a row's first step has size ≈ learning_rate, as
    # in the paper's Adagrad; ε only guards the division
    return IndexedAdagrad(learning_rate, initial_accumulator_value=epsilon, epsilon=0.0)


def step_loss(
    model: GRU4Rec,
    loss_fn,
    state,
    items,
    targets,
    reset,
    active,
    samples,
    denominator,
    log_q_correction=None,
    whole_catalogue: bool | None = None,
) -> tuple[Any, Any]:
    """One session-parallel step: (next state, summed loss of the active lanes / `denominator`).

    The candidates are the lanes' targets (mini-batch negatives, 2016 §3.1.2) and the shared extra
    `samples` (2018 §3.1); lane b's target is column b. `denominator`: the fixed batch size (a tail
    step with k busy lanes weighs k/B of a full step, as in the authors' code) or the number of active
    lanes. `log_q_correction(targets, samples)` → the [B + S] sampling probabilities (already raised
    to the power logq) whose logs are subtracted from the logits (logQ correction of sampled softmax).
    Where the catalogue is no larger than the candidate list (and without logQ), the same loss is
    computed over the catalogue's columns weighted by `catalogue_negatives`; `whole_catalogue` says
    whether to (None: decide from the candidates' static count).
    """
    import keras_rs

    candidates = ops.concatenate([targets, samples], axis=0)
    if whole_catalogue is None:
        whole_catalogue = model.scores_whole_catalogue(candidates.shape[0])
    if log_q_correction is None and whole_catalogue:
        # the catalogue is no larger than the candidate list: score it whole and weigh each item's
        # column by how many candidates it is (the same loss, with no column pick and scatter-back)
        table = model.read_output_weights()
        state, hidden = model.step(items, state, reset, training=True, output_weights=table)
        scores = model.score_all(hidden, table)  # [b, n_items]
        weights = catalogue_negatives(targets, samples, active, model.n_items)
        per_lane = loss_fn(scores, targets, weights)
        return state, ops.sum(per_lane * ops.cast(active, scores.dtype)) / denominator
    state, hidden = model.step(items, state, reset, training=True)
    scores = model.score_candidates(hidden, candidates)  # [b, b + S]
    if log_q_correction is not None:
        probability = ops.expand_dims(log_q_correction(targets, samples), 0)
        scores = keras_rs.layers.SamplingProbabilityCorrection()(
            scores, ops.broadcast_to(probability, ops.shape(scores))
        )
    columns = ops.arange(ops.shape(targets)[0], dtype="int32")
    per_lane = loss_fn(scores, columns, negative_mask(targets, samples, active))
    return state, ops.sum(per_lane * ops.cast(active, scores.dtype)) / denominator


def log_q_probabilities(items: np.ndarray, n_items: int, sample_probability: np.ndarray | None, logq: float):
    """The logQ correction's per-column probabilities, raised to `logq`: a target column (an in-batch
    negative for the other lanes) is drawn like a training target, ∝ its support; a sample column by
    the sampler (∝ support^α). Returns a function (targets, samples) → [B + S] probabilities."""
    target_probability = np.bincount(items, minlength=n_items) / max(len(items), 1)
    target_table = ops.convert_to_tensor((target_probability**logq).astype(np.float32))
    sample_table = ops.convert_to_tensor(
        ((sample_probability if sample_probability is not None else target_probability) ** logq).astype(
            np.float32
        )
    )

    def probabilities(targets, samples):
        return ops.concatenate([ops.take(target_table, targets, 0), ops.take(sample_table, samples, 0)], 0)

    return probabilities


def loss_denominator(normalization: str, batch_size: int, active) -> Any:
    """What a step's summed lane losses are divided by: "batch" the fixed batch size (the authors'
    implementation; a tail step with k of B lanes busy weighs k/B), "active" its busy lanes (≥ 1)."""
    if normalization == "batch":
        return ops.convert_to_tensor(float(batch_size))
    if normalization == "active":
        return ops.maximum(ops.sum(ops.cast(active, "float32")), 1.0)
    raise ValueError(f"gru4rec: loss_normalization must be 'batch' or 'active', got {normalization!r}")


def make_train_chunk(
    model: GRU4Rec,
    optimizer: keras.optimizers.Optimizer,
    loss_fn,
    batch_size: int,
    n_sample: int,
    normalization: str = "batch",
    log_q_correction=None,
):
    """A compiled function that runs K training steps: (state, chunk arrays [K, …]) → (state, loss sum).

    The lane count may vary between calls (one trace: the tail of an epoch runs on fewer lanes, see
    `narrowing_segments`); the loss is still divided by `batch_size` (or the active lanes), and the
    loss form (candidates or catalogue) is the one of a full-width step.

    Inside a `tf.distribute` strategy's scope (the TFX Trainer fits inside `MirroredStrategy.scope()`),
    every step runs under `strategy.run`, even with one replica (its variables are still mirrored and
    can only be updated from a replica context): replica r of R trains lanes [r·B/R, (r+1)·B/R) of the
    B session-parallel lanes, and its slice of the hidden state goes back into the [L, B, H] state
    carried between steps and calls. The reported loss is the global one (see `step_loss`). Outside
    any scope (the default strategy) the step runs directly.
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
    whole_catalogue = model.scores_whole_catalogue(batch_size // replicas + n_sample)

    loss_of_step = functools.partial(
        step_loss, model, loss_fn, log_q_correction=log_q_correction, whole_catalogue=whole_catalogue
    )

    def one_step(state, items, targets, reset, active, samples, denominator):
        with tf.GradientTape() as tape:
            state, loss = loss_of_step(state, items, targets, reset, active, samples, denominator)
        variables = model.trainable_variables
        # Under several replicas, `apply` all-reduces (sums) the replicas' gradients before the
        # update: with every replica's loss divided by the global denominator, the sum is the
        # gradient of the global loss, as on one device.
        optimizer.apply(tape.gradient(loss, variables), variables)
        return state, loss

    def active_count(active):
        return loss_denominator(normalization, batch_size, active)

    def replica_step(state, items, targets, reset, active, samples):
        """`one_step` on this replica's lanes (inside `strategy.run`). The candidates are these lanes'
        targets plus the shared extra samples: the mini-batch negatives of §3.1.2 become per-replica
        (B/R targets instead of B), the sampled ones are the whole batch's."""
        replica = tf.distribute.get_replica_context().replica_id_in_sync_group

        def mine(lane_values):  # [B] → this replica's [B/R]
            return tf.reshape(lane_values, (replicas, -1))[replica]

        local_state = tf.reshape(state, (model.n_layers, replicas, -1, model.hidden_size))[:, replica]
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
        spec((model.n_layers, None, model.hidden_size), tf.float32),
        spec((None, None), tf.int32),
        spec((None, None), tf.int32),
        spec((None, None), tf.bool),
        spec((None, None), tf.bool),
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
        return indexed_adagrad(rate, momentum, config.nesterov)
    if config.optimizer == "adam":
        return keras.optimizers.Adam(rate)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(rate, momentum=momentum)
    return keras.optimizers.SGD(rate, momentum=momentum, nesterov=config.nesterov)


def make_loss(config: GRU4RecConfig, compiled_rows: int | None = None):
    """The step's loss function (scores, target columns, negative weights) → loss per lane.

    BPR-max's value and written-out gradient are compiled with XLA into one kernel of a few fused
    loops (TensorFlow would run each of their ~40 elementwise ops as a pass over the [B, C] scores).
    XLA compiles once per shape, so with `compiled_rows` only steps of that many rows (the
    full-width steps) run the compiled kernel; the narrowed tail of an epoch (`narrowing_segments`)
    runs the plain ops, which cost it no more there and need no second compile.
    """
    if config.loss == "bpr-max":
        import tensorflow as tf

        compiled = tf.function(bpr_max_value_and_gradient, jit_compile=True, autograph=False)

        def value_and_gradient(scores, *args):
            if compiled_rows is None:
                return compiled(scores, *args)
            return tf.cond(
                tf.equal(tf.shape(scores)[0], compiled_rows),
                lambda: compiled(scores, *args),
                lambda: bpr_max_value_and_gradient(scores, *args),
            )

        return functools.partial(
            bpr_max_loss,
            score_regularization=config.bpreg,
            elu_param=config.elu_param,
            value_and_gradient=value_and_gradient,
        )
    return RANKING_LOSSES[config.loss]


def train_epoch(model: GRU4Rec, train_chunk, batches: tuple, config: GRU4RecConfig, replicas: int) -> float:
    """One epoch of `batches` (items, targets, reset, active [steps, B]; samples [steps, S]) through
    `train_chunk`, `config.steps_per_call` steps per call, the tail on fewer lanes
    (`narrowing_segments`); returns the summed step losses."""
    items, targets, reset, active, samples = batches
    state, lanes_now = model.initial_state(config.batch_size), np.arange(config.batch_size)
    epoch_loss = 0.0
    for start, stop, lanes in narrowing_segments(active, TAIL_SHRINK, replicas):
        if len(lanes) < len(lanes_now):  # the tail: carry on with the lanes still busy
            state = ops.take(state, np.searchsorted(lanes_now, lanes), axis=1)
            lanes_now = lanes
        for k in range(start, stop, config.steps_per_call):
            chunk = slice(k, min(k + config.steps_per_call, stop))
            state, total = train_chunk(
                state,
                items[chunk, lanes],
                targets[chunk, lanes],
                reset[chunk, lanes],
                active[chunk, lanes],
                samples[chunk],
            )
            epoch_loss += float(total)
    return epoch_loss


def train_gru4rec(model: GRU4Rec, data: TrainingData, config: GRU4RecConfig) -> dict[str, Any]:
    """Trains `model` in place on `data`'s sessions for `config.epochs` epochs; returns the training
    log (loss per epoch, steps, seconds in all and per epoch, training targets per second)."""
    import tensorflow as tf

    c = config
    rng = np.random.default_rng(c.seed)
    seq = data.sequences
    optimizer = make_optimizer(c)
    optimizer.build(model.trainable_variables)
    batch_size, n_sample = c.batch_size, c.n_sample
    probabilities = popularity_sampler(seq.items, data.n_items, c.sample_alpha) if n_sample else None
    sampler = InverseCdfSampler(probabilities) if n_sample else None
    correction = log_q_probabilities(seq.items, data.n_items, probabilities, c.logq) if c.logq else None
    replicas = int(tf.distribute.get_strategy().num_replicas_in_sync)  # tail widths divide among them
    loss = make_loss(c, compiled_rows=batch_size // replicas)
    train_chunk = make_train_chunk(
        model, optimizer, loss, batch_size, n_sample, c.loss_normalization, correction
    )

    starts, lengths = training_sessions(seq, c.session_mode)
    started, steps, losses, epoch_ends = time.perf_counter(), 0, [], []
    # One worker builds an epoch's batches (numpy: the schedule, the tie shuffle, the samples) while
    # the previous epoch trains, and the first epoch's while the step is traced. It alone draws
    # from `rng`, epoch after epoch, so the draws are those of building each epoch just before it.
    with ThreadPoolExecutor(max_workers=1) as worker:
        build = functools.partial(epoch_batches, seq, starts, lengths, c, sampler, rng)
        upcoming = worker.submit(build)
        train_chunk.get_concrete_function()
        for epoch in range(c.epochs):
            batches = upcoming.result()
            if epoch + 1 < c.epochs:
                upcoming = worker.submit(build)
            epoch_loss = train_epoch(model, train_chunk, batches, c, replicas)
            steps += len(batches[0])
            losses.append(epoch_loss / max(len(batches[0]), 1))
            epoch_ends.append(time.perf_counter() - started)
            if not np.isfinite(losses[-1]):
                raise FloatingPointError(
                    f"gru4rec: the training loss became {losses[-1]} in epoch {epoch + 1}"
                )
    seconds = time.perf_counter() - started
    n_targets = int((lengths - 1).sum()) * c.epochs
    return {
        "epoch_losses": losses,
        "steps": steps,
        "seconds": seconds,
        "epoch_seconds": [float(t) for t in np.diff([0.0, *epoch_ends])],  # the first includes tracing
        "events_per_second": n_targets / seconds if seconds > 0 else float("nan"),
    }
