"""Predictions of a fitted IARN: row-aligned pairs, the whole catalogue per query, and explanations.

The gates depend on the pair (eqs. 6, 8), so IARN re-encodes a user for every candidate item: scoring
the catalogue is one gated recurrence per side per (query, item). What does not depend on the pair is
computed once: each query's user side and each distinct item history (the bi-RNNs, H E(x_t) + b,
both halves of the fusion layer: network.encode_side); only the gates, the two gated recurrences and
the heads run per pair, in blocks of pairs (no Python loop per pair). The non-interacting backbones
(tagm, rnn, lstm) have per-user and per-item representations, so their catalogue is one product.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import tensorflow as tf
from keras import ops

from movierec.models.base import UserSequences
from movierec.models.iarn.history import EventHistory, gather_window
from movierec.models.iarn.network import IARN

PAIRS_PER_BLOCK = 4096  # row-aligned pairs per forward call (predict_ratings)
CELLS_PER_CALL = 1 << 25  # floats of gathered per-step tensors held at once by the catalogue scorer
QUERIES_PER_BLOCK = 64  # queries whose item histories are encoded together


class Predictor:
    """Compiled forward passes of `model` (inference mode: no dropout) over the histories of
    `sequences` (the training events), each side cut at `max_history`."""

    def __init__(self, model: IARN, sequences: UserSequences, max_history: int) -> None:
        self.model, self.max_history = model, max_history
        self.user_history = EventHistory.of_users(sequences)
        self.item_history = EventHistory.of_items(sequences, model.n_items)
        self._item_cache: tuple[np.ndarray, dict[str, Any], Any] | None = None

        @tf.function(reduce_retracing=True, autograph=False)
        def forward(inputs):
            return model.forward(inputs, training=False)

        @tf.function(reduce_retracing=True, autograph=False)
        def encode(side, others, ratings, owners):
            return model.encode_side(side, others, ratings, owners)

        @tf.function(reduce_retracing=True, autograph=False)
        def represent_side(side, encoded):
            return model.represent(side, model.last_state(side, encoded, model.gates(side, encoded)))

        @tf.function(reduce_retracing=True, autograph=False)
        def pairs(user, item, query_rows, item_rows):
            u = {name: tf.gather(tensor, query_rows) for name, tensor in user.items()}
            v = {name: tf.gather(tensor, item_rows) for name, tensor in item.items()}
            user_gates = model.gates("user", u, v.get("to_other"))
            item_gates = model.gates("item", v, u.get("to_other"))
            u_latent = model.represent("user", model.last_state("user", u, user_gates))
            v_latent = model.represent("item", model.last_state("item", v, item_gates))
            return ops.sum(u_latent * v_latent, axis=-1)  # eq. (1)

        self._forward, self._encode, self._represent, self._pairs = forward, encode, represent_side, pairs

    # -- histories -------------------------------------------------------------------------------------

    def _user_inputs(self, history: EventHistory, owners: np.ndarray, counts: np.ndarray) -> tuple:
        return gather_window(history, history.windows(owners, counts, self.max_history))

    def _item_inputs(self, items: np.ndarray, counts: np.ndarray) -> tuple:
        history = self.item_history
        return gather_window(history, history.windows(items, counts, self.max_history))

    def _counts(self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None) -> tuple:
        if timestamps is None:  # every training event
            return np.diff(self.user_history.indptr)[users], np.diff(self.item_history.indptr)[items]
        timestamps = np.asarray(timestamps, dtype=np.int64)
        return (
            self.user_history.counts_before(users, timestamps),
            self.item_history.counts_before(items, timestamps),
        )

    def _clip(self, ratings: np.ndarray) -> np.ndarray:
        bounds = self.model.rating_range
        return np.clip(ratings, *bounds).astype(np.float32) if bounds else ratings.astype(np.float32)

    # -- row-aligned pairs -----------------------------------------------------------------------------

    def raw_ratings(
        self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None
    ) -> np.ndarray:
        """Unclipped r̃ of each (user, item) from the training events strictly before its timestamp
        (all of them without timestamps)."""
        users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
        out = np.zeros(len(users), dtype=np.float32)
        for start in range(0, len(users), PAIRS_PER_BLOCK):
            block = slice(start, start + PAIRS_PER_BLOCK)
            stamps = None if timestamps is None else np.asarray(timestamps)[block]
            user_counts, item_counts = self._counts(users[block], items[block], stamps)
            rating, _, _ = self._forward(self._inputs(users[block], items[block], user_counts, item_counts))
            out[block] = ops.convert_to_numpy(rating)
        return out

    def ratings(
        self, users: np.ndarray, items: np.ndarray, timestamps: np.ndarray | None = None
    ) -> np.ndarray:
        """`raw_ratings` clipped to the training scale (for RMSE/MAE)."""
        return self._clip(self.raw_ratings(users, items, timestamps))

    def _inputs(self, users, items, user_counts, item_counts) -> dict[str, np.ndarray]:
        user_items, user_ratings = self._user_inputs(self.user_history, users, user_counts)
        item_users, item_ratings = self._item_inputs(items, item_counts)
        return {
            "user_items": user_items,
            "user_ratings": user_ratings,
            "item_users": item_users,
            "item_ratings": item_ratings,
            "items": np.asarray(items, np.int32),
        }

    def explain(self, user: int, item: int, timestamp: int | None = None) -> dict[str, Any]:
        """Both histories of one pair with each event's gate, and the predicted rating (see
        IARNRecommender.explain)."""
        users, items = np.array([user], np.int64), np.array([item], np.int64)
        stamps = None if timestamp is None else np.array([timestamp], np.int64)
        user_counts, item_counts = self._counts(users, items, stamps)
        rating, user_gates, item_gates = self._forward(self._inputs(users, items, user_counts, item_counts))
        raw = float(ops.convert_to_numpy(rating)[0])
        sides = {}
        for side, history, owner, count, gates in (
            ("user", self.user_history, users, user_counts, user_gates),
            ("item", self.item_history, items, item_counts, item_gates),
        ):
            rows = history.windows(owner, count, self.max_history)[0]
            rows = rows[rows >= 0]
            sides[side] = {
                "others": history.others[rows].astype(np.int64),
                "ratings": history.ratings[rows].astype(np.float32),
                "timestamps": history.timestamps[rows].astype(np.int64),
                # scalar gates exist only with attention (iarn, tagm); rnn and lstm have none
                "gates": ops.convert_to_numpy(gates)[0, : len(rows)].astype(np.float32)
                if self.model.attention
                else None,
            }
        return {"raw_rating": raw, "rating": float(self._clip(np.array([raw]))[0]), **sides}

    # -- the whole catalogue ---------------------------------------------------------------------------

    def _encode_items(self, keys: np.ndarray, n_counts: int) -> dict[str, Any]:
        items, counts = keys // n_counts, keys % n_counts
        item_users, item_ratings = self._item_inputs(items, counts)
        return self._encode("item", item_users, item_ratings, items.astype(np.int32))

    def catalogue(
        self, history: EventHistory, owners: np.ndarray, counts: np.ndarray, times: np.ndarray
    ) -> np.ndarray:
        """[q, n_items] unclipped predicted ratings: query k's user side is the first `counts[k]`
        events of owner `owners[k]` of `history`, each item's side its training raters strictly before
        `times[k]`."""
        model, n = self.model, self.model.n_items
        out = np.zeros((len(owners), n), dtype=np.float32)
        catalogue = np.arange(n, dtype=np.int64)
        n_counts = int(np.diff(self.item_history.indptr).max(initial=0)) + 1
        for start in range(0, len(owners), QUERIES_PER_BLOCK):
            block = slice(start, start + QUERIES_PER_BLOCK)
            q = len(owners[block])
            item_counts = self.item_history.counts_before(
                np.tile(catalogue, q), np.repeat(np.asarray(times[block], np.int64), n)
            )
            keys, inverse = np.unique(np.tile(catalogue, q) * n_counts + item_counts, return_inverse=True)
            item = self._cached_items(keys, n_counts)
            user_items, user_ratings = self._user_inputs(history, owners[block], counts[block])
            user = self._encode("user", user_items, user_ratings, np.zeros(q, np.int32))
            item_rows = inverse.reshape(q, n)
            if not model.interacting:  # per-user and per-item representations: one product
                u_latent = self._represent("user", user)
                v_latent = tf.gather(self._item_cache[2], item_rows)  # [q, n, latent]
                out[block] = ops.convert_to_numpy(ops.einsum("qd,qnd->qn", u_latent, v_latent))
                continue
            out[block] = self._pair_block(user, item, item_rows)
        return out

    def _cached_items(self, keys: np.ndarray, n_counts: int) -> dict[str, Any]:
        """The encoded item histories of `keys` (item × n_counts + count), reused while the keys are
        the same (every query after the training period sees the same item histories)."""
        if self._item_cache is None or not np.array_equal(self._item_cache[0], keys):
            encoded = self._encode_items(keys, n_counts)
            represented = None if self.model.interacting else self._represent("item", encoded)
            self._item_cache = (keys, encoded, represented)
        return self._item_cache[1]

    def _pair_block(self, user: dict[str, Any], item: dict[str, Any], item_rows: np.ndarray) -> np.ndarray:
        q, n = item_rows.shape
        steps = int(user["own"].shape[1]) + int(item["own"].shape[1])
        per_pair = steps * (self.model.hidden_size + self.model.attention_units)
        size = max(256, CELLS_PER_CALL // max(per_pair, 1))
        query_rows = np.repeat(np.arange(q, dtype=np.int32), n)
        flat_items = item_rows.reshape(-1).astype(np.int32)
        out = np.zeros(q * n, dtype=np.float32)
        for start in range(0, q * n, size):
            block = slice(start, start + size)
            out[block] = ops.convert_to_numpy(self._pairs(user, item, query_rows[block], flat_items[block]))
        return out.reshape(q, n)
