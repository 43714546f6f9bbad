"""SavedModels that TF Serving loads: raw ids in, top-K item ids and scores out.

The export is a plain `tf.Module` that holds the Keras 3 scoring model and, next to it, the
tensorflow-transform layer (a tf_keras object: it is attached to the module, never mixed into Keras 3
layers). Signatures:
- `serving_default(examples)`: serialized tf.Example strings, each with `item_ids` — the user's or
  session's items so far, raw ids — and optionally `timestamps` (int64 seconds, one per item). With
  timestamps the history is read exactly as evaluation reads a user's stream: in time order, same-second
  events in the canonical order (by item index, `movierec.models.base.canonical_order`), sessions split
  at pauses longer than the model's session gap; without them the items are taken oldest first as sent,
  as one session. The model then applies its own context rule and history cap (`max_history`), so the
  served top-K equals the evaluated top-K for the same history. Returns `item_ids` [B, K] (raw ids) and
  `scores`; items anywhere in the history are never recommended.
- `transform_features(examples)`: interaction Examples → the Transform outputs (for the Evaluator and
  for checking training/serving skew).

Rating models with stored state (RRN, LSTM+CNN, IARN) have their own export,
`rating_export.export_rating_model` (`predict_rating`/`serving_default`, `recommend`; RRN's
`update_state`, IARN's `explain`); `export_for_serving` dispatches.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import keras
import numpy as np
import tensorflow as tf

from movierec.constants import DEFAULT_SESSION_GAP
from movierec.serving.rating_export import export_rating_model, rating_servable

DEFAULT_TOP_K = 100


@runtime_checkable
class HistoryScorable(Protocol):
    """Models that score the catalogue from a history of item indices (GRU4Rec and later models)."""

    def history_scorer(self) -> keras.Model:
        """Keras 3 model: {"items": int32 [B, T] item indices, oldest first, left-padded with -1;
        "session_start": bool [B, T], true where an event opens a session} → scores [B, n]. It applies
        the model's own context rule and history cap, as `score()` does in evaluation."""
        ...


