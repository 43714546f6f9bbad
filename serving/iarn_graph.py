"""IARN inside a serving graph: both histories, the gated forward pass and explanations as TF ops.

`IARNRecommender` (models/iarn) builds each pair's two histories with numpy (`history.EventHistory`)
and runs the network on them (`inference.Predictor`). A SavedModel cannot call numpy, so `IARNGraph`
rebuilds the same histories with TensorFlow ops from the training events stored in the fitted `IARN`
(its non-trainable `event_*` variables) and calls the network's own methods (`forward`, `encode_side`,
`gates`, `last_state`, `represent`: eqs. 1-9 of Pei et al., CIKM 2017), so weights and stored events
are the model's:

- the user side of (user i, time t): i's training ratings strictly before t (the tie rule: a
  same-second event is never context), the latest `max_history`, oldest first, same-second events in
  the stored order (time, then item index) — `EventHistory.of_users(...).windows(counts_before(...))`;
- the item side of (item j, t): j's raters strictly before t, the latest `max_history`, ordered by
  (time, user index) — `EventHistory.of_items` (its lexsort, here `rrn_graph.lexsort`). No split of a
  same-second group at the window's start: history.py has none either.

Fallback for an unknown user or item (an id outside the vocabularies), never an error: that side's
history is empty, so the network predicts from the other side alone, its empty side being what the
network learned for an owner with no event before t (u_T = 0 through eqs. 3-5; ũ = PReLU(b̃), eq. 2).
IARN has no per-item parameter besides the item's raters and genres, so an unknown movie is scored
exactly as a known movie that nobody rated before t; an unknown user as a known user with no rating
before t. `recommend` ranks the catalogue for an unknown user the same way (`population_scores`).
The export reports every fallback: `unknown_ids` (`predict_rating`: unknown user + unknown item per
pair; `recommend`: 1 per unknown user), `user_known`/`item_known` (`explain`), as for every rating model.

`ratings` are clipped to the training scale (what RMSE evaluated); `score_all` is not (what `score`
ranks). IARN has no state that new events advance, so the export has no `update_state`; it has
`explain` (rating_export.ExplainingRatingServingModule).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from movierec.models.iarn.network import IARN
from movierec.serving.graph_ops import tf_variable
from movierec.serving.rrn_graph import lexsort


class IARNGraph:
    """The graph-side view of a fitted `IARN` (see the module)."""

    request_features = ()  # `predict_rating` reads the ids and the time only

    def __init__(self, model: IARN, max_history: int):
        self.model = model
        self.n_users, self.n_items = model.n_users, model.n_items
        self.max_history = int(max_history)
        self.rating_range = model.rating_range
        self.event_indptr = tf_variable(model.event_indptr)
        self.event_items = tf_variable(model.event_items)
        self.event_ratings = tf_variable(model.event_ratings)
        self.event_timestamps = tf_variable(model.event_timestamps)

    # -- histories ------------------------------------------------------------------------------------

    def user_events(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """(indptr [n_users + 1], items, ratings, timestamps): the stored training events, user-major,
        in time order within a user (ties by item index)."""
        return (
            tf.cast(self.event_indptr, tf.int64),
            tf.cast(self.event_items, tf.int64),
            tf.cast(self.event_ratings, tf.float32),
            tf.cast(self.event_timestamps, tf.int64),
        )

    def item_events(self) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """(indptr [n_items + 1], users, ratings, timestamps): the same events item-major, ordered by
        (item, time, user index) as `EventHistory.of_items` (computed per call: an argsort of the
        events, instead of a second copy of them in the SavedModel)."""
        indptr, items, ratings, times = self.user_events()
        users = tf.repeat(tf.range(self.n_users, dtype=tf.int64), indptr[1:] - indptr[:-1])
        order = lexsort([users, times, items])
        # int32 segment sums: GPU kernels exist for them, not for int64 ones or DenseBincount
        ones = tf.ones_like(items, tf.int32)
        counts = tf.cast(tf.math.unsorted_segment_sum(ones, tf.cast(items, tf.int32), self.n_items), tf.int64)
        item_indptr = tf.concat([tf.zeros([1], tf.int64), tf.cumsum(counts)], axis=0)
        return item_indptr, tf.gather(users, order), tf.gather(ratings, order), tf.gather(times, order)

    def windows(
        self,
        events: tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor],
        owners: tf.Tensor,
        timestamps: tf.Tensor,
        known: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        """Each query's window of one side: the owner's events strictly before its time, the latest
        `max_history`, oldest first (none where not `known`). Returns `others` [B, L] int32 (-1
        padding), `ratings` [B, L] (0 padding), `timestamps` [B, L] (0 padding) and `lengths` [B], L
        the longest window (at least 1), as `EventHistory.windows` + `gather_window`."""
        indptr, others, ratings, times = events
        owners = tf.cast(owners, tf.int64)
        n_queries = tf.size(owners)
        first = tf.gather(indptr, owners)
        total = tf.where(known, tf.gather(indptr, owners + 1) - first, tf.zeros_like(first))
        # every stored event of every query's owner, with the query it belongs to
        query = tf.repeat(tf.range(n_queries), total)
        offset = tf.range(tf.reduce_sum(total)) - tf.gather(tf.cumsum(total, exclusive=True), query)
        before = tf.gather(times, tf.gather(first, query) + offset) < tf.gather(timestamps, query)
        count = tf.cast(tf.math.unsorted_segment_sum(tf.cast(before, tf.int32), query, n_queries), tf.int64)
        length = tf.minimum(count, self.max_history)
        start = first + count - length  # an owner's events are in time order: the earlier ones lead
        row = tf.repeat(tf.range(n_queries, dtype=tf.int64), length)
        column = tf.range(tf.reduce_sum(length)) - tf.gather(tf.cumsum(length, exclusive=True), row)
        event = tf.gather(start, row) + column
        width = tf.maximum(tf.reduce_max(tf.concat([length, [tf.constant(1, tf.int64)]], axis=0)), 1)
        shape = tf.stack([tf.cast(n_queries, tf.int64), width])
        where = tf.stack([row, column], axis=1)

        def scatter(values: tf.Tensor) -> tf.Tensor:
            return tf.scatter_nd(where, tf.gather(values, event), shape)

        return {
            "others": tf.cast(scatter(others + 1) - 1, tf.int32),
            "ratings": scatter(ratings),
            "timestamps": scatter(times),
            "lengths": length,
        }

    # -- pieces ---------------------------------------------------------------------------------------

    def now(self) -> tf.Tensor:
        """One second after the latest training event (0 for none): `IARNRecommender.now()`, int64 []."""
        times = tf.concat([tf.cast(self.event_timestamps, tf.int64), [tf.constant(-1, tf.int64)]], axis=0)
        return tf.reduce_max(times) + 1

    def clip(self, ratings: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(ratings, *self.rating_range) if self.rating_range else ratings

    def _forward(self, users, items, timestamps, user_known, item_known) -> tuple:
        """(unclipped r̃ [n] (eq. 1), user gates [n, Lu], item gates [n, Li], user window, item window)
        of row-aligned pairs, in inference mode (no dropout)."""
        user = self.windows(self.user_events(), users, timestamps, user_known)
        item = self.windows(self.item_events(), items, timestamps, item_known)
        rating, user_gates, item_gates = self.model.forward(
            {
                "user_items": user["others"],
                "user_ratings": user["ratings"],
                "item_users": item["others"],
                "item_ratings": item["ratings"],
                "items": tf.cast(items, tf.int32),
            },
            training=False,
        )
        return tf.cast(rating, tf.float32), user_gates, item_gates, user, item

    def _catalogue(self, user: dict[str, tf.Tensor], timestamp: tf.Tensor) -> tf.Tensor:
        """[B, n_items] unclipped r̃ of user windows `user` against every item's side at `timestamp`:
        each side encoded once, then the pair-dependent gates (eqs. 6, 8), the two gated recurrences
        (eqs. 3-5) and the heads (eqs. 1-2) per (user, item) — what `Predictor.catalogue` computes."""
        model, n = self.model, self.n_items
        catalogue = tf.range(n, dtype=tf.int64)
        item = self.windows(self.item_events(), catalogue, tf.fill([n], timestamp), tf.ones([n], tf.bool))
        u_encoded = model.encode_side("user", user["others"], user["ratings"])
        v = model.encode_side("item", item["others"], item["ratings"], tf.cast(catalogue, tf.int32))

        def one_query(q: tf.Tensor) -> tf.Tensor:
            # one query's n pairs at a time: the per-step tensors of B × n pairs at once would need
            # B × n × (Lu + Li) × (H + F) floats (GBs for a batch of users on ML-100K)
            u = {name: tf.gather(tensor, tf.fill([n], q)) for name, tensor in u_encoded.items()}
            user_gates = model.gates("user", u, v.get("to_other"))
            item_gates = model.gates("item", v, u.get("to_other"))
            u_latent = model.represent("user", model.last_state("user", u, user_gates))
            v_latent = model.represent("item", model.last_state("item", v, item_gates))
            return tf.cast(tf.reduce_sum(u_latent * v_latent, axis=-1), tf.float32)  # eq. (1)

        queries = tf.range(tf.shape(user["others"])[0])
        return tf.map_fn(one_query, queries, fn_output_signature=tf.TensorSpec([n], tf.float32))

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
        """Predicted ratings [n], clipped. `users`/`items` are safe indices (0 where unknown); an
        unknown side reads an empty history (see the module). `side` is unused (no request features)."""
        rating = self._forward(users, items, tf.cast(timestamps, tf.int64), user_known, item_known)[0]
        return self.clip(rating)

    def score_all(self, users: tf.Tensor, timestamp: tf.Tensor) -> tf.Tensor:
        """Unclipped predicted ratings of the whole catalogue for known `users` at one time [B, n]:
        for `now()`, what `IARNRecommender.score` ranks for a query after every training event."""
        times = tf.fill(tf.shape(users), tf.cast(timestamp, tf.int64))
        user = self.windows(self.user_events(), users, times, tf.ones_like(users, tf.bool))
        return self._catalogue(user, tf.cast(timestamp, tf.int64))

    def population_scores(self) -> tf.Tensor:
        """The ranking for an unknown user: every movie's rating, at `now()`, for a user with no
        history (the network's own prior, the fallback of the module), unclipped, [n_items]."""
        users = tf.zeros([1], tf.int64)
        user = self.windows(self.user_events(), users, tf.fill([1], self.now()), tf.zeros([1], tf.bool))
        return self._catalogue(user, self.now())[0]

    def explain(
        self,
        user: tf.Tensor,
        item: tf.Tensor,
        timestamp: tf.Tensor,
        user_known: tf.Tensor,
        item_known: tf.Tensor,
    ) -> dict[str, tf.Tensor]:
        """One pair's two histories with each event's attention gate a_t (eqs. 6, 8: how much the step
        entered the state), as `IARNRecommender.explain`: `user_items`, `user_ratings`,
        `user_timestamps`, `user_gates` [Lu] and `item_users`, `item_ratings`, `item_timestamps`,
        `item_gates` [Li] (model indices, oldest first), `raw_rating` (unclipped) and
        `predicted_rating` (clipped) []. Backbones without a scalar gate (rnn, lstm) give NaN gates,
        where the offline explanation gives None. Scalars in; an unknown side has an empty history."""
        users, items = tf.reshape(tf.cast(user, tf.int64), [1]), tf.reshape(tf.cast(item, tf.int64), [1])
        times = tf.reshape(tf.cast(timestamp, tf.int64), [1])
        known = tf.reshape(user_known, [1]), tf.reshape(item_known, [1])
        rating, user_gates, item_gates, u, v = self._forward(users, items, times, *known)
        out = {"raw_rating": rating[0], "predicted_rating": self.clip(rating)[0]}
        sides = (("user", "items", u, user_gates), ("item", "users", v, item_gates))
        for side, other, window, gates in sides:
            length = window["lengths"][0]
            out[f"{side}_{other}"] = tf.cast(window["others"][0, :length], tf.int64)
            out[f"{side}_ratings"] = window["ratings"][0, :length]
            out[f"{side}_timestamps"] = window["timestamps"][0, :length]
            values = tf.cast(gates[0, :length], tf.float32)
            out[f"{side}_gates"] = values if self.model.attention else tf.fill(tf.shape(values), np.nan)
        return out
