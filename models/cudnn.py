"""Masks that keep Keras' `LSTM`/`GRU` layers on their cuDNN path on a GPU, with unchanged math.

With the TensorFlow backend on a GPU, Keras 3 runs `keras.layers.LSTM`/`GRU` as one cuDNN kernel when
the layer's configuration allows it (tanh, sigmoid, a bias, no unroll, no recurrent dropout; GRU
reset_after) and the mask is strictly right-padded with at least one real step in every row. The last
two are asserted inside the graph (keras/src/backend/tensorflow/rnn.py `_assert_valid_mask`): in a
compiled train step a row without any step, such as an empty history, fails the step on a GPU rather
than falling back. CPUs never take that path, so no CPU test would notice.

`nonempty_mask` switches on the first step of rows that have none, and `zero_empty` puts back the
result those rows have without it (the zero initial state, left unchanged by a fully masked row), so
the layer's values and gradients are what they were on every device.
"""

from __future__ import annotations

from typing import Any

from keras import ops


def nonempty_mask(mask: Any) -> tuple[Any, Any]:
    """(`mask` [B, T] with step 0 switched on in rows without a real step, which rows had one [B]).

    Args:
        mask: bool [B, T], True on real steps, right-padded.
    """
    mask = ops.cast(mask, "bool")
    has_steps = ops.any(mask, axis=1)
    first = ops.expand_dims(ops.arange(ops.shape(mask)[1]) == 0, 0)  # [1, T]
    empty = ops.expand_dims(ops.logical_not(has_steps), 1)  # [B, 1]
    return ops.logical_or(mask, ops.logical_and(empty, first)), has_steps


def zero_empty(has_steps: Any, value: Any) -> Any:
    """`value` [B, ...] with the rows that had no real step zeroed (their state without the fake step).

    Args:
        has_steps: bool [B], from `nonempty_mask`.
        value: a state or output of the recurrent layer, batch first.
    """
    keep = ops.reshape(has_steps, (-1,) + (1,) * (len(value.shape) - 1))
    return ops.where(keep, value, ops.zeros_like(value))