class ServingModule(tf.Module):
    def __init__(
        self,
        scorer: keras.Model,
        transform_output,
        item_vocabulary: np.ndarray,
        top_k: int,
        session_gap: int = DEFAULT_SESSION_GAP,
    ):
        super().__init__()
        self.scorer = scorer
        self.tft_layer = transform_output.transform_features_layer()
        self.item_vocabulary = tf.constant(item_vocabulary.astype(object).astype(bytes))
        self.n_items = len(item_vocabulary)
        self.top_k = min(top_k, self.n_items)
        self.session_gap = int(session_gap)
        self._raw_feature_spec = transform_output.raw_feature_spec()

    def history(self, item_ids: tf.RaggedTensor, timestamps: tf.RaggedTensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Raw ids (+ optional timestamps) → (indices, session_start), both [B, T] left-padded (-1 /
        False) to the batch's longest known history: a short history never costs a long padding."""
        flat = self.tft_layer({"item_id": tf.reshape(item_ids.flat_values, [-1, 1])})["item_index"]
        index = tf.cast(tf.reshape(flat, [-1]), tf.int64)
        n_sent = item_ids.row_lengths()
        n_times = timestamps.row_lengths()
        tf.debugging.assert_equal(
            tf.logical_or(tf.equal(n_times, 0), tf.equal(n_times, n_sent)),
            True,
            message="request field 'timestamps': give none, or one per entry of 'item_ids'",
        )
        row = item_ids.value_rowids()
        with_times = tf.gather(n_times > 0, row)
        position = tf.range(tf.size(index, out_type=tf.int64)) - tf.gather(item_ids.row_starts(), row)
        # The rows with timestamps hold exactly one per item, so the k-th such item has the k-th
        # timestamp; without timestamps the request order is the time order (position stands in).
        padded_times = tf.concat([timestamps.flat_values, tf.zeros([1], tf.int64)], axis=0)
        nth_timed = tf.cumsum(tf.cast(with_times, tf.int64), exclusive=True)
        time_index = tf.where(with_times, nth_timed, tf.size(padded_times, tf.int64) - 1)
        time = tf.where(with_times, tf.gather(padded_times, time_index), position)
        known = index < self.n_items  # the OOV bucket is n_items: unknown ids are dropped
        row, index, time, with_times = (tf.boolean_mask(t, known) for t in (row, index, time, with_times))
        # canonical order: by row, then time, then item index (three stable sorts, last key first)
        order = tf.argsort(index, stable=True)
        order = tf.gather(order, tf.argsort(tf.gather(time, order), stable=True))
        order = tf.gather(order, tf.argsort(tf.gather(row, order), stable=True))
        row, index, time, with_times = (tf.gather(t, order) for t in (row, index, time, with_times))
        first_of_row = tf.concat([[True], row[1:] != row[:-1]], axis=0)
        pause = tf.concat([[False], time[1:] - time[:-1] > self.session_gap], axis=0)
        session_start = first_of_row | (with_times & pause)
        n_rows = tf.shape(item_ids.row_lengths(), out_type=tf.int64)[0]
        ragged_index = tf.RaggedTensor.from_value_rowids(tf.cast(index, tf.int32), row, nrows=n_rows)
        ragged_start = tf.RaggedTensor.from_value_rowids(session_start, row, nrows=n_rows)

        def left_padded(values: tf.RaggedTensor, fill) -> tf.Tensor:
            return tf.reverse(tf.reverse(values, axis=[1]).to_tensor(default_value=fill), axis=[1])

        return left_padded(ragged_index, -1), left_padded(ragged_start, False)

    def seen_mask(self, history: tf.Tensor) -> tf.Tensor:
        """[B, n_items] True where the item is in the row's history (without a B × T × n one-hot)."""
        pairs = tf.where(history >= 0)
        items = tf.gather_nd(history, pairs)
        coordinates = tf.stack([pairs[:, 0], tf.cast(items, tf.int64)], axis=1)
        shape = tf.cast(tf.stack([tf.shape(history)[0], self.n_items]), tf.int64)
        return tf.scatter_nd(coordinates, tf.ones_like(items), shape) > 0

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        parsed = tf.io.parse_example(
            examples,
            # int64 row partitions: `history` does its position arithmetic in int64 (default: int32)
            {
                "item_ids": tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64),
                "timestamps": tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64),
            },
        )
        history, session_start = self.history(parsed["item_ids"], parsed["timestamps"])
        scores = tf.cast(self.scorer({"items": history, "session_start": session_start}), tf.float32)
        scores = tf.where(self.seen_mask(history), tf.fill(tf.shape(scores), -np.inf), scores)
        values, indices = tf.math.top_k(scores, k=self.top_k)
        return {"item_ids": tf.gather(self.item_vocabulary, indices), "scores": values}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, examples):
        parsed = tf.io.parse_example(examples, self._raw_feature_spec)
        return self.tft_layer(parsed)


def export_for_serving(
    model,
    transform_output,
    item_vocabulary: np.ndarray,
    export_dir: str,
    top_k: int = DEFAULT_TOP_K,
    session_gap: int = DEFAULT_SESSION_GAP,
    user_vocabulary: np.ndarray | None = None,
    rated=None,
) -> bool:
    """Writes the SavedModel; returns False (and writes nothing) for models without a serving export
    (e.g. user-id baselines), so the pipeline never pushes a half export.

    - `HistoryScorable` models (GRU4Rec): `ServingModule`; `session_gap` must be the one the model was
      evaluated with.
    - rating models with a serving graph (RRN, LSTM+CNN, IARN; `rating_export.rating_servable`):
      `rating_export.export_rating_model`, which needs
      `user_vocabulary` (the raw ids of the model's user indices) and `rated` (the (user, item)
      indices of the training events, e.g. the Trainer's `TrainingData.sequences`: `recommend` never
      returns a rated item); a missing one is an error that names it."""
    if not isinstance(model, HistoryScorable):
        if rating_servable(model):
            return export_rating_model(
                model, transform_output, item_vocabulary, user_vocabulary, export_dir, rated=rated
            )
        return False
    module = ServingModule(model.history_scorer(), transform_output, item_vocabulary, top_k, session_gap)
    tf.saved_model.save(
        module,
        export_dir,
        signatures={"serving_default": module.serve, "transform_features": module.transform_features},
    )
    return True
