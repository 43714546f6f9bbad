"""LSTM+CNN inside a serving graph: the rating export's ops for a fitted `LSTMCNN`.

What `LSTMCNNRecommender` computes offline (models/lstm_cnn), with TensorFlow ops on the model's own
weights and stored tables:

- a known user's history at time t: their liked training events strictly before t, the latest
  `max_history` less a same-second group the cut would split (`LikedHistory.windows`, the tie rule);
- a known movie's M_f from its stored genres and title words; a movie the model never saw (an id
  outside the catalogue) from the title and genres the request carries, through the transform graph
  and `side_inputs` — exactly as the Trainer encoded the training movies — with a zero id embedding;
- a known user's U_ef from the stored fields; an unknown user's from the request's gender, age band
  and occupation (zero id embedding) with an empty history.

The export reports these fallbacks (`rating_export`): `unknown_ids` counts the unknown user and item
of each `predict_rating` pair, and is 1 for a `recommend` row whose user is unknown (ranked by
`population_scores`).

`ratings` are clipped to the training scale (what RMSE evaluated); `score_all` is not (the ranking
`score` evaluated). LSTM+CNN has no state to advance, so the export has no `update_state`.

GPU kernels: the model stores its id tables (liked items, title word ids, user field ids) as int32,
and TensorFlow registers no GPU kernel for a gather from an int32 variable (`ResourceGather`). The
graph keeps int64 copies of them, gathers from those and casts the rows back to int32: the same values,
so the same answers. It is a `tf.Module` so the export tracks (saves) the copies.
"""

from __future__ import annotations

import tensorflow as tf

from movierec.models.lstm_cnn.network import LSTMCNN
from movierec.serving.graph_ops import tf_variable
from movierec.serving.side_inputs import (
    ITEM_INPUTS,
    USER_INPUTS,
    field_ids,
    genre_multi_hot,
    title_word_ids,
)


def _int64_copy(variable, name: str) -> tf.Variable:
    """A non-trainable int64 variable holding an integer table's values (`ResourceGather` has GPU
    kernels for int64 tables, not for int32 ones)."""
    return tf.Variable(tf.cast(tf_variable(variable), tf.int64), trainable=False, name=name)


