"""Transform module file: `preprocessing_fn` for interaction Examples (tensorflow-transform on Beam).

Vocabularies are computed on the train split only, with one OOV bucket each, so serving maps ids the
model never saw to a known index. Optional side features are transformed where the dataset has them.
"""

from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft

SECONDS_PER_DAY = 86_400
VOCABULARIES = {"user_id": "user_index", "item_id": "item_index"}


def _dense(tensor: tf.Tensor | tf.SparseTensor, default) -> tf.Tensor:
    """A [batch] tensor from a feature that is [batch], [batch, 1] or sparse with at most one value."""
    if isinstance(tensor, tf.SparseTensor):
        tensor = tf.sparse.to_dense(
            tf.sparse.reset_shape(tensor, [tf.shape(tensor, out_type=tf.int64)[0], 1]), default_value=default
        )
    return tf.reshape(tensor, [-1])


def preprocessing_fn(inputs: dict) -> dict:
    outputs = {}
    for raw, transformed in VOCABULARIES.items():
        outputs[transformed] = tft.compute_and_apply_vocabulary(
            _dense(inputs[raw], ""), num_oov_buckets=1, vocab_filename=raw
        )
    rating = tf.cast(_dense(inputs["rating"], 0.0), tf.float32)
    outputs["rating"] = rating
    outputs["rating_scaled"] = tft.scale_to_z_score(rating)

    timestamp = tf.cast(_dense(inputs["timestamp"], 0), tf.int64)
    days = timestamp // SECONDS_PER_DAY
    outputs["day_of_week"] = (days + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
    outputs["hour_of_day"] = (timestamp // 3600) % 24
    outputs["time_scaled"] = tft.scale_to_0_1(tf.cast(timestamp, tf.float32))

    if "genres" in inputs:
        genres = inputs["genres"]
        if not isinstance(genres, tf.SparseTensor):
            genres = tf.sparse.from_dense(tf.reshape(genres, [tf.shape(genres)[0], -1]))
        outputs["genre_index"] = tft.compute_and_apply_vocabulary(
            genres, num_oov_buckets=1, vocab_filename="genre"
        )
    if "title" in inputs:
        title = tf.strings.lower(_dense(inputs["title"], ""))
        words = tf.strings.split(tf.strings.regex_replace(title, r"[^a-z0-9']+", " "))
        outputs["title_token_index"] = tft.compute_and_apply_vocabulary(
            words.to_sparse(), num_oov_buckets=1, vocab_filename="title_token"
        )
    return outputs
