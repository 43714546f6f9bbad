"""Small TensorFlow helpers shared by the serving graphs (plain ops with CPU and GPU kernels)."""

from __future__ import annotations

import tensorflow as tf


def tf_variable(variable) -> tf.Variable:
    """The tf.Variable behind a Keras 3 variable (TensorFlow backend), for scatter updates: assigning
    a whole [n_users, H] state to change a few rows would cost O(n_users) per step."""
    inner = getattr(variable, "value", variable)
    if not isinstance(inner, tf.Variable):
        raise TypeError(f"expected a TensorFlow-backed variable, got {type(inner).__name__}")
    return inner


def first_values(values: tf.RaggedTensor, default) -> tf.Tensor:
    """Each row's first value, `default` where the row is empty: [B] (plain gathers, no ragged op)."""
    starts, ends = values.row_splits[:-1], values.row_splits[1:]
    flat = values.flat_values
    padded = tf.concat([flat, tf.fill([1], tf.cast(default, flat.dtype))], axis=0)
    return tf.gather(padded, tf.where(ends > starts, starts, tf.size(flat, out_type=tf.int64)))


def csr_rows(indptr: tf.Tensor, values: tf.Tensor, rows: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """(query position, value) of every value of CSR rows `rows` [B] (int64): ragged gathers written
    with plain ops (no RaggedRange, which has no GPU kernel)."""
    starts = tf.gather(indptr, rows)
    lengths = tf.gather(indptr, rows + 1) - starts
    position = tf.repeat(tf.range(tf.size(rows, out_type=tf.int64)), lengths)
    offset = tf.range(tf.reduce_sum(lengths)) - tf.gather(tf.cumsum(lengths, exclusive=True), position)
    return position, tf.gather(values, tf.gather(starts, position) + offset)
