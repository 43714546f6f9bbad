"""RRN inside a serving graph: ratings, fallbacks, event checks and §4.5's state update as TF ops.

`models/rrn/state.py` checks and feeds events with numpy (`group_steps`, then `RRN.advance` per chunk
of entities). A SavedModel cannot call numpy, so `RRNGraph` does the same with TensorFlow ops on the
model's own state variables (the non-trainable `EntityStates` of `RRN`; a weight is never written):

- `check`: the reason of every event, in `state.REASONS` order (the first that applies), against the
  states as they were before the request — exactly `state.check_events`;
- `feed`: per side, the accepted events sorted as `steps.group_steps` sorts them (entity, step,
  timestamp, other side), one row per (entity, step) with its rating sum and count, and each row's
  rank among its entity's new steps. A `tf.while_loop` over the ranks (0, 1, …: every entity's first
  new step, then its second, …) runs one LSTM step per entity and iteration (`RRN.step_state`) and
  scatters the new states into the variables. Entities are independent, so this equals `advance`'s
  padded scan; a first step equal to the stored last step re-runs it from the state before it with the
  merged rating vector, as `advance` does. The iterations are the most new steps of any one entity in
  the request, not the number of entities or events.

Ids the vocabularies lack get `fallback`'s rating (μ + the known sides' biases) and, in `recommend`,
`population_scores`; the export reports them in `unknown_ids` (`rating_export`).

Numerically the states equal `RRNRecommender.update_state`'s up to float32 rounding (the matmuls run
on differently shaped batches); the tests compare them.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from movierec.models.rrn.network import NO_STEP, RRN, SIDES
from movierec.models.rrn.state import (
    BAD_RATING,
    EARLIER_THAN_MOVIE,
    EARLIER_THAN_USER,
    FUTURE_SLACK_SECONDS,
    IN_THE_FUTURE,
    REASONS,
    UNKNOWN_ITEM,
    UNKNOWN_USER,
)
from movierec.serving.graph_ops import tf_variable


def _shifted(values: tf.Tensor, fill) -> tf.Tensor:
    """values moved one place to the right with `fill` in front: [fill, v0, …, v_{n−2}] (n may be 0)."""
    return tf.concat([tf.fill([1], tf.cast(fill, values.dtype)), values], axis=0)[: tf.size(values)]


def lexsort(keys: list[tf.Tensor]) -> tf.Tensor:
    """numpy's `lexsort` in graph ops: the permutation that sorts by the last key, then the one before
    it, …; stable sorts from the least significant key up."""
    order = tf.range(tf.size(keys[0]))
    for key in keys:
        order = tf.gather(order, tf.argsort(tf.gather(key, order), stable=True))
    return order


class RRNGraph:
    """The graph-side view of a fitted `RRN` that the rating export needs (see the module)."""

    request_features = ()  # `predict_rating` reads the ids and the time only

    def __init__(self, model: RRN):
        self.model = model
        self.n_users, self.n_items = model.n_users, model.n_items
        self.rating_range = model.rating_range
        self.states = {
            side: {name: tf_variable(v) for name, v in model.states(side).fields.items()} for side in SIDES
        }
        stationary = model.stationary
        self._user_bias = tf_variable(stationary.user_bias.embeddings)
        self._item_bias = tf_variable(stationary.item_bias.embeddings)

    # -- prediction --------------------------------------------------------------------------------

    def now(self) -> tf.Tensor:
        """The latest event time any state has read (0 for none): `RRNRecommender.now()`, int64 []."""
        latest = tf.maximum(
            tf.reduce_max(self.states["user"]["last_time"]), tf.reduce_max(self.states["movie"]["last_time"])
        )
        return tf.where(tf.equal(latest, NO_STEP), tf.constant(0, tf.int64), latest)

    def clip(self, ratings: tf.Tensor) -> tf.Tensor:
        return tf.clip_by_value(ratings, *self.rating_range) if self.rating_range else ratings

    def predict(self, users: tf.Tensor, items: tf.Tensor, timestamps: tf.Tensor) -> tf.Tensor:
        """`RRN.predict_ratings` for known indices: [n] float32."""
        return tf.cast(self.model.predict_ratings(users, items, timestamps), tf.float32)

    def fallback(
        self, users: tf.Tensor, items: tf.Tensor, user_known: tf.Tensor, item_known: tf.Tensor
    ) -> tf.Tensor:
        """μ + b_u (if the user is known) + b_i (if the item is known), clipped: the rating of an
        unknown user or item. The dynamic part ⟨ũ, m̃⟩ and the stationary ⟨u_i, m_j⟩ need both sides'
        vectors, so neither applies when one side is unknown. `users`/`items` must be valid indices
        (any, e.g. 0, where unknown)."""
        user_bias = tf.gather(self._user_bias, users)[:, 0] * tf.cast(user_known, tf.float32)
        item_bias = tf.gather(self._item_bias, items)[:, 0] * tf.cast(item_known, tf.float32)
        return self.clip(self.model.global_mean + user_bias + item_bias)

    def ratings(
        self,
        users: tf.Tensor,
        items: tf.Tensor,
        timestamps: tf.Tensor,
        user_known: tf.Tensor,
        item_known: tf.Tensor,
        side: dict[str, tf.Tensor],
    ) -> tf.Tensor:
        """`predict` where both ids are known, else `fallback` ([n]; `side` is unused)."""
        del side
        full = self.predict(users, items, timestamps)
        return tf.where(user_known & item_known, full, self.fallback(users, items, user_known, item_known))

    def population_scores(self) -> tf.Tensor:
        """μ + b_i of every item (unclipped, a ranking): for users the model does not know, [n_items]."""
        return self.model.global_mean + self._item_bias[:, 0]

    def score_all(self, users: tf.Tensor, timestamp: tf.Tensor) -> tf.Tensor:
        """Predicted ratings of the whole catalogue for known `users` at one time, [B, n_items]."""
        return tf.cast(self.model.score_all_at(users, timestamp), tf.float32)

    # -- §4.5 state updates ----------------------------------------------------------------------------

    def check(
        self,
        users: tf.Tensor,
        items: tf.Tensor,
        ratings: tf.Tensor,
        timestamps: tf.Tensor,
        user_known: tf.Tensor,
        item_known: tf.Tensor,
    ) -> tf.Tensor:
        """The rejection reason of every event as an index into `state.REASONS`, −1 where acceptable
        (`state.check_events`). Timestamps arrive as int64, so "timestamp missing or not an integer"
        cannot occur here. `users`/`items` must be valid indices where known."""
        low, high = self.rating_range if self.rating_range else (-np.inf, np.inf)
        rating_ok = tf.math.is_finite(ratings) & (ratings >= low) & (ratings <= high)
        user_time = tf.gather(self.states["user"]["last_time"], users)
        movie_time = tf.gather(self.states["movie"]["last_time"], items)
        bad = {
            UNKNOWN_USER: ~user_known,
            UNKNOWN_ITEM: ~item_known,
            BAD_RATING: ~rating_ok,
            EARLIER_THAN_USER: timestamps < user_time,
            EARLIER_THAN_MOVIE: timestamps < movie_time,
            IN_THE_FUTURE: timestamps > tf.cast(tf.timestamp(), tf.int64) + FUTURE_SLACK_SECONDS,
        }
        reason = tf.fill(tf.shape(users), tf.constant(-1, tf.int32))
        for name in reversed(REASONS):  # the first reason that applies wins
            if name in bad:
                reason = tf.where(bad[name], tf.constant(REASONS.index(name), tf.int32), reason)
        return reason

    def feed(self, users: tf.Tensor, items: tf.Tensor, ratings: tf.Tensor, timestamps: tf.Tensor) -> None:
        """Feeds acceptable events (known int64 indices, not earlier than the states) into both sides'
        states, as `state.feed_events` does (see the module)."""
        self._feed_side("user", users, items, ratings, timestamps)
        self._feed_side("movie", items, users, ratings, timestamps)

    def _feed_side(
        self, side: str, entity: tf.Tensor, other: tf.Tensor, ratings: tf.Tensor, timestamps: tf.Tensor
    ) -> None:
        model, states = self.model, self.states[side]
        steps = tf.math.floordiv(timestamps, model.granularity(side))
        order = lexsort([other, timestamps, steps, entity])  # group_steps' order
        entity, other, ratings, timestamps, steps = (
            tf.gather(t, order) for t in (entity, other, ratings, timestamps, steps)
        )
        # one row per (entity, step); rows of an entity in step order
        opens_row = tf.not_equal(entity, _shifted(entity, -1)) | tf.not_equal(steps, _shifted(steps, NO_STEP))
        event_row = tf.cumsum(tf.cast(opens_row, tf.int64)) - 1
        n_rows = tf.reduce_sum(tf.cast(opens_row, tf.int64))
        row_entity = tf.boolean_mask(entity, opens_row)
        row_step = tf.boolean_mask(steps, opens_row)
        opens_entity = tf.not_equal(row_entity, _shifted(row_entity, -1))
        row_group = tf.cumsum(tf.cast(opens_entity, tf.int64)) - 1
        row_position = tf.range(n_rows)
        rank = row_position - tf.gather(tf.boolean_mask(row_position, opens_entity), row_group)
        sums = model.network(side).rating_sums(event_row, other, ratings, n_rows)  # [R, D], unscaled
        counts = tf.math.unsorted_segment_sum(tf.ones_like(ratings), event_row, n_rows)  # [R]
        n_ranks = tf.reduce_max(tf.concat([rank + 1, [0]], axis=0))

        def feed_rank(k: tf.Tensor) -> tf.Tensor:
            rows = tf.reshape(tf.where(tf.equal(rank, k)), [-1])  # one row per entity
            e = tf.gather(row_entity, rows)
            s = tf.gather(row_step, rows)
            last = tf.gather(states["last_step"], e)
            merge = tf.equal(s, last)  # the step re-runs the stored last one with the merged ratings
            column = merge[:, None]
            step_sums = tf.gather(sums, rows)
            step_sums = tf.where(column, step_sums + tf.gather(states["carry_sum"], e), step_sums)
            step_counts = tf.gather(counts, rows)
            step_counts = tf.where(merge, step_counts + tf.gather(states["carry_count"], e), step_counts)
            h0 = tf.where(column, tf.gather(states["h_before"], e), tf.gather(states["h"], e))
            c0 = tf.where(column, tf.gather(states["c_before"], e), tf.gather(states["c"], e))
            prior = tf.where(merge, tf.gather(states["previous_step"], e), last)
            h1, c1 = model.step_state(side, h0, c0, step_sums, step_counts, s, prior)
            index = e[:, None]
            for name, value in (
                ("h", h1),
                ("c", c1),
                ("h_before", h0),
                ("c_before", c0),
                ("carry_sum", step_sums),
                ("carry_count", step_counts),
                ("last_step", s),
                ("previous_step", prior),
            ):
                states[name].scatter_nd_update(index, tf.cast(value, states[name].dtype))
            return k + 1

        tf.while_loop(lambda k: k < n_ranks, feed_rank, [tf.constant(0, tf.int64)])
        # the latest timestamp each entity has read: its last event in the sorted order (no segment
        # max: int64 segment reductions have no GPU kernel)
        opens_block = tf.not_equal(entity, _shifted(entity, -1))
        block_start = tf.boolean_mask(tf.range(tf.size(entity, out_type=tf.int64)), opens_block)
        n_blocks = tf.size(block_start)
        block_end = tf.concat([block_start[1:], tf.size(entity, out_type=tf.int64)[None]], 0)[:n_blocks] - 1
        entities = tf.gather(entity, block_start)
        latest = tf.gather(timestamps, block_end)
        states["last_time"].scatter_nd_update(
            entities[:, None], tf.maximum(tf.gather(states["last_time"], entities), latest)
        )

    def snapshot(self) -> dict[str, tf.Tensor]:
        """Every state variable's value, keyed "<side>_<field>" (for tests and offline checks)."""
        return {
            f"{side}_{name}": tf.identity(variable)
            for side in SIDES
            for name, variable in self.states[side].items()
        }