class LSTMCNNGraph(tf.Module):
    """The graph-side view of a fitted `LSTMCNN` (see the module)."""

    # raw features `predict_rating` reads from a request besides the ids and the time
    request_features = ("title", "genres", "gender", "age_band", "occupation")

    def __init__(self, model: LSTMCNN, max_history: int):
        super().__init__(name="lstm_cnn_graph")
        self.model = model
        self.n_users, self.n_items = model.n_users, model.n_items
        self.max_history = int(max_history)
        self.rating_range = model.rating_range
        vocabularies = model.vocabularies
        self.title_vocabulary_size = len(vocabularies.get("item_title_words", ())) - 2
        self.field_vocabulary_sizes = {name: len(vocabularies[name]) - 1 for name in model.user_field_sizes}
        self.liked_indptr = tf_variable(model.liked_indptr)
        self.liked_timestamps = tf_variable(model.liked_timestamps)
        self.item_genres = tf_variable(model.item_genres)
        # the int32 tables as int64 (see the module): the graph never reads the model's own copies
        self.liked_items = _int64_copy(model.liked_items, "liked_items")
        self.item_title_words = _int64_copy(model.item_title_words, "item_title_words")
        self.user_fields = _int64_copy(model.user_fields, "user_fields")

    # -- pieces ---------------------------------------------------------------------------------------

    def now(self) -> tf.Tensor:
        """Just after the latest stored liked event (0 for none): int64 []."""
        times = tf.concat([self.liked_timestamps, [tf.constant(-1, tf.int64)]], axis=0)
        return tf.reduce_max(times) + 1

    def clip(self, ratings: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(ratings, *self.rating_range) if self.rating_range else ratings

    def windows(self, users: tf.Tensor, timestamps: tf.Tensor, known: tf.Tensor) -> tf.Tensor:
        """[B, L] liked item indices before each query's time, -1 right-padded (none where not
        `known`): `LikedHistory.windows(users, counts_before(users, timestamps), max_history)`."""
        indptr, times = self.liked_indptr, self.liked_timestamps
        n_queries = tf.size(users)
        first = tf.gather(indptr, users)
        total = tf.where(known, tf.gather(indptr, users + 1) - first, tf.zeros_like(first))
        # every stored liked event of every query's user, with the query it belongs to
        query = tf.repeat(tf.range(n_queries), total)
        offset = tf.range(tf.reduce_sum(total)) - tf.gather(tf.cumsum(total, exclusive=True), query)
        event_time = tf.gather(times, tf.gather(first, query) + offset)
        before = event_time < tf.gather(timestamps, query)
        # int32 segment sums: GPU kernels exist for them, not for int64 ones
        count = tf.cast(tf.math.unsorted_segment_sum(tf.cast(before, tf.int32), query, n_queries), tf.int64)
        start = first + count - tf.minimum(count, self.max_history)
        # the tie rule: a window whose first event shares its second with the one before starts after
        # that group (the user's events with a time <= the group's come before its end)
        padded_times = tf.concat([times, [tf.constant(-1, tf.int64)]], axis=0)
        last = tf.size(times, out_type=tf.int64)
        start_time = tf.gather(padded_times, tf.minimum(start, last))
        split = (start > first) & (tf.gather(padded_times, tf.maximum(start - 1, 0)) == start_time)
        through_group = tf.cast(
            tf.math.unsorted_segment_sum(
                tf.cast(event_time <= tf.gather(start_time, query), tf.int32), query, n_queries
            ),
            tf.int64,
        )
        start = tf.where(split, first + through_group, start)
        length = first + count - start
        # [B, L] of the window's items
        row = tf.repeat(tf.range(n_queries, dtype=tf.int64), length)
        column = tf.range(tf.reduce_sum(length)) - tf.gather(tf.cumsum(length, exclusive=True), row)
        items = tf.gather(self.liked_items, tf.gather(start, row) + column)  # int64
        width = tf.maximum(tf.reduce_max(tf.concat([length, [tf.constant(1, tf.int64)]], axis=0)), 1)
        shape = tf.stack([tf.cast(n_queries, tf.int64), width])
        shifted = tf.scatter_nd(tf.stack([row, column], axis=1), items + 1, shape)
        return shifted - 1

    def _user_features(self, users: tf.Tensor, fields: tf.Tensor, known: tf.Tensor, windows: tf.Tensor):
        """U_f of users [B] with their fields [B, F] and history windows [B, L]."""
        model = self.model
        distinct, position = tf.unique(tf.reshape(tf.maximum(windows, 0), [-1]))
        features = tf.gather(self.item_features(distinct), position)
        history = tf.reshape(features, [tf.shape(windows)[0], tf.shape(windows)[1], model.feature_dim])
        explicit = model.user_explicit_from(users, fields, known)
        return model.user_features_from(explicit, history, windows >= 0)

    def item_features(self, items: tf.Tensor) -> tf.Tensor:
        """M_f of catalogue `items` [n]: `LSTMCNN.item_features`, reading the int64 title table."""
        return self.model.item_features_from(
            items, tf.gather(self.item_genres, items), self.title_word_ids(items)
        )

    def title_word_ids(self, items: tf.Tensor) -> tf.Tensor:
        """[n, title_length] int32 title word ids of catalogue `items` [n]."""
        return tf.cast(tf.gather(self.item_title_words, items), tf.int32)

    def user_field_ids(self, users: tf.Tensor) -> tf.Tensor:
        """[n, F] int32 field ids of known `users` [n]."""
        return tf.cast(tf.gather(self.user_fields, users), tf.int32)

    def request_fields(self, side: dict[str, tf.Tensor], n: tf.Tensor) -> tf.Tensor:
        """[n, F] user field ids from a request's transformed features (0 where absent)."""
        columns = []
        for name, size in self.field_vocabulary_sizes.items():
            output = USER_INPUTS[name][0]
            index = side[output] if output in side else -tf.ones([n], tf.int64)
            columns.append(field_ids(index, size))
        return tf.stack(columns, axis=1) if columns else tf.zeros([n, 0], tf.int32)

    def _request_item_inputs(self, side: dict[str, tf.Tensor], n: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """(genres [n, G], title word ids [n, T]) of the request's movies."""
        genre_output, title_output = ITEM_INPUTS["item_genres"][0], ITEM_INPUTS["item_title_words"][0]
        genres = tf.zeros([n, self.model.n_genres], tf.float32)
        if self.model.n_genres and genre_output in side:
            genres = genre_multi_hot(side[genre_output], self.model.n_genres)
        words = tf.zeros([n, self.model.title_length], tf.int32)
        if self.model.use_title and title_output in side:
            words = title_word_ids(side[title_output], self.title_vocabulary_size)[
                :, : self.model.title_length
            ]
        return genres, words

    # -- what the rating export calls -----------------------------------------------------------------

    def ratings(
        self,
        users: tf.Tensor,
        items: tf.Tensor,
        timestamps: tf.Tensor,
        user_known: tf.Tensor,
        item_known: tf.Tensor,
        side: dict[str, tf.Tensor],
    ) -> tf.Tensor:
        """Predicted ratings [n], clipped. `users`/`items` are safe indices (0 where unknown)."""
        n = tf.size(users)
        fields = tf.where(user_known[:, None], self.user_field_ids(users), self.request_fields(side, n))
        user = self._user_features(users, fields, user_known, self.windows(users, timestamps, user_known))
        genres, words = self._request_item_inputs(side, n)
        genres = tf.where(item_known[:, None], tf.gather(self.item_genres, items), genres)
        words = tf.where(item_known[:, None], self.title_word_ids(items), words)
        movie = self.model.item_features_from(items, genres, words, item_known)
        return self.clip(tf.cast(self.model.rate(user, movie), tf.float32))

    def score_all(self, users: tf.Tensor, timestamp: tf.Tensor) -> tf.Tensor:
        """Unclipped predicted ratings of the whole catalogue for known `users` at one time [B, n]."""
        known = tf.ones_like(users, tf.bool)
        times = tf.fill(tf.shape(users), timestamp)
        user = self._user_features(
            users, self.user_field_ids(users), known, self.windows(users, times, known)
        )
        catalogue = self.item_features(tf.range(self.n_items))
        return tf.cast(self.model.rate_all(user, catalogue), tf.float32)

    def population_scores(self) -> tf.Tensor:
        """The ranking for an unknown user: every movie's rating for a user with no id, no known field
        and no history (the network's own prior), unclipped, [n_items]."""
        users = tf.zeros([1], tf.int64)
        fields = tf.zeros([1, len(self.field_vocabulary_sizes)], tf.int32)
        user = self._user_features(users, fields, tf.zeros([1], tf.bool), -tf.ones([1, 1], tf.int64))
        catalogue = self.item_features(tf.range(self.n_items))
        return tf.cast(self.model.rate_all(user, catalogue), tf.float32)[0]
