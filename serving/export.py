"""SavedModels that TF Serving loads: raw ids in, top-K item ids and scores out.

The export is a plain `tf.Module` that holds the Keras 3 scoring model and, next to it, the
tensorflow-transform layer (a tf_keras object: it is attached to the module, never mixed into Keras 3
layers). Signatures:
- `serving_default(examples)`: serialized tf.Example strings, each with `item_ids` — the user's or
  session's items so far, oldest first, raw ids. Returns `item_ids` [B, K] (raw ids) and `scores`.
  Items already in the history are not recommended.
- `transform_features(examples)`: interaction Examples → the Transform outputs (for the Evaluator and
  for checking training/serving skew).
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import keras
import numpy as np
import tensorflow as tf

DEFAULT_TOP_K = 100
HISTORY_LENGTH = 200  # latest events fed to sequence models at serving time


@runtime_checkable
class HistoryScorable(Protocol):
    """Models that score the catalogue from a history of item indices (GRU4Rec and later models)."""

    def history_scorer(self) -> keras.Model:
        """Keras 3 model: int32 item indices [B, T] (oldest first, left-padded with -1) → scores [B, n]."""
        ...


class ServingModule(tf.Module):
    def __init__(self, scorer: keras.Model, transform_output, item_vocabulary: np.ndarray, top_k: int):
        super().__init__()
        self.scorer = scorer
        self.tft_layer = transform_output.transform_features_layer()
        self.item_vocabulary = tf.constant(item_vocabulary.astype(object).astype(bytes))
        self.n_items = len(item_vocabulary)
        self.top_k = min(top_k, self.n_items)
        self._raw_feature_spec = transform_output.raw_feature_spec()

    def history_indices(self, item_ids: tf.RaggedTensor) -> tf.Tensor:
        """Raw item ids → Transform's indices, unknown items dropped, latest HISTORY_LENGTH kept."""
        flat = self.tft_layer({"item_id": tf.reshape(item_ids.flat_values, [-1, 1])})["item_index"]
        indices = item_ids.with_flat_values(tf.cast(tf.reshape(flat, [-1]), tf.int32))
        known = tf.ragged.boolean_mask(indices, indices < self.n_items)  # the OOV bucket is n_items
        latest = known[:, -HISTORY_LENGTH:]
        # left-pad with -1 so the latest event is always the last column
        reversed_padded = tf.reverse(latest, axis=[1]).to_tensor(
            default_value=-1, shape=[None, HISTORY_LENGTH]
        )
        return tf.reverse(reversed_padded, axis=[1])

    def seen_mask(self, history: tf.Tensor) -> tf.Tensor:
        """[B, n_items] True where the item is in the row's history (without a B × T × n one-hot)."""
        pairs = tf.where(history >= 0)
        items = tf.gather_nd(history, pairs)
        coordinates = tf.stack([pairs[:, 0], tf.cast(items, tf.int64)], axis=1)
        shape = tf.cast(tf.stack([tf.shape(history)[0], self.n_items]), tf.int64)
        return tf.scatter_nd(coordinates, tf.ones_like(items), shape) > 0

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(self, examples):
        parsed = tf.io.parse_example(examples, {"item_ids": tf.io.RaggedFeature(tf.string)})
        history = self.history_indices(parsed["item_ids"])
        scores = tf.cast(self.scorer(history), tf.float32)
        scores = tf.where(self.seen_mask(history), tf.fill(tf.shape(scores), -np.inf), scores)
        values, indices = tf.math.top_k(scores, k=self.top_k)
        return {"item_ids": tf.gather(self.item_vocabulary, indices), "scores": values}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(self, examples):
        parsed = tf.io.parse_example(examples, self._raw_feature_spec)
        return self.tft_layer(parsed)


def export_for_serving(
    model, transform_output, item_vocabulary: np.ndarray, export_dir: str, top_k: int = DEFAULT_TOP_K
) -> bool:
    """Writes the SavedModel; returns False (and writes nothing) for models that cannot be served
    from a history yet (e.g. user-id baselines), so the pipeline never pushes a half export."""
    if not isinstance(model, HistoryScorable):
        return False
    module = ServingModule(model.history_scorer(), transform_output, item_vocabulary, top_k)
    tf.saved_model.save(
        module,
        export_dir,
        signatures={"serving_default": module.serve, "transform_features": module.transform_features},
    )
    return True
