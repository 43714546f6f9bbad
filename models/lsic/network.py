"""LSIC's scorer g (Zhao et al., §3.1-3.3): MF factors plus user and movie LSTMs, in four mixtures.

    s(i, j, t) = e^u_i · e^m_j + h^u_{i,t} · h^m_{j,t} + b^u_i + b^m_j          (eqs. 11, 13)

and g = σ(s) (eqs. 10, 12); ranking and the losses use s (σ is monotone). The LSTMs (eqs. 2-7) read a
window of weekly rating vectors (`windows.py`), embedded as Σ_j r_j W[j] / √n. Mixtures (`mixture`):
- v1: the sum above with LSTMs started from zero (the "hard" mechanism, eqs. 10-11);
- v2: the LSTMs' initial states h_0 = tanh(P e) from the MF factors (a learned projection P: the paper's
  factors are 5-d and its states 10-d, so they cannot be copied);
- v3: v2, and e concatenated to every step's input (static context);
- v4: v2, and a context c_t = Σ_k α_k e_k concatenated to every step's input, α = softmax over the
  other entities of the same side of σ(h_{t−1}, e_k) (eqs. 14-18). σ is "a feed-forward network":
  ours is one linear layer on h_{t−1} scored against e_k (Luong's "general" attention,
  (W h + b) · e_k), so exact attention over all U users / M movies is one [N, d] × [d, M] product;
  with `attention_neighbours` = k > 0 each entity attends over its k nearest MF neighbours only
  (large catalogues). The neighbour table is fixed when the MF factors are loaded (`set_neighbours`).
A movie's poster vector (eq. 8) enters its LSTM once, as a projected input step before the window.

One instance is G's scorer, another D's s_θ (`training.py`). A training step scores its users against
the movies it needs (their MF candidates, positives and negatives: the movie LSTMs run for those only);
inference scores the catalogue.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

MIXTURES = ("v1", "v2", "v3", "v4")


@keras.saving.register_keras_serializable(package="movierec")
class LSICScorer(keras.Model):
    """Scores [B, C]: users [B] against movies [C] (default every movie) at one step, from both
    sides' windows (`windows.py`: a user window row per user, a movie window row per movie).

    Args:
        n_users, n_items: the index ranges.
        mixture: "v1" … "v4" (module docstring).
        mf_dim: MF factors d (eq. 1).
        embedding_dim: the LSTM input embedding of a step's rating vector.
        hidden_size: LSTM units.
        session_steps: the window width (steps per prediction).
        attention_neighbours: 0 = attend over all entities (v4), else over each one's k MF neighbours.
        poster_dim: size of the poster vectors (0 = no posters).
        init_scale: weights start U(−s, s) (§4.2).

    Example:
        >>> scorer = LSICScorer(n_users=3, n_items=4, mixture="v4", mf_dim=2, embedding_dim=3,
        ...                     hidden_size=2, session_steps=2)
        >>> window = {"slots": np.array([0], "int32"), "others": np.array([1], "int32"),
        ...           "weights": np.array([4.0], "float32")}
        >>> empty = {"slots": np.zeros(0, "int32"), "others": np.zeros(0, "int32"),
        ...          "weights": np.zeros(0, "float32")}
        >>> scores = scorer({"users": np.array([0, 2], "int32"), "user_window": window,
        ...                  "movie_window": empty})
        >>> tuple(scores.shape)
        (2, 4)
    """

    def __init__(
        self,
        n_users: int,
        n_items: int,
        mixture: str = "v4",
        mf_dim: int = 5,
        embedding_dim: int = 15,
        hidden_size: int = 10,
        session_steps: int = 4,
        attention_neighbours: int = 0,
        poster_dim: int = 0,
        init_scale: float = 0.05,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mixture not in MIXTURES:
            raise ValueError(f"LSICScorer: mixture must be one of {MIXTURES}, got {mixture!r}")
        self.n_users, self.n_items, self.mixture = int(n_users), int(n_items), mixture
        self.mf_dim, self.embedding_dim, self.hidden_size = int(mf_dim), int(embedding_dim), int(hidden_size)
        self.session_steps, self.attention_neighbours = int(session_steps), int(attention_neighbours)
        self.poster_dim, self.init_scale = int(poster_dim), float(init_scale)
        init = keras.initializers.RandomUniform(-init_scale, init_scale)

        def table(rows: int, width: int, name: str) -> keras.layers.Embedding:
            return keras.layers.Embedding(rows, width, embeddings_initializer=init, name=name)

        # long-term MF part (eq. 1) and biases (eq. 11)
        self.user_factors = table(n_users, mf_dim, "user_factors")
        self.item_factors = table(n_items, mf_dim, "item_factors")
        self.user_bias = keras.layers.Embedding(n_users, 1, embeddings_initializer="zeros", name="user_bias")
        self.item_bias = keras.layers.Embedding(n_items, 1, embeddings_initializer="zeros", name="item_bias")
        # step inputs: a user's step embeds the movies it rated, a movie's step the users who rated it
        self.item_inputs = table(n_items, embedding_dim, "item_inputs")
        self.user_inputs = table(n_users, embedding_dim, "user_inputs")
        for layer in (self.user_factors, self.item_factors, self.user_bias, self.item_bias):
            layer.build(None)  # read as whole tables (catalogue scoring, attention), not only called
        self.item_inputs.build(None)
        self.user_inputs.build(None)
        self.user_cell = keras.layers.LSTMCell(hidden_size, kernel_initializer=init, name="user_lstm")
        self.movie_cell = keras.layers.LSTMCell(hidden_size, kernel_initializer=init, name="movie_lstm")
        if mixture != "v1":
            self.user_init = keras.layers.Dense(
                hidden_size, "tanh", kernel_initializer=init, name="user_init"
            )
            self.movie_init = keras.layers.Dense(
                hidden_size, "tanh", kernel_initializer=init, name="movie_init"
            )
        if mixture == "v4":
            self.user_query = keras.layers.Dense(mf_dim, kernel_initializer=init, name="user_attention")
            self.movie_query = keras.layers.Dense(mf_dim, kernel_initializer=init, name="movie_attention")
            k_users = min(self.attention_neighbours, n_users) if self.attention_neighbours else 0
            k_items = min(self.attention_neighbours, n_items) if self.attention_neighbours else 0
            self.user_neighbours = self.add_weight(
                shape=(n_users, max(k_users, 1)), dtype="int32", initializer="zeros", trainable=False,
                name="user_neighbours",
            )  # fmt: skip
            self.item_neighbours = self.add_weight(
                shape=(n_items, max(k_items, 1)), dtype="int32", initializer="zeros", trainable=False,
                name="item_neighbours",
            )  # fmt: skip
        if poster_dim:
            self.posters = self.add_weight(
                shape=(n_items, poster_dim), initializer="zeros", trainable=False, name="posters"
            )
            self.poster_projection = keras.layers.Dense(embedding_dim, kernel_initializer=init, name="poster")

    # -- set-up ---------------------------------------------------------------------------------------
    def set_mf(self, user_factors: np.ndarray, item_factors: np.ndarray, item_bias: np.ndarray) -> None:
        """Starts the MF part from pre-trained factors (the candidate MF's) and refreshes the v4
        neighbour tables from them."""
        self._built_once()
        self.user_factors.embeddings.assign(user_factors.astype("float32"))
        self.item_factors.embeddings.assign(item_factors.astype("float32"))
        self.item_bias.embeddings.assign(item_bias.reshape(-1, 1).astype("float32"))
        if self.mixture == "v4" and self.attention_neighbours:
            self.user_neighbours.assign(nearest(user_factors, self.user_neighbours.shape[1]))
            self.item_neighbours.assign(nearest(item_factors, self.item_neighbours.shape[1]))

    def set_posters(self, vectors: np.ndarray) -> None:
        if not self.poster_dim:
            raise ValueError("LSICScorer.set_posters: this scorer was built with poster_dim=0")
        self._built_once()
        self.posters.assign(np.asarray(vectors, "float32"))

    def _built_once(self) -> None:
        if not self.built:
            empty = {
                k: np.zeros(0, t)
                for k, t in (("slots", "int32"), ("others", "int32"), ("weights", "float32"))
            }
            self({"users": np.zeros(1, "int32"), "user_window": empty, "movie_window": empty})

    # -- the forward pass ---------------------------------------------------------------------------------
    def _window_inputs(self, table, window: dict, rows) -> Any:
        """[rows, width, E]: each slot's Σ weight × embedding (a step's scaled rating vector)."""
        values = ops.take(table.embeddings, window["others"], axis=0) * ops.expand_dims(window["weights"], -1)
        width = self.session_steps
        summed = ops.segment_sum(values, window["slots"], num_segments=rows * width)
        return ops.reshape(summed, (rows, width, self.embedding_dim))

    def _context(self, query_layer, h, factors, entities, neighbours):
        """v4's c_t = Σ_k α_k e_k with α = softmax_k((W h + b) · e_k) (eqs. 16-18)."""
        query = query_layer(h)  # [N, d]
        if self.attention_neighbours:
            candidates = ops.take(factors, ops.take(neighbours, entities, axis=0), axis=0)  # [N, k, d]
            weights = ops.softmax(ops.einsum("nd,nkd->nk", query, candidates), axis=-1)
            return ops.einsum("nk,nkd->nd", weights, candidates)
        weights = ops.softmax(ops.matmul(query, ops.transpose(factors)), axis=-1)  # [N, all]
        return ops.matmul(weights, factors)

    def _states(self, side: str, entities, inputs, posters=None):
        """h after the window (eqs. 6-7, 14-15), [N, H]; `posters` [N, E] is an extra first step."""
        cell = self.user_cell if side == "user" else self.movie_cell
        factor_table = self.user_factors if side == "user" else self.item_factors
        own = factor_table(entities)  # [N, d]
        n = ops.shape(entities)[0]
        if self.mixture == "v1":
            h = ops.zeros((n, self.hidden_size))
        else:
            h = (self.user_init if side == "user" else self.movie_init)(own)
        c = ops.zeros_like(h)
        steps = [inputs[:, k, :] for k in range(self.session_steps)]
        if posters is not None:
            steps = [posters, *steps]
        for x in steps:
            if self.mixture == "v3":
                x = ops.concatenate([x, own], axis=-1)
            elif self.mixture == "v4":
                query = self.user_query if side == "user" else self.movie_query
                neighbours = self.user_neighbours if side == "user" else self.item_neighbours
                x = ops.concatenate(
                    [x, self._context(query, h, factor_table.embeddings, entities, neighbours)], -1
                )
            h, (h, c) = cell(x, [h, c])
        return h

    def vectors(self, inputs: dict) -> tuple[Any, Any]:
        """(user vectors [B, V], movie vectors [C, V]) whose dot products are s(u, m) of eqs.
        (11)/(13): [e_u, h_u, b_u, 1] · [e_m, h_m, 1, b_m]. `users` [B] and `movies` [C] (default: the
        whole catalogue, in order), each side from its window (`user_window` rows = users,
        `movie_window` rows = movies). Serving stores them at `now` and takes one product."""
        users = inputs["users"]
        movies = inputs.get("movies")
        if movies is None:
            movies = ops.arange(self.n_items, dtype="int32")
        n_users, n_movies = ops.shape(users)[0], ops.shape(movies)[0]
        h_user = self._states(
            "user", users, self._window_inputs(self.item_inputs, inputs["user_window"], n_users)
        )
        posters = self.poster_projection(ops.take(self.posters, movies, axis=0)) if self.poster_dim else None
        movie_inputs = self._window_inputs(self.user_inputs, inputs["movie_window"], n_movies)
        h_movie = self._states("movie", movies, movie_inputs, posters)
        user_ones, movie_ones = ops.ones((n_users, 1)), ops.ones((n_movies, 1))
        user = ops.concatenate([self.user_factors(users), h_user, self.user_bias(users), user_ones], axis=-1)
        movie = ops.concatenate(
            [self.item_factors(movies), h_movie, movie_ones, self.item_bias(movies)], axis=-1
        )
        return user, movie

    def call(self, inputs: dict) -> Any:
        """s(u, m) [B, C]: e_u·e_m + h_u·h_m + b_u + b_m (eqs. 11, 13; `vectors`)."""
        user, movie = self.vectors(inputs)
        return ops.matmul(user, ops.transpose(movie))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "mixture": self.mixture,
            "mf_dim": self.mf_dim,
            "embedding_dim": self.embedding_dim,
            "hidden_size": self.hidden_size,
            "session_steps": self.session_steps,
            "attention_neighbours": self.attention_neighbours,
            "poster_dim": self.poster_dim,
            "init_scale": self.init_scale,
        }


def nearest(factors: np.ndarray, k: int) -> np.ndarray:
    """Each row's k nearest rows by dot product (itself included), [N, k] int32, exactly: blocks keep
    the [block, N] similarity near 16M floats, but the work is O(N²·d) — past ~10⁵ entities an
    approximate index (ScaNN, FAISS) would build this table."""
    factors = np.asarray(factors, np.float32)
    out = np.zeros((len(factors), k), np.int32)
    block = max(1, (16 << 20) // max(len(factors), 1))
    for start in range(0, len(factors), block):
        similarity = factors[start : start + block] @ factors.T
        out[start : start + block] = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
    return out
