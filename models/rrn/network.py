"""The RRN network (Wu, Ahmed, Beutel, Smola & Jing, "Recurrent Recommender Networks", WSDM 2017).

    y_t   = W_embed [x_t, 1_newbie, τ_t, τ_{t−1}]                          (5)
    u_t   = LSTM(u_{t−1}, y_t)        (one LSTM for users, one for movies)  (6), eqs. (1)–(4)
    r̂_ij|t = ⟨ũ_it, m̃_jt⟩ + ⟨u_i, m_j⟩,  ũ_it = W_user u_it + b_user, m̃_jt = W_movie m_jt + b_movie  (7)

Our reading of what the paper leaves open (see also ../shared/papers/README.md, RRN):

- **Sparse x_t.** A user's x_t has one entry per movie and a movie's one per user (480k on Netflix),
  so W_embed x_t is computed as the sum of the embedding rows of the step's rated entities, each
  weighted by its rating (never a dense one-hot), optionally divided by √n or n (`input_scaling`). The
  newbie flag and the two wall-clocks are three more columns of W_embed (`feature_kernel`).
- **Causality (the index shift).** The paper writes u_t = LSTM(u_{t−1}, y_t) and predicts step t
  from u_t, which has read the ratings it predicts. Here the ratings of step t are predicted from
  the state after the steps before t, *advanced to step t's wall-clock* by one LSTM step whose input
  has no ratings, y = W_embed[0, 1_newbie, τ_t, τ_{t−1}] (a "probe"; it is used for the prediction
  and never carried on). The same probe predicts the test period from the last training state with
  the wall-clock advanced (the paper's "extrapolated states", §3.3), and a step the state already
  holds is predicted from the state before it.
- **Biases.** Eq. (7) has none. The stationary part ⟨u_i, m_j⟩ here is the project's biased MF
  (`MatrixFactorization`: μ + b_i + b_j + ⟨u_i, m_j⟩), since ratings average ≈3.5, not 0; the
  predicted rating is clipped to the training scale.
- **newbie** is 1 at an entity's first active step (and in a probe of an entity with no state);
  there τ_{t−1} := τ_t.

`RRN` also keeps every user's and movie's recurrent state as (non-trainable) variables, so a saved
`.keras` file predicts exactly as the model that wrote it, and `advance` feeds new steps through the
LSTMs without touching a weight (§4.5).
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from movierec.models.matrix_factorization import MatrixFactorization
from movierec.models.rrn.config import INPUT_SCALINGS, RATING_INPUTS

NO_STEP = np.iinfo(np.int64).min  # "no step yet": smaller than every step index
SIDES = ("user", "movie")


@keras.saving.register_keras_serializable(package="movierec")
class StepLSTMCell(keras.layers.Layer):
    """One LSTM step, Wu et al. eqs. (1)–(4):

        [f_t, i_t, o_t] = σ(W [h_{t−1}, z_t] + b)     (1)
        l_t = tanh(V [h_{t−1}, z_t] + d)                (2)
        c_t = f_t · c_{t−1} + i_t · l_t                 (3)
        h_t = o_t · tanh(c_t)                           (4)

    [W; V] is split into an input kernel (applied by `project`, once for all steps of a sequence) and
    a recurrent kernel. The forget bias starts at 1."""

    def __init__(self, units: int, input_dim: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.units, self.input_dim = int(units), int(input_dim)

    def build(self, input_shape: Any = None) -> None:
        h = self.units
        self.kernel = self.add_weight(
            shape=(self.input_dim, 4 * h), initializer="glorot_uniform", name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(h, 4 * h), initializer="orthogonal", name="recurrent_kernel"
        )
        forget_one = np.r_[np.ones(h), np.zeros(3 * h)].astype("float32")
        self.bias = self.add_weight(
            shape=(4 * h,), initializer=keras.initializers.Constant(forget_one), name="bias"
        )
        self.built = True

    def project(self, inputs: Any) -> Any:
        """The input half of W[h, z] and V[h, z] for inputs [..., input_dim]: [..., 4H]."""
        return ops.matmul(inputs, self.kernel)

    def call(self, projected: Any, h: Any, c: Any) -> tuple[Any, Any]:
        """projected [B, 4H] (from `project`), state (h, c) [B, H] → next (h, c)."""
        n = self.units
        z = projected + ops.matmul(h, self.recurrent_kernel) + self.bias
        forget = ops.sigmoid(z[:, :n])  # eq. (1)
        write = ops.sigmoid(z[:, n : 2 * n])  # eq. (1)
        out = ops.sigmoid(z[:, 2 * n : 3 * n])  # eq. (1)
        candidate = ops.tanh(z[:, 3 * n :])  # eq. (2)
        c = forget * c + write * candidate  # eq. (3)
        return out * ops.tanh(c), c  # eq. (4)

    def run(self, projected: Any, h0: Any, c0: Any) -> tuple[Any, Any]:
        """The states after every step of right-padded sequences: projected [B, T, 4H] → (h, c), each
        [B, T, H]. Padding steps are run too (their states are simply never read)."""

        def body(carry, x):
            state = self.call(x, *carry)
            return state, state

        _, (hs, cs) = ops.scan(body, (h0, c0), ops.transpose(projected, (1, 0, 2)))
        return ops.transpose(hs, (1, 0, 2)), ops.transpose(cs, (1, 0, 2))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "units": self.units, "input_dim": self.input_dim}


@keras.saving.register_keras_serializable(package="movierec")
class RecurrentSide(keras.layers.Layer):
    """One side of RRN (users, or movies): the step input of eq. (5), the LSTM of eq. (6) and the
    affine map of eq. (7). `n_inputs` is the size of the other side (x_t's length)."""

    def __init__(
        self,
        n_inputs: int,
        embedding_dim: int,
        hidden_size: int,
        dynamic_dim: int,
        rating_offset: float = 0.0,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.n_inputs, self.embedding_dim = int(n_inputs), int(embedding_dim)
        self.rating_offset = float(rating_offset)  # x_tj = r − offset (0: the paper's x_tj = r)
        self.hidden_size, self.dynamic_dim = int(hidden_size), int(dynamic_dim)
        self.cell = StepLSTMCell(self.hidden_size, self.embedding_dim, name="lstm")

    def build(self, input_shape: Any = None) -> None:
        # eq. (5): W_embed = [rating_embedding (x_t's columns), feature_kernel (1_newbie, τ_t, τ_{t−1})]
        self.rating_embedding = self.add_weight(
            shape=(self.n_inputs, self.embedding_dim),
            initializer=keras.initializers.RandomNormal(stddev=0.05),
            name="rating_embedding",
        )
        self.feature_kernel = self.add_weight(
            shape=(3, self.embedding_dim), initializer="glorot_uniform", name="feature_kernel"
        )
        self.cell.build()
        # eq. (7): ũ = W u + b
        self.projection_kernel = self.add_weight(
            shape=(self.hidden_size, self.dynamic_dim), initializer="glorot_uniform", name="projection_kernel"
        )
        self.projection_bias = self.add_weight(
            shape=(self.dynamic_dim,), initializer="zeros", name="projection_bias"
        )
        self.built = True

    def rating_sums(self, slots: Any, others: Any, ratings: Any, n_slots: Any) -> Any:
        """Σ_j x_tj W_embed[:, j] per slot: the rows of the rated entities `others` weighted by their
        ratings minus `rating_offset`, summed into `slots` [N] → [n_slots, D]. (The x_t part of
        eq. 5, never a one-hot.)"""
        rows = ops.take(self.rating_embedding, ops.cast(others, "int32"), axis=0)
        weighted = rows * ops.expand_dims(ops.cast(ratings, rows.dtype) - self.rating_offset, -1)
        return ops.segment_sum(weighted, ops.cast(slots, "int32"), num_segments=n_slots)

    def feature_input(self, features: Any) -> Any:
        """W_embed [1_newbie, τ_t, τ_{t−1}]: features [..., 3] → [..., D] (eq. 5 with x_t = 0)."""
        return ops.matmul(features, self.feature_kernel)

    def dynamic(self, h: Any) -> Any:
        """ũ = W h + b (eq. 7)."""
        return ops.matmul(h, self.projection_kernel) + self.projection_bias

    def probe(self, h: Any, c: Any, features: Any) -> Any:
        """The dynamic vector for a step with wall-clock `features` [B, 3] from the state (h, c) after the
        earlier steps: one LSTM step without ratings (see the module), then eq. (7)'s affine map."""
        h_probe, _ = self.cell(self.cell.project(self.feature_input(features)), h, c)
        return self.dynamic(h_probe)

    def sequence(self, inputs: Any, features: Any, h0: Any, c0: Any) -> tuple[Any, Any, Any]:
        """Runs right-padded step sequences. inputs [B, T, D] (the scaled rating sums), features
        [B, T, 3], initial state (h0, c0) [B, H]. Returns (h, c) after every step, [B, T, H] each, and
        the dynamic vector that predicts every step from the state before it, [B, T, dynamic_dim]."""
        hs, cs = self.cell.run(self.cell.project(inputs + self.feature_input(features)), h0, c0)  # (5), (6)
        h_before = ops.concatenate([ops.expand_dims(h0, 1), hs[:, :-1]], axis=1)
        c_before = ops.concatenate([ops.expand_dims(c0, 1), cs[:, :-1]], axis=1)
        shape = ops.shape(features)
        flat = (shape[0] * shape[1], self.hidden_size)
        probes = self.probe(
            ops.reshape(h_before, flat), ops.reshape(c_before, flat), ops.reshape(features, (flat[0], 3))
        )
        return hs, cs, ops.reshape(probes, (shape[0], shape[1], self.dynamic_dim))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_inputs": self.n_inputs,
            "embedding_dim": self.embedding_dim,
            "hidden_size": self.hidden_size,
            "dynamic_dim": self.dynamic_dim,
            "rating_offset": self.rating_offset,
        }


@keras.saving.register_keras_serializable(package="movierec")
class EntityStates(keras.layers.Layer):
    """The recurrent state of every user (or movie), as non-trainable variables:

    - `h`, `c`: the LSTM state after the entity's last step; `h_before`, `c_before`: before it (zeros
      when it is the first);
    - `carry_sum`, `carry_count`: the last step's unscaled rating sum Σ r_j W_embed[:, j] and its number
      of ratings, so that later events of that same step re-run it with the merged rating vector;
    - `last_step`, `previous_step`: the last two active step indices (NO_STEP: none);
    - `last_time`: the latest event timestamp the state has read (NO_STEP: none)."""

    def __init__(self, n_entities: int, hidden_size: int, embedding_dim: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.n_entities, self.hidden_size, self.embedding_dim = (
            int(n_entities),
            int(hidden_size),
            int(embedding_dim),
        )

    def build(self, input_shape: Any = None) -> None:
        e, h, d = self.n_entities, self.hidden_size, self.embedding_dim

        def variable(name: str, shape: tuple[int, ...], dtype: str, value: float | int = 0) -> Any:
            return self.add_weight(
                shape=shape,
                initializer=keras.initializers.Constant(value),
                dtype=dtype,
                trainable=False,
                name=name,
            )

        self.h = variable("h", (e, h), "float32")
        self.c = variable("c", (e, h), "float32")
        self.h_before = variable("h_before", (e, h), "float32")
        self.c_before = variable("c_before", (e, h), "float32")
        self.carry_sum = variable("carry_sum", (e, d), "float32")
        self.carry_count = variable("carry_count", (e,), "float32")
        self.last_step = variable("last_step", (e,), "int64", NO_STEP)
        self.previous_step = variable("previous_step", (e,), "int64", NO_STEP)
        self.last_time = variable("last_time", (e,), "int64", NO_STEP)
        self.built = True

    @property
    def fields(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in (
                "h",
                "c",
                "h_before",
                "c_before",
                "carry_sum",
                "carry_count",
                "last_step",
                "previous_step",
                "last_time",
            )
        }

    def reset(self) -> None:
        for variable in self.fields.values():
            fill = NO_STEP if variable.dtype == "int64" else 0
            variable.assign(np.full(tuple(variable.shape), fill, dtype=variable.dtype))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_entities": self.n_entities,
            "hidden_size": self.hidden_size,
            "embedding_dim": self.embedding_dim,
        }


@keras.saving.register_keras_serializable(package="movierec")
class RRN(keras.Model):
    """RRN with its stationary part and the states of every user and movie (see the module)."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        stationary_dim: int = 20,
        embedding_dim: int = 40,
        hidden_size: int = 40,
        dynamic_dim: int = 20,
        user_step: int = 86_400,
        movie_step: int = 604_800,
        input_scaling: str = "sqrt",
        time_mean: float = 0.0,
        time_std: float = 1.0,
        global_mean: float = 0.0,
        rating_range: tuple[float, float] | None = None,
        stationary_l2: float = 1e-4,
        rating_input: str = "raw",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if input_scaling not in INPUT_SCALINGS:
            raise ValueError(f"input_scaling must be one of {INPUT_SCALINGS}, got {input_scaling!r}")
        if rating_input not in RATING_INPUTS:
            raise ValueError(f"rating_input must be one of {RATING_INPUTS}, got {rating_input!r}")
        if not time_std > 0:
            raise ValueError(f"time_std must be positive, got {time_std}")
        self.n_users, self.n_items = int(n_users), int(n_items)
        self.stationary_dim, self.embedding_dim = int(stationary_dim), int(embedding_dim)
        self.hidden_size, self.dynamic_dim = int(hidden_size), int(dynamic_dim)
        self.user_step, self.movie_step = int(user_step), int(movie_step)
        self.input_scaling = input_scaling
        self.rating_input = rating_input
        self.time_mean, self.time_std = float(time_mean), float(time_std)
        self.global_mean = float(global_mean)
        self.rating_range = tuple(float(r) for r in rating_range) if rating_range is not None else None
        self.stationary_l2 = float(stationary_l2)
        # u_i, m_j (and μ, b_i, b_j) of eq. (7): the biased MF, pre-trained as PMF (§4.1)
        self.stationary = MatrixFactorization(
            self.n_users,
            self.n_items,
            self.stationary_dim,
            self.stationary_l2,
            global_mean=self.global_mean,
            rating_range=self.rating_range,
            name="stationary",
        )
        # x_tj = r (the paper) or r − μ ("centered": a step's sum then tells liked from disliked)
        offset = self.global_mean if rating_input == "centered" else 0.0
        self.user_network = RecurrentSide(
            self.n_items, embedding_dim, hidden_size, dynamic_dim, offset, name="user_network"
        )
        self.movie_network = RecurrentSide(
            self.n_users, embedding_dim, hidden_size, dynamic_dim, offset, name="movie_network"
        )
        self.user_states = EntityStates(self.n_users, hidden_size, embedding_dim, name="user_states")
        self.movie_states = EntityStates(self.n_items, hidden_size, embedding_dim, name="movie_states")
        self.build()

    def build(self, input_shape: Any = None) -> None:
        # Every shape is known from the config: weights exist at construction (load_model needs no call).
        for layer in (self.stationary.user_factors, self.stationary.item_factors):
            layer.build((None,))
        self.stationary.user_bias.build((None,))
        self.stationary.item_bias.build((None,))
        self.stationary.built = True
        for layer in (self.user_network, self.movie_network, self.user_states, self.movie_states):
            layer.build()
        self.built = True

    # -- pieces ------------------------------------------------------------------------------------

    def network(self, side: str) -> RecurrentSide:
        return {"user": self.user_network, "movie": self.movie_network}[side]

    def states(self, side: str) -> EntityStates:
        return {"user": self.user_states, "movie": self.movie_states}[side]

    def granularity(self, side: str) -> int:
        return {"user": self.user_step, "movie": self.movie_step}[side]

    def input_scale(self, counts: Any) -> Any:
        """The factor on a step's rating sum for `counts` ratings (`input_scaling`); 0 for no ratings."""
        counts = ops.cast(counts, "float32")
        safe = ops.maximum(counts, 1.0)
        if self.input_scaling == "sqrt":
            scale = 1.0 / ops.sqrt(safe)
        elif self.input_scaling == "mean":
            scale = 1.0 / safe
        else:
            scale = ops.ones_like(safe)
        return ops.where(counts > 0, scale, 0.0)

    def wallclock(self, steps: Any, side: str) -> Any:
        """τ of the step indices `steps` (int64): each step's start, standardised (§4.1)."""
        seconds = ops.cast(steps, "float64") * float(self.granularity(side))
        return ops.cast((seconds - self.time_mean) / self.time_std, "float32")

    def step_features(self, steps: Any, previous: Any, side: str) -> Any:
        """[1_newbie, τ_t, τ_{t−1}] of eq. (5) for step indices `steps` and the entity's previous step
        (NO_STEP for none: then newbie = 1 and τ_{t−1} := τ_t), [..., 3] float32."""
        steps = ops.cast(steps, "int64")
        previous = ops.cast(previous, "int64")
        newbie = previous == NO_STEP
        previous = ops.where(newbie, steps, previous)
        return ops.stack(
            [ops.cast(newbie, "float32"), self.wallclock(steps, side), self.wallclock(previous, side)],
            axis=-1,
        )

    # -- prediction from the stored states ----------------------------------------------------------

    def step_of(self, timestamps: Any, side: str) -> Any:
        return ops.floor_divide(ops.cast(timestamps, "int64"), self.granularity(side))

    def dynamic_at(self, side: str, entities: Any, steps: Any) -> Any:
        """ũ (or m̃) of `entities` [n] for their step indices `steps` [n], from the stored states.

        A step later than the entity's last one is predicted from the state after it, the wall-clock
        advanced to the step; the entity's last step itself from the state before it (that step's
        ratings are part of the state but not earlier than the predicted ones). A step earlier than that
        (possible only when the caller asks about the past, e.g. leave-last-out's other users) also
        reads the state before the last step: the model keeps no older states."""
        states, network = self.states(side), self.network(side)
        entities = ops.cast(entities, "int32")
        steps = ops.cast(steps, "int64")
        last = ops.take(states.last_step, entities, axis=0)
        after = steps > last
        column = ops.expand_dims(after, -1)
        h = ops.where(
            column, ops.take(states.h, entities, axis=0), ops.take(states.h_before, entities, axis=0)
        )
        c = ops.where(
            column, ops.take(states.c, entities, axis=0), ops.take(states.c_before, entities, axis=0)
        )
        previous = ops.where(after, last, ops.take(states.previous_step, entities, axis=0))
        return network.probe(h, c, self.step_features(steps, previous, side))

    def predict_ratings(self, users: Any, items: Any, timestamps: Any) -> Any:
        """r̂_ij|t (eq. 7 plus μ and biases), clipped to the training scale: [n] float32."""
        users = ops.cast(users, "int32")
        items = ops.cast(items, "int32")
        user_dynamic = self.dynamic_at("user", users, self.step_of(timestamps, "user"))
        movie_dynamic = self.dynamic_at("movie", items, self.step_of(timestamps, "movie"))
        predicted = self.stationary({"user": users, "item": items}) + ops.sum(
            user_dynamic * movie_dynamic, axis=-1
        )
        return self.clip(predicted)

    def clip(self, ratings: Any) -> Any:
        return ops.clip(ratings, *self.rating_range) if self.rating_range else ratings

    def score_all(self, users: Any, timestamps: Any) -> Any:
        """Predicted ratings of the whole catalogue at each query's time, [B, n_items], unclipped (a
        ranking: clipping would tie every movie predicted above the scale's top, and ties count
        against the target). The movies' m̃ are computed once per distinct movie step of the batch (a
        batch spans few weeks)."""
        users = ops.cast(users, "int32")
        timestamps = ops.convert_to_numpy(timestamps).astype(np.int64)
        user_dynamic = self.dynamic_at("user", users, self.step_of(timestamps, "user"))  # [B, d]
        stationary = self.stationary.score_all(users)  # [B, n_items]
        movie_steps = np.floor_divide(timestamps, self.movie_step)
        distinct, group = np.unique(movie_steps, return_inverse=True)
        every_item = np.arange(self.n_items, dtype=np.int32)
        rows = []
        for k, step in enumerate(distinct):
            members = np.flatnonzero(group == k)
            movies = self.dynamic_at("movie", every_item, np.full(self.n_items, step, np.int64))  # [n, d]
            dynamic = ops.matmul(ops.take(user_dynamic, members, axis=0), ops.transpose(movies))
            rows.append((members, ops.convert_to_numpy(dynamic)))
        scores = ops.convert_to_numpy(stationary).astype(np.float32)
        for members, dynamic in rows:
            scores[members] += dynamic
        return np.asarray(scores, dtype=np.float32)

    # -- graph-friendly pieces (keras ops only, any batch shape): a SavedModel runs these -------------

    def score_all_at(self, users: Any, timestamp: Any) -> Any:
        """`score_all` for queries that share one time `timestamp` (a scalar), in keras ops only, so it
        traces into a serving graph: [B, n_items] float32, the same math (one distinct movie step),
        unclipped."""
        users = ops.cast(users, "int32")
        timestamp = ops.cast(timestamp, "int64")
        user_steps = ops.zeros_like(users, "int64") + self.step_of(timestamp, "user")
        user_dynamic = self.dynamic_at("user", users, user_steps)  # [B, d]
        every_item = ops.arange(self.n_items, dtype="int32")
        movie_steps = ops.zeros((self.n_items,), "int64") + self.step_of(timestamp, "movie")
        movies = self.dynamic_at("movie", every_item, movie_steps)  # [n, d]
        stationary = ops.cast(self.stationary.score_all(users), "float32")
        return stationary + ops.matmul(user_dynamic, ops.transpose(movies))

    def step_state(
        self, side: str, h: Any, c: Any, rating_sums: Any, counts: Any, steps: Any, previous: Any
    ) -> tuple[Any, Any]:
        """One step of `advance` for a batch of entities, in keras ops only (serving's update_state
        runs it in a graph loop, one new step per entity and iteration): from the state (h, c) [B, H],
        the step's unscaled rating sums Σ r_j W_embed[:, j] [B, D] and rating counts [B] (both already
        merged with the carried ones where the step re-runs the stored last step), its step indices
        `steps` [B] and the entity's previous active step `previous` [B] (NO_STEP: none) → (h, c) after
        the step: eqs. (5)-(6) exactly as `advance` feeds them through `RecurrentSide.sequence`."""
        network = self.network(side)
        features = self.step_features(steps, previous, side)
        inputs = rating_sums * ops.expand_dims(self.input_scale(counts), -1)
        return network.cell(network.cell.project(inputs + network.feature_input(features)), h, c)

    # -- feeding steps into the states (training's final states, and §4.5 updates) -----------------

    def advance(
        self,
        side: str,
        entities: np.ndarray,
        steps: np.ndarray,
        lengths: np.ndarray,
        slots: np.ndarray,
        others: np.ndarray,
        ratings: np.ndarray,
        last_times: np.ndarray,
    ) -> None:
        """Feeds new steps of `entities` [E] (distinct) through the side's LSTM, changing only states.

        steps [E, K]: their new step indices, increasing, right-padded (padding repeats the last);
        lengths [E] >= 1; (slots, others, ratings) [N]: the new events, slot = e·K + k of their step;
        last_times [E]: the latest new timestamp of each entity. The first new step may equal the
        stored last step: it is then re-run from the state before it with the merged rating vector,
        exactly as if all its events had come at once. Steps must not precede the stored last step."""
        states, network = self.states(side), self.network(side)
        entities = np.asarray(entities, dtype=np.int32)
        steps = np.asarray(steps, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        n, width = steps.shape
        if n == 0:
            return
        last = ops.convert_to_numpy(states.last_step)[entities]
        if (steps[:, 0] < last).any():
            raise ValueError("advance: a new step precedes the state's last step")
        merge = steps[:, 0] == last
        flat_slots = n * width
        sums = ops.reshape(
            network.rating_sums(slots, others, ratings, flat_slots), (n, width, self.embedding_dim)
        )
        counts = np.bincount(np.asarray(slots, dtype=np.int64), minlength=flat_slots).reshape(n, width)
        counts = counts.astype(np.float32)
        carry_sum = ops.take(states.carry_sum, entities, axis=0)
        carry_count = ops.convert_to_numpy(states.carry_count)[entities]
        first = ops.where(ops.expand_dims(merge, -1), sums[:, 0] + carry_sum, sums[:, 0])
        sums = ops.concatenate([ops.expand_dims(first, 1), sums[:, 1:]], axis=1)
        counts[:, 0] += np.where(merge, carry_count, 0.0)
        column = merge[:, None]
        h0 = ops.where(
            column, ops.take(states.h_before, entities, axis=0), ops.take(states.h, entities, axis=0)
        )
        c0 = ops.where(
            column, ops.take(states.c_before, entities, axis=0), ops.take(states.c, entities, axis=0)
        )
        prior = np.where(merge, ops.convert_to_numpy(states.previous_step)[entities], last)
        previous = np.concatenate([prior[:, None], steps[:, :-1]], axis=1)
        features = self.step_features(steps, previous, side)
        inputs = sums * ops.expand_dims(self.input_scale(counts), -1)
        hs, cs, _ = network.sequence(inputs, features, h0, c0)

        rows = np.arange(n)
        end = lengths - 1
        before = np.maximum(end - 1, 0)
        has_before = (end >= 1)[:, None]
        new = {
            "h": ops.convert_to_numpy(hs)[rows, end],
            "c": ops.convert_to_numpy(cs)[rows, end],
            "h_before": np.where(
                has_before, ops.convert_to_numpy(hs)[rows, before], ops.convert_to_numpy(h0)
            ),
            "c_before": np.where(
                has_before, ops.convert_to_numpy(cs)[rows, before], ops.convert_to_numpy(c0)
            ),
            "carry_sum": ops.convert_to_numpy(sums)[rows, end],
            "carry_count": counts[rows, end],
            "last_step": steps[rows, end],
            "previous_step": np.where(end >= 1, steps[rows, before], prior),
            "last_time": np.maximum(ops.convert_to_numpy(states.last_time)[entities], last_times),
        }
        for name, variable in states.fields.items():
            values = ops.convert_to_numpy(variable).copy()
            values[entities] = new[name]
            variable.assign(values)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "stationary_dim": self.stationary_dim,
            "embedding_dim": self.embedding_dim,
            "hidden_size": self.hidden_size,
            "dynamic_dim": self.dynamic_dim,
            "user_step": self.user_step,
            "movie_step": self.movie_step,
            "input_scaling": self.input_scaling,
            "rating_input": self.rating_input,
            "time_mean": self.time_mean,
            "time_std": self.time_std,
            "global_mean": self.global_mean,
            "rating_range": self.rating_range,
            "stationary_l2": self.stationary_l2,
        }
