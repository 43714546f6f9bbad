"""The LSTM+CNN network of Wang, Ye, Yang & Miao (2020), Keras 3 ops only (no TFX, no files).

Figure 3 and §IV.C, with the sizes of `LSTMCNNConfig`:

- U_ef (user explicit features): user id, gender, age band and occupation embeddings, each through a
  first FC layer, concatenated, through a second FC layer ("each feature will pass through a two-layer
  fully connected network"); the zip code is dropped (§IV.B).
- M_f (movie features): the movie id embedding and the genres' embedding (the sum of the movie's genre
  embeddings: a bias-free projection of the multi-hot) fused by an FC layer; the title's word
  embeddings through convolutions of several widths (eq. 7, ReLU), max-pooled over time (eq. 8),
  concatenated and dropped out; fusion and title features through a final FC layer.
- U_pf (user preference): the M_f of the user's liked movies (history.py), in time order, through a
  2-layer LSTM (eqs. 1-6); the last layer's final **cell state** c_t is U_pf, as the paper says
  ("finally the LSTM cell state will be output").
- U_f = FC(U_ef, U_pf); the rating is an FC head over (U_f, M_f): ReLU(W_u U_f + W_m M_f + b) then a
  linear unit whose bias starts at the training mean (ours: the paper gives no head sizes). The first
  head layer is one Dense over the concatenation [U_f, M_f], written as its two halves so the whole
  catalogue's half is computed once per scoring call (rate_all).

The model also carries what predictions need besides weights, as non-trainable variables saved in the
`.keras` archive: the per-item genre and title tables, the per-user field ids, and every user's liked
training events (the histories `predict_ratings` cuts at each target's time); the side features'
vocabularies travel in its config. A layout without genres, titles or users has those inputs off.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from movierec.models.cudnn import nonempty_mask, zero_empty

USER_FIELDS = ("user_gender", "user_age_band", "user_occupation")


@keras.saving.register_keras_serializable(package="movierec")
class LSTMCNN(keras.Model):
    """See the module. `user_field_sizes` maps the user fields that are on to their vocabulary size
    (id 0 unknown); `title_vocabulary_size` 0 or `n_genres` 0 switch the title CNN or genres off;
    `n_liked` sizes the stored history."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        embedding_dim: int = 32,
        feature_dim: int = 200,
        title_windows: tuple[int, ...] | list[int] = (2, 3, 4, 5),
        title_filters: int = 8,
        lstm_units: int = 64,
        head_units: int = 64,
        dropout: float = 0.5,
        n_genres: int = 0,
        title_vocabulary_size: int = 0,
        title_length: int = 0,
        user_field_sizes: dict[str, int] | None = None,
        use_history: bool = True,
        n_liked: int = 0,
        global_mean: float = 0.0,
        rating_range: tuple[float, float] | list[float] | None = None,
        vocabularies: dict[str, list[str]] | None = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.n_users, self.n_items = int(n_users), int(n_items)
        self.embedding_dim, self.feature_dim = int(embedding_dim), int(feature_dim)
        self.title_windows = tuple(int(w) for w in title_windows)
        self.title_filters, self.lstm_units, self.head_units = (
            int(title_filters),
            int(lstm_units),
            int(head_units),
        )
        self.dropout_rate = float(dropout)
        self.n_genres = int(n_genres)
        self.title_vocabulary_size, self.title_length = int(title_vocabulary_size), int(title_length)
        self.use_title = self.title_vocabulary_size > 0 and self.title_length > 0
        if self.use_title and max(self.title_windows) > self.title_length:
            raise ValueError(
                f"title_windows {self.title_windows}: a width exceeds the title length {self.title_length}"
            )
        self.user_field_sizes = {k: int(v) for k, v in (user_field_sizes or {}).items()}
        unknown = set(self.user_field_sizes) - set(USER_FIELDS)
        if unknown:
            raise ValueError(f"unknown user fields {sorted(unknown)}; known: {USER_FIELDS}")
        self.use_history = bool(use_history)
        self.n_liked = int(n_liked)
        self.global_mean = float(global_mean)
        self.rating_range = tuple(float(r) for r in rating_range) if rating_range is not None else None
        self.vocabularies = {k: list(v) for k, v in (vocabularies or {}).items()}

        E, D = self.embedding_dim, self.feature_dim
        # U_ef: one embedding and one first FC layer per field, then the second FC layer
        self.user_id_embedding = keras.layers.Embedding(self.n_users, E, name="user_id_embedding")
        self.field_embeddings = {
            name: keras.layers.Embedding(size, E, name=f"{name}_embedding")
            for name, size in self.user_field_sizes.items()
        }
        self.field_fc = [
            keras.layers.Dense(E, activation="relu", name=f"user_fc1_{k}")
            for k in range(1 + len(self.user_field_sizes))
        ]
        self.explicit_fc = keras.layers.Dense(D, activation="tanh", name="user_explicit_fc")
        # M_f
        self.item_id_embedding = keras.layers.Embedding(self.n_items, E, name="item_id_embedding")
        self.genre_projection = (
            keras.layers.Dense(E, use_bias=False, name="genre_embedding") if self.n_genres else None
        )
        self.item_fusion_fc = keras.layers.Dense(D, activation="relu", name="item_fusion_fc")
        if self.use_title:
            self.title_embedding = keras.layers.Embedding(
                self.title_vocabulary_size, E, name="title_embedding"
            )
            self.title_convolutions = [
                keras.layers.Conv1D(self.title_filters, w, activation="relu", name=f"title_conv_{w}")
                for w in self.title_windows
            ]
            self.title_dropout = keras.layers.Dropout(self.dropout_rate, name="title_dropout")
        self.movie_fc = keras.layers.Dense(D, activation="tanh", name="movie_fc")
        # U_pf and U_f
        if self.use_history:
            self.lstm_1 = keras.layers.LSTM(self.lstm_units, return_sequences=True, name="history_lstm_1")
            self.lstm_2 = keras.layers.LSTM(self.lstm_units, return_state=True, name="history_lstm_2")
        self.user_fc = keras.layers.Dense(D, activation="tanh", name="user_fc")
        # the head over (U_f, M_f)
        self.head_user = keras.layers.Dense(self.head_units, name="head_user")
        self.head_item = keras.layers.Dense(self.head_units, use_bias=False, name="head_item")
        self.head_out = keras.layers.Dense(
            1, bias_initializer=keras.initializers.Constant(self.global_mean), name="head_out"
        )
        self.build()

    def build(self, input_shape: Any = None) -> None:
        # Every shape is known from the config: weights exist at construction (load_model needs no call).
        E, D = self.embedding_dim, self.feature_dim
        self.user_id_embedding.build((None,))
        for layer in self.field_embeddings.values():
            layer.build((None,))
        for layer in self.field_fc:
            layer.build((None, E))
        self.explicit_fc.build((None, E * len(self.field_fc)))
        self.item_id_embedding.build((None,))
        if self.genre_projection is not None:
            self.genre_projection.build((None, self.n_genres))
        self.item_fusion_fc.build((None, E * (2 if self.n_genres else 1)))
        title_dim = 0
        if self.use_title:
            self.title_embedding.build((None,))
            for layer in self.title_convolutions:
                layer.build((None, self.title_length, E))
            title_dim = self.title_filters * len(self.title_windows)
        self.movie_fc.build((None, D + title_dim))
        if self.use_history:
            self.lstm_1.build((None, None, D))
            self.lstm_2.build((None, None, self.lstm_units))
        self.user_fc.build((None, D + (self.lstm_units if self.use_history else 0)))
        self.head_user.build((None, D))
        self.head_item.build((None, D))
        self.head_out.build((None, self.head_units))
        # the data the predictions read, saved with the weights
        self.item_genres = self._table("item_genres", (self.n_items, self.n_genres), "float32")
        self.item_title_words = self._table("item_title_words", (self.n_items, self.title_length), "int32")
        self.user_fields = self._table("user_fields", (self.n_users, len(self.user_field_sizes)), "int32")
        self.liked_indptr = self._table("liked_indptr", (self.n_users + 1,), "int64")
        self.liked_items = self._table("liked_items", (self.n_liked,), "int32")
        self.liked_timestamps = self._table("liked_timestamps", (self.n_liked,), "int64")
        self.built = True

    def _table(self, name: str, shape: tuple[int, ...], dtype: str) -> keras.Variable:
        return self.add_weight(name=name, shape=shape, dtype=dtype, initializer="zeros", trainable=False)

    # -- towers ---------------------------------------------------------------------------------------

    def item_features(self, items: Any, training: bool = False) -> Any:
        """M_f of catalogue `items` [n]: [n, feature_dim] (§IV.C "movie feature extraction")."""
        items = ops.cast(items, "int32")
        return self.item_features_from(
            items,
            ops.take(self.item_genres, items, axis=0),
            ops.take(self.item_title_words, items, axis=0),
            training=training,
        )

    def item_features_from(
        self, items: Any, genres: Any, title_words: Any, known: Any = None, training: bool = False
    ) -> Any:
        """M_f from explicit inputs: movie indices [n], genres multi-hot [n, n_genres], title word ids
        [n, title_length] (0 padding, 1 OOV). Where `known` [n] is False the movie is not in the
        catalogue (a new movie served by its title and genres): its id embedding counts as zero."""
        identity = self.item_id_embedding(ops.cast(items, "int32"))
        if known is not None:
            identity = identity * ops.expand_dims(ops.cast(known, identity.dtype), -1)
        parts = [identity]
        if self.genre_projection is not None:
            parts.append(self.genre_projection(ops.cast(genres, "float32")))  # Σ genre embeddings
        fused = self.item_fusion_fc(ops.concatenate(parts, axis=-1))
        if not self.use_title:
            return self.movie_fc(fused)
        words = ops.cast(title_words, "int32")  # [n, T], 0 = padding
        embedded = self.title_embedding(words) * ops.expand_dims(ops.cast(words > 0, "float32"), -1)
        pooled = [ops.max(conv(embedded), axis=1) for conv in self.title_convolutions]  # eqs. (7), (8)
        title = self.title_dropout(ops.concatenate(pooled, axis=-1), training=training)
        return self.movie_fc(ops.concatenate([fused, title], axis=-1))

    def user_explicit(self, users: Any) -> Any:
        """U_ef of `users` [b]: [b, feature_dim] (§IV.C "user explicit feature extraction")."""
        users = ops.cast(users, "int32")
        return self.user_explicit_from(users, ops.take(self.user_fields, users, axis=0))

    def user_explicit_from(self, users: Any, fields: Any, known: Any = None) -> Any:
        """U_ef from explicit inputs: user indices [b] and field ids [b, n_fields] (0 unknown) in
        `user_field_sizes` order; where `known` [b] is False the id embedding counts as zero."""
        identity = self.user_id_embedding(ops.cast(users, "int32"))
        if known is not None:
            identity = identity * ops.expand_dims(ops.cast(known, identity.dtype), -1)
        parts = [identity]
        fields = ops.cast(fields, "int32")
        parts += [layer(fields[:, k]) for k, layer in enumerate(self.field_embeddings.values())]
        first = [fc(part) for fc, part in zip(self.field_fc, parts, strict=True)]
        return self.explicit_fc(ops.concatenate(first, axis=-1))

    def user_features(self, users: Any, history: Any, mask: Any) -> Any:
        """U_f = FC(U_ef, U_pf) for `users` [b] with the M_f of their histories `history` [b, L, D]
        (right-padded; `mask` [b, L] marks real steps). U_pf is the 2nd LSTM layer's final cell state
        (an empty history leaves it at zero)."""
        return self.user_features_from(self.user_explicit(users), history, mask)

    def user_features_from(self, explicit: Any, history: Any, mask: Any) -> Any:
        """U_f from U_ef `explicit` [b, D] and the history's M_f (as `user_features`)."""
        if not self.use_history:
            return self.user_fc(explicit)
        # an empty history's row gets one step so both LSTMs stay on cuDNN on a GPU; its U_pf is then
        # reset to the zero state it has without it (models/cudnn.py)
        mask, has_history = nonempty_mask(mask)
        sequence = self.lstm_1(history, mask=mask)
        _, _, cell = self.lstm_2(sequence, mask=mask)  # [output, h_T, c_T]: U_pf = c_T
        cell = zero_empty(has_history, cell)
        return self.user_fc(ops.concatenate([explicit, cell], axis=-1))

    def rate(self, user_features: Any, item_features: Any) -> Any:
        """Predicted ratings [b] of row-aligned U_f [b, D] and M_f [b, D] (unclipped)."""
        hidden = ops.relu(self.head_user(user_features) + self.head_item(item_features))
        return ops.squeeze(self.head_out(hidden), -1)

    def rate_all(self, user_features: Any, catalogue_features: Any) -> Any:
        """Predicted ratings [b, n] of every (user row, catalogue row) pair (unclipped)."""
        hidden = ops.relu(
            ops.expand_dims(self.head_user(user_features), 1)
            + ops.expand_dims(self.head_item(catalogue_features), 0)
        )
        return ops.squeeze(self.head_out(hidden), -1)

    def call(self, inputs: dict[str, Any], training: bool = False) -> Any:
        """Ratings of `inputs["items"]` [b] by `inputs["users"]` [b] given `inputs["history"]` [b, L]
        (item indices, -1 for padding)."""
        history = ops.cast(inputs["history"], "int32")
        mask = history >= 0
        history_features = self.item_features(ops.reshape(ops.maximum(history, 0), (-1,)), training)
        shape = ops.shape(history)
        history_features = ops.reshape(history_features, (shape[0], shape[1], self.feature_dim))
        user = self.user_features(inputs["users"], history_features, mask)
        return self.rate(user, self.item_features(inputs["items"], training))

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "n_users": self.n_users,
            "n_items": self.n_items,
            "embedding_dim": self.embedding_dim,
            "feature_dim": self.feature_dim,
            "title_windows": list(self.title_windows),
            "title_filters": self.title_filters,
            "lstm_units": self.lstm_units,
            "head_units": self.head_units,
            "dropout": self.dropout_rate,
            "n_genres": self.n_genres,
            "title_vocabulary_size": self.title_vocabulary_size,
            "title_length": self.title_length,
            "user_field_sizes": self.user_field_sizes,
            "use_history": self.use_history,
            "n_liked": self.n_liked,
            "global_mean": self.global_mean,
            "rating_range": self.rating_range,
            "vocabularies": self.vocabularies,
        }
