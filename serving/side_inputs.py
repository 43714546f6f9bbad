"""Transform's side-feature outputs → the ids a model embeds (`movierec.models.base.SideFeatures`).

One set of TF functions, used twice: by the Trainer, over the transform graph's outputs for the
training movies and users (`movierec.components.side_tables`), and inside the exports, over the same
graph's outputs for a request's raw strings. So a title is encoded identically in both.

Transform (pipeline/modules/transform.py) pads with -1 and puts an unknown value in the OOV bucket
(index == vocabulary size); SideFeatures keeps 0 for padding/unknown and, for title words, 1 for OOV.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

# SideFeatures column → (Transform output, Transform vocabulary)
ITEM_INPUTS = {
    "item_genres": ("genre_index", "genre"),
    "item_title_words": ("title_word_index", "title_word"),
}
USER_INPUTS = {
    "user_gender": ("gender_index", "gender"),
    "user_age_band": ("age_band_index", "age_band"),
    "user_occupation": ("occupation_index", "occupation"),
}
TITLE_SPECIAL = ("<pad>", "<oov>")
UNKNOWN = "<unknown>"


def title_word_ids(index: tf.Tensor, vocabulary_size: int) -> tf.Tensor:
    """[n, T] Transform word indices → int32 ids: 0 padding, 1 OOV, 2 + the vocabulary index."""
    index = tf.cast(index, tf.int64)
    oov = tf.ones_like(index)
    ids = tf.where(index < 0, tf.zeros_like(index), tf.where(index >= vocabulary_size, oov, index + 2))
    return tf.cast(ids, tf.int32)


def genre_multi_hot(index: tf.Tensor, n_genres: int) -> tf.Tensor:
    """[n, slots] Transform genre indices → float32 [n, n_genres] multi-hot (OOV genres dropped)."""
    index = tf.cast(index, tf.int64)
    valid = (index >= 0) & (index < n_genres)
    hot = tf.one_hot(tf.where(valid, index, n_genres), n_genres + 1, dtype=tf.float32)[..., :n_genres]
    return tf.minimum(tf.reduce_sum(hot, axis=-2), 1.0)


def field_ids(index: tf.Tensor, vocabulary_size: int) -> tf.Tensor:
    """[n] Transform indices of a user field → int32 ids: 0 unknown (missing or OOV), 1 + index."""
    index = tf.cast(index, tf.int64)
    known = (index >= 0) & (index < vocabulary_size)
    return tf.cast(tf.where(known, index + 1, tf.zeros_like(index)), tf.int32)


def optional_features_spec(raw_spec: dict, names: tuple[str, ...]) -> dict:
    """Parse specs of the raw features `names` that `raw_spec` (Transform's) has; a fixed-length
    feature gets a default, so an Example without it (a known movie needs no title) still parses."""
    spec = {}
    for name in names:
        feature = raw_spec.get(name)
        if isinstance(feature, tf.io.FixedLenFeature):
            default = "" if feature.dtype == tf.string else 0
            size = int(np.prod(feature.shape))
            feature = tf.io.FixedLenFeature(feature.shape, feature.dtype, [default] * size)
        if feature is not None:
            spec[name] = feature
    return spec
