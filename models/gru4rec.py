"""GRU4Rec: session-based recommendations with a recurrent network, in Keras 3.

Written from the papers:
- Hidasi, Karatzoglou, Baltrunas & Tikk, "Session-based Recommendations with Recurrent Neural
  Networks", ICLR 2016 (GRU of §3 eq. 1–4, session-parallel mini-batches of §3.1.1, mini-batch
  negative sampling of §3.1.2, the TOP1/BPR losses of §3.1.2);
- Hidasi & Karatzoglou, "Recurrent Neural Networks with Top-k Gains for Session-based
  Recommendations", CIKM 2018 (extra negatives sampled from popularity^α shared by the mini-batch,
  §3.1; BPR-max, §3.2).

`GRU4Rec` is the network: one GRU step (`call`/`step`), candidate or full-catalogue scores, and a
traceable pass over padded sequences (`encode`/`score_sequences`) for inference and serving.
`GRU4RecRecommender` adapts it to the fit/score contract of models/base.py; the session-parallel
schedule (`session_parallel_schedule`) is a plain numpy function so it can be tested on its own.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import keras
import numpy as np
from keras import ops

from movierec.models.base import (
    QueryBatch,
    TrainingData,
    UserSequences,
    gather_ranges,
    tie_shuffled_order,
)
from movierec.models.losses import RANKING_LOSSES
from movierec.models.matrix_factorization import _KerasRecommender

SESSION_MODES = ("session", "user")
INFERENCE_MODES = ("session", "sequence")
OPTIMIZERS = ("adagrad", "adam", "sgd", "rmsprop")


@keras.saving.register_keras_serializable(package="movierec")
class SessionGRUCell(keras.layers.Layer):
    """One GRU layer for one time step, with the gates of Hidasi et al. 2016, §3 eq. (1)–(4):

        h_t = (1 − z_t) h_{t−1} + z_t ĥ_t                  (1)
        z_t = σ(W_z x_t + U_z h_{t−1})                      (2)
        ĥ_t = tanh(W x_t + U (r_t ⊙ h_{t−1}))               (3)
        r_t = σ(W_r x_t + U_r h_{t−1})                      (4)

    The input projection x_t ↦ [W_z; W_r; W] x_t is separate (`project`): with item ids as input it is a
    row lookup, which is exactly the product with a one-hot vector (the 1-of-N input of §3.1).
    """

    def __init__(self, units: int, input_dim: int, **kwargs):
        super().__init__(**kwargs)
        self.units, self.input_dim = int(units), int(input_dim)

    def build(self, input_shape=None) -> None:
        h = self.units
        self.input_kernel = self.add_weight(
            shape=(self.input_dim, 3 * h), initializer="glorot_uniform", name="input_kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(h, 3 * h), initializer="orthogonal", name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=(3 * h,), initializer="zeros", name="bias")

    def project(self, inputs) -> Any:
        """[W_z; W_r; W] x for dense inputs [B, input_dim], or the one-hot lookup for int ids [B]."""
        if "int" in str(inputs.dtype):
            return ops.take(self.input_kernel, inputs, axis=0)
        return ops.matmul(inputs, self.input_kernel)

    def call(self, projected, state) -> Any:
        """projected: [B, 3H] (from `project`), state: h_{t−1} [B, H] → h_t [B, H]."""
        h = self.units
        x = projected + self.bias
        recurrent = ops.matmul(state, self.recurrent_kernel[:, : 2 * h])
        z = ops.sigmoid(x[:, :h] + recurrent[:, :h])  # eq. (2)
        r = ops.sigmoid(x[:, h : 2 * h] + recurrent[:, h:])  # eq. (4)
        candidate = ops.tanh(x[:, 2 * h :] + ops.matmul(r * state, self.recurrent_kernel[:, 2 * h :]))  # (3)
        return (1.0 - z) * state + z * candidate  # eq. (1)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "input_dim": self.input_dim}


@keras.saving.register_keras_serializable(package="movierec")
class GRU4Rec(keras.Model):
    """The GRU4Rec network (Hidasi et al. 2016, §3, Fig. 1): input item → [embedding] → GRU layers →
    scores r = act(h · W_outᵀ + b_out) of candidate items (the feedforward output layer).

    - `embedding_dim=0`: 1-of-N input, the first GRU layer's input weights are the item lookup;
      `embedding_dim>0`: a separate embedding layer feeds the GRU (§3.1 reports both).
    - `constrained_embedding=True`: the input embedding of item i is its output weight row W_out[i]
      (input and output item representations tied; then `embedding_dim` must be 0).
    - States are stacked per layer: [n_layers, B, hidden_size].
    """

    def __init__(
        self,
        n_items: int,
        hidden_size: int = 100,
        n_layers: int = 1,
        embedding_dim: int = 0,
        dropout_input: float = 0.0,
        dropout_hidden: float = 0.0,
        final_activation: str = "linear",
        constrained_embedding: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if constrained_embedding and embedding_dim:
            raise ValueError(
                "constrained_embedding uses the output weights as embedding: set embedding_dim=0"
            )
        if n_layers < 1:
            raise ValueError(f"n_layers must be >= 1, got {n_layers}")
        self.n_items, self.hidden_size, self.n_layers = int(n_items), int(hidden_size), int(n_layers)
        self.embedding_dim = int(embedding_dim)
        self.dropout_input, self.dropout_hidden = float(dropout_input), float(dropout_hidden)
        self.final_activation = final_activation
        self.constrained_embedding = bool(constrained_embedding)
        self.activation = keras.activations.get(final_activation)

        self.one_hot = self.embedding_dim == 0 and not self.constrained_embedding
        self.embedding = (
            keras.layers.Embedding(self.n_items, self.embedding_dim, name="item_embedding")
            if self.embedding_dim
            else None
        )
        first_input = self.n_items if self.one_hot else (self.embedding_dim or self.hidden_size)
        self.cells = [
            SessionGRUCell(
                self.hidden_size, first_input if layer == 0 else self.hidden_size, name=f"gru_{layer}"
            )
            for layer in range(self.n_layers)
        ]
        self.input_dropout = keras.layers.Dropout(self.dropout_input)
        self.hidden_dropout = keras.layers.Dropout(self.dropout_hidden)
        self.build()

    def build(self, input_shape=None) -> None:
        # Every shape is known from the config, so the weights exist as soon as the model does
        # (load_model then restores them without a sample call).
        if self.embedding is not None:
            self.embedding.build((None,))
        for cell in self.cells:
            cell.build()
        self.output_weights = self.add_weight(
            shape=(self.n_items, self.hidden_size), initializer="glorot_uniform", name="output_weights"
        )
        self.output_bias = self.add_weight(shape=(self.n_items,), initializer="zeros", name="output_bias")
        self.built = True

    # -- one step ---------------------------------------------------------------------------------

    def initial_state(self, batch_size: int) -> Any:
        return ops.zeros((self.n_layers, batch_size, self.hidden_size))

    def step(self, items, state, reset=None, training: bool = False) -> tuple[Any, Any]:
        """Feeds `items` [B] to the network in `state` [L, B, H]; returns (next state, top hidden [B, H]).

        Where `reset` [B] is true the lane's state is zeroed BEFORE the item is read: the item opens a
        new session (§3.1.1). The state is not a differentiable input of the step: gradients stop at
        it (BPTT of length 1, as in the paper).
        """
        state = ops.stop_gradient(ops.convert_to_tensor(state, dtype=self.output_weights.dtype))
        if reset is not None:
            keep = 1.0 - ops.cast(ops.reshape(reset, (1, -1, 1)), state.dtype)
            state = state * keep
        items = ops.cast(items, "int32")
        if self.one_hot:
            projected = self.cells[0].project(items)
            if training and self.dropout_input > 0:
                # dropout of the 1-of-N input: the whole item is dropped (scaled by 1/(1 − p)) or kept
                projected = projected * self.input_dropout(ops.ones((ops.shape(items)[0], 1)), training=True)
        else:
            vectors = (
                self.embedding(items)
                if self.embedding is not None
                else ops.take(self.output_weights, items, 0)
            )
            projected = self.cells[0].project(self.input_dropout(vectors, training=training))
        next_states, hidden = [], None
        for cell in self.cells:
            if hidden is not None:  # layers above the first read the one below
                projected = cell.project(self.hidden_dropout(hidden, training=training))
            hidden = cell(projected, state[len(next_states)])
            next_states.append(hidden)
        return ops.stack(next_states, axis=0), self.hidden_dropout(hidden, training=training)

    # -- scores -----------------------------------------------------------------------------------

    def score_items(self, hidden, items) -> Any:
        """Scores of the candidates `items` [C] shared by the batch: act(h · W_out[items]ᵀ + b_out[items])."""
        items = ops.cast(items, "int32")
        weights = ops.take(self.output_weights, items, axis=0)  # [C, H]
        return self.activation(
            ops.matmul(hidden, ops.transpose(weights)) + ops.take(self.output_bias, items, 0)
        )

    def score_all(self, hidden) -> Any:
        """Scores of the whole catalogue for hidden states [B, H]: [B, n_items]."""
        return self.activation(ops.matmul(hidden, ops.transpose(self.output_weights)) + self.output_bias)

    def call(self, inputs: dict, training: bool = False) -> tuple[Any, Any]:
        """inputs: "items" [B], "state" [L, B, H] (zeros when absent), optional "reset" [B] and
        "candidates" [C]. Returns (next state, scores [B, C] or [B, n_items])."""
        items = inputs["items"]
        state = inputs.get("state")
        if state is None:
            state = self.initial_state(ops.shape(items)[0])
        state, hidden = self.step(items, state, inputs.get("reset"), training=training)
        candidates = inputs.get("candidates")
        scores = self.score_all(hidden) if candidates is None else self.score_items(hidden, candidates)
        return state, scores

    # -- padded sequences (inference, serving) ------------------------------------------------------

    def encode(self, items, reset, mask) -> Any:
        """Runs over padded sequences and returns the top hidden state after each row's last valid step.

        items [B, T] int, reset [B, T] bool (zero the state before that step), mask [B, T] bool (valid
        steps; padded steps leave the state unchanged). A row without valid steps keeps the zero state.
        """
        items = ops.cast(items, "int32")
        reset = ops.cast(reset, "bool")
        mask = ops.cast(mask, "bool")
        state = self.initial_state(ops.shape(items)[0])

        def body(t, state):
            step_mask = ops.reshape(ops.take(mask, t, axis=1), (1, -1, 1))
            advanced, _ = self.step(ops.take(items, t, axis=1), state, ops.take(reset, t, axis=1))
            return ops.where(step_mask, advanced, state)

        state = ops.fori_loop(0, ops.shape(items)[1], body, state)
        return state[-1]

    def score_sequences(self, items, reset, mask) -> Any:
        """Full-catalogue scores [B, n_items] after padded sequences (see `encode`)."""
        return self.score_all(self.encode(items, reset, mask))

    def predict_step(self, data) -> Any:
        """`predict` on {"items", "reset", "mask"} [B, T] returns `score_sequences` (compiled by Keras)."""
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        return self.score_sequences(x["items"], x["reset"], x["mask"])

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_items": self.n_items,
            "hidden_size": self.hidden_size,
            "n_layers": self.n_layers,
            "embedding_dim": self.embedding_dim,
            "dropout_input": self.dropout_input,
            "dropout_hidden": self.dropout_hidden,
            "final_activation": self.final_activation,
            "constrained_embedding": self.constrained_embedding,
        }


# -- session-parallel mini-batches (numpy) -------------------------------------------------------------


def training_sessions(
    sequences: UserSequences, session_mode: str = "session"
) -> tuple[np.ndarray, np.ndarray]:
    """(first event index, length) of every training sequence with at least two events.

    "session": the sessions marked by `session_start` (a user's first event always opens one);
    "user": a user's whole history is one sequence. One-event sequences have no target: dropped.
    """
    if session_mode not in SESSION_MODES:
        raise ValueError(f"unknown session_mode {session_mode!r}; choose one of {SESSION_MODES}")
    n_events = len(sequences.items)
    boundary = np.zeros(n_events, dtype=bool)
    user_first = sequences.indptr[:-1][np.diff(sequences.indptr) > 0]
    boundary[user_first] = True
    if session_mode == "session":
        boundary |= sequences.session_start.astype(bool)
    starts = np.flatnonzero(boundary)
    lengths = np.diff(np.r_[starts, n_events])
    keep = lengths >= 2
    return starts[keep].astype(np.int64), lengths[keep].astype(np.int64)


def session_parallel_schedule(lengths: np.ndarray, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Which session (index into `lengths`, in that order) each lane holds at each step, and the offset
    of the event it reads there (Hidasi et al. 2016, §3.1.1, Fig. 2).

    Lane b starts with session b; at every step each lane reads the event at its offset and targets
    the next one; a lane whose session has no further target takes the next unseen session (lanes
    that free up at the same step take them in lane order). Once sessions run out, freed lanes stay
    idle (session −1) until every lane is done. Returns (session, offset), both [n_steps, batch_size];
    a lane's state must be reset where offset == 0 and session >= 0.

    The loop runs over steps; each step is a vectorised update of all lanes.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if (lengths < 2).any():
        raise ValueError("every session needs at least two events (one input, one target)")
    n_sessions = len(lengths)
    lane_session = np.full(batch_size, -1, dtype=np.int64)
    first = min(batch_size, n_sessions)
    lane_session[:first] = np.arange(first)
    lane_offset = np.zeros(batch_size, dtype=np.int64)
    next_session = first
    sessions, offsets = [], []
    while (lane_session >= 0).any():
        sessions.append(lane_session.copy())
        offsets.append(lane_offset.copy())
        active = lane_session >= 0
        lane_offset = lane_offset + active
        # the input at offset o has its target at o + 1: a session of n events gives n − 1 steps
        done = np.flatnonzero(active & (lane_offset >= lengths[np.maximum(lane_session, 0)] - 1))
        incoming = np.arange(next_session, next_session + len(done))
        next_session = min(next_session + len(done), n_sessions)
        lane_session[done] = np.where(incoming < n_sessions, incoming, -1)
        lane_offset[done] = 0
    if not sessions:
        return np.zeros((0, batch_size), np.int64), np.zeros((0, batch_size), np.int64)
    return np.stack(sessions), np.stack(offsets)


def session_parallel_batches(
    items: np.ndarray, starts: np.ndarray, lengths: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The mini-batches of one epoch, [n_steps, batch_size] each: (input item, target item, reset,
    active), for the sequences `items[starts[s] : starts[s] + lengths[s]]` taken in that order.

    Idle lanes (no session left) read and target item 0 and are inactive: no loss, no negatives.
    """
    session, offset = session_parallel_schedule(lengths, batch_size)
    active = session >= 0
    event = np.asarray(starts, dtype=np.int64)[np.maximum(session, 0)] + offset
    inputs = np.where(active, items[event], 0).astype(np.int32)
    targets = np.where(active, items[np.minimum(event + 1, len(items) - 1)], 0).astype(np.int32)
    return inputs, targets, active & (offset == 0), active


def popularity_sampler(items: np.ndarray, n_items: int, alpha: float) -> np.ndarray:
    """Sampling probabilities ∝ support^α (Hidasi & Karatzoglou 2018, §3.1: α = 0 uniform, 1 popularity)."""
    counts = np.bincount(items, minlength=n_items).astype(np.float64)
    weights = np.where(counts > 0, counts**alpha, 0.0)
    if weights.sum() == 0:
        weights = np.ones(n_items)
    return weights / weights.sum()


def negative_mask(targets, samples, active) -> Any:
    """[B, B + S] mask of the candidates that act as negatives for each lane's target.

    Candidates are the lanes' targets (mini-batch negatives, 2016 §3.1.2) followed by the shared
    samples (2018 §3.1). Idle lanes' targets are no candidates, and a candidate equal to the row's
    own target (an accidental hit: another lane's identical target, or a sample of it) is masked.
    """
    candidates = ops.concatenate([ops.cast(targets, "int32"), ops.cast(samples, "int32")], axis=0)
    usable = ops.concatenate([ops.cast(active, "float32"), ops.ones((ops.shape(samples)[0],))], axis=0)
    hit = ops.equal(ops.expand_dims(candidates, 0), ops.expand_dims(ops.cast(targets, "int32"), 1))
    return (1.0 - ops.cast(hit, "float32")) * ops.expand_dims(usable, 0)


# -- training loop (the only place that uses TensorFlow directly) -----------------------------------


def _sparse_adagrad(learning_rate: float) -> keras.optimizers.Optimizer:
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


def _make_train_chunk(
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


class GRU4RecRecommender(_KerasRecommender):
    """GRU4Rec trained with session-parallel mini-batches and sampled negatives; scores from the state
    after the query's visible history (its current session, or the whole history: `inference_mode`)."""

    name = "gru4rec"
    keras_model: GRU4Rec | None

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        # Picked by hand on MovieLens 100K; that tuning was not recorded. What can be checked is
        # benchmarks/tune_gru4rec.py: a seeded random search over loss, n_sample, sample_alpha,
        # constrained_embedding, dropout_hidden and learning_rate, each trial trained on the temporal
        # protocol's training events and scored on its validation users only (never the test users),
        # with these defaults as trial 0, so its ranked table shows whether they still come first:
        #     scripts/run python benchmarks/tune_gru4rec.py --data ../shared/data/ml-100k --trials 20
        return {
            "hidden_size": 100,
            "n_layers": 1,
            "embedding_dim": 0,  # 0: 1-of-N input (or the output vectors, with constrained_embedding)
            "constrained_embedding": True,
            "final_activation": "linear",
            "dropout_input": 0.0,
            "dropout_hidden": 0.3,
            "loss": "cross-entropy",  # or "bpr-max", "top1", "bpr"
            "bpreg": 1.0,  # λ of the BPR-max score regularisation (2018, eq. 11)
            "batch_size": 32,
            "n_sample": 512,  # extra negatives per step, shared by the mini-batch (2018, §3.1)
            "sample_alpha": 0.0,  # sampling ∝ support^α: 0 uniform, 1 popularity
            "optimizer": "adagrad",  # "adagrad" (the paper's), "adam", "sgd", "rmsprop"
            "learning_rate": 0.05,
            "momentum": 0.0,  # for "sgd" (Nesterov) and "rmsprop"
            "epochs": 6,
            "session_mode": "session",  # training sequences: "session" or "user" (whole history)
            "inference_mode": "session",  # query context: "session" or "sequence" (whole history)
            "shuffle_sessions": True,  # a new random session order every epoch
            # "drop": an epoch ends when most lanes find no session left (the rest of the longest
            # sessions would otherwise train alone, without in-batch negatives, for hundreds of steps,
            # and the final weights would depend on which sessions happened to come last);
            # "keep": run every session to its end with idle lanes masked.
            "epoch_tail": "drop",
            "max_history": 200,  # latest events read per query
            "steps_per_call": 64,  # mini-batch steps per compiled call (speed only)
            "seed": 0,
        }

    def __init__(self, **hparams: Any) -> None:
        super().__init__(**hparams)
        h = self.hparams
        if h["loss"] not in RANKING_LOSSES:
            raise ValueError(f"unknown loss {h['loss']!r}; choose one of {sorted(RANKING_LOSSES)}")
        if h["session_mode"] not in SESSION_MODES:
            raise ValueError(f"unknown session_mode {h['session_mode']!r}; choose one of {SESSION_MODES}")
        if h["inference_mode"] not in INFERENCE_MODES:
            raise ValueError(
                f"unknown inference_mode {h['inference_mode']!r}; choose one of {INFERENCE_MODES}"
            )
        if h["epoch_tail"] not in ("drop", "keep"):
            raise ValueError(f"unknown epoch_tail {h['epoch_tail']!r}; choose 'drop' or 'keep'")
        if h["optimizer"] not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {h['optimizer']!r}; choose one of {OPTIMIZERS}")
        self.training_log: dict[str, Any] = {}

    def _optimizer(self) -> keras.optimizers.Optimizer:
        h = self.hparams
        rate, momentum = h["learning_rate"], h["momentum"]
        if h["optimizer"] == "adagrad":
            return _sparse_adagrad(rate)
        if h["optimizer"] == "adam":
            return keras.optimizers.Adam(rate)
        if h["optimizer"] == "rmsprop":
            return keras.optimizers.RMSprop(rate, momentum=momentum)
        return keras.optimizers.SGD(rate, momentum=momentum, nesterov=momentum > 0)

    def _loss(self):
        kind = self.hparams["loss"]
        if kind == "bpr-max":
            return functools.partial(RANKING_LOSSES[kind], score_regularization=self.hparams["bpreg"])
        return RANKING_LOSSES[kind]

    def fit(self, data: TrainingData) -> GRU4RecRecommender:
        h = self.hparams
        keras.utils.set_random_seed(h["seed"])
        rng = np.random.default_rng(h["seed"])
        seq = data.sequences
        self.keras_model = GRU4Rec(
            data.n_items,
            h["hidden_size"],
            h["n_layers"],
            h["embedding_dim"],
            h["dropout_input"],
            h["dropout_hidden"],
            h["final_activation"],
            h["constrained_embedding"],
        )
        model = self.keras_model
        optimizer = self._optimizer()
        optimizer.build(model.trainable_variables)
        batch_size, n_sample = int(h["batch_size"]), int(h["n_sample"])
        train_chunk = _make_train_chunk(model, optimizer, self._loss(), batch_size, n_sample)
        probabilities = popularity_sampler(seq.items, data.n_items, h["sample_alpha"]) if n_sample else None

        starts, lengths = training_sessions(seq, h["session_mode"])
        started, steps, losses = time.perf_counter(), 0, []
        for _ in range(int(h["epochs"])):
            order = rng.permutation(len(starts)) if h["shuffle_sessions"] else np.arange(len(starts))
            # Same-second events in a new random order every epoch: the network must not learn the
            # stored (item-index) order of tie groups, which carries no information about time.
            epoch_items = seq.items[tie_shuffled_order(seq, rng)]
            items, targets, reset, active = session_parallel_batches(
                epoch_items, starts[order], lengths[order], batch_size
            )
            if h["epoch_tail"] == "drop":  # stop once fewer than half the usable lanes still have a session
                busy = active.sum(axis=1) >= max(1, min(batch_size, len(starts)) // 2)
                cut = len(busy) if busy.all() else int(np.argmin(busy))
                items, targets, reset, active = items[:cut], targets[:cut], reset[:cut], active[:cut]
            if n_sample:  # shared by the mini-batch, one draw per step (2018, §3.1)
                samples = rng.choice(data.n_items, size=(len(items), n_sample), p=probabilities).astype(
                    np.int32
                )
            else:
                samples = np.zeros((len(items), 0), np.int32)
            state = model.initial_state(batch_size)
            epoch_loss = 0.0
            for k in range(0, len(items), int(h["steps_per_call"])):
                chunk = slice(k, k + int(h["steps_per_call"]))
                state, total = train_chunk(
                    state, items[chunk], targets[chunk], reset[chunk], active[chunk], samples[chunk]
                )
                epoch_loss += float(total)
            steps += len(items)
            losses.append(epoch_loss / max(len(items), 1))
            if not np.isfinite(losses[-1]):
                raise FloatingPointError(f"gru4rec: the training loss became {losses[-1]}")
        seconds = time.perf_counter() - started
        n_targets = int((lengths - 1).sum()) * int(h["epochs"])
        self.training_log = {
            "epoch_losses": losses,
            "steps": steps,
            "seconds": seconds,
            "events_per_second": n_targets / seconds if seconds > 0 else float("nan"),
        }
        return self

    def query_sequences(self, batch: QueryBatch) -> dict[str, np.ndarray]:
        """Padded inputs [b, T] of `GRU4Rec.encode` for a block of queries (vectorised indexing only).

        The context is the query's current session ("session") or the user's whole visible history
        ("sequence", reset where training reset), capped at the `max_history` latest events.
        """
        h = self.hparams
        seq = batch.sequences
        positions = np.asarray(batch.positions, dtype=np.int64)
        first = np.asarray(batch.session_starts, dtype=np.int64)
        if h["inference_mode"] == "sequence":
            first = np.zeros_like(positions)
        first = np.maximum(first, positions - int(h["max_history"]))
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
        if h["inference_mode"] == "sequence" and h["session_mode"] == "session":
            reset[query, column] = seq.session_start[rows]
        return {"items": items, "reset": reset, "mask": mask}

    def history_scorer(self) -> keras.Model:
        """The serving view (see movierec.serving.export): the same context rule and history cap as
        `query_sequences`, so the served scores equal the evaluated ones for the same history."""
        h = self.hparams
        return GRU4RecHistoryScorer(
            self._model(),
            inference_mode=h["inference_mode"],
            reset_at_sessions=h["inference_mode"] == "sequence" and h["session_mode"] == "session",
            max_history=int(h["max_history"]),
        )

    def score(self, batch: QueryBatch) -> np.ndarray:
        model = self._model()
        if len(batch) == 0:
            return np.zeros((0, model.n_items), np.float32)
        inputs = self.query_sequences(batch)
        scores = model.predict(inputs, batch_size=len(batch), verbose=0)
        return np.asarray(scores, dtype=np.float32)


class GRU4RecHistoryScorer(keras.Model):
    """{"items": [B, T] item indices, oldest first, left-padded with -1; "session_start": [B, T] bool}
    → full-catalogue scores [B, n_items], reading the history as `GRU4RecRecommender.query_sequences`
    reads a query's context:

    - inference_mode "session": only the current session (from the last session start);
      "sequence": the whole history, the state reset at session starts where training reset it;
    - at most the `max_history` latest events.

    The GRU runs only over the columns some row still reads, so a short history costs few steps.
    """

    def __init__(
        self,
        gru4rec: GRU4Rec,
        inference_mode: str = "session",
        reset_at_sessions: bool = False,
        max_history: int = 200,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if inference_mode not in INFERENCE_MODES:
            raise ValueError(f"unknown inference_mode {inference_mode!r}; choose one of {INFERENCE_MODES}")
        self.gru4rec = gru4rec
        self.inference_mode = inference_mode
        self.reset_at_sessions = bool(reset_at_sessions)
        self.max_history = int(max_history)

    def call(self, inputs) -> Any:
        items = ops.cast(inputs["items"], "int32")
        session_start = ops.cast(inputs["session_start"], "bool")
        width = ops.shape(items)[1]
        valid = items >= 0
        column = ops.arange(width, dtype="int32")[None, :]
        if self.inference_mode == "session":
            first = ops.max(ops.where(valid & session_start, column, 0), axis=1, keepdims=True)
        else:
            first = width - ops.sum(ops.cast(valid, "int32"), axis=1, keepdims=True)
        first = ops.maximum(first, width - self.max_history)
        mask = valid & (column >= first)
        reset = session_start & mask if self.reset_at_sessions else ops.zeros_like(mask)
        # drop the leading columns no row reads (the histories are right-aligned)
        used = ops.max(ops.sum(ops.cast(mask, "int32"), axis=1))
        skip = width - used
        return self.gru4rec.score_sequences(ops.maximum(items[:, skip:], 0), reset[:, skip:], mask[:, skip:])
