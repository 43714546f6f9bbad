"""One GRU step as TensorFlow's fused `GRUBlockCell` kernel (CPU and GPU), for inference loops.

On a CPU a short served history costs the number of small ops per step, not arithmetic: the cell's
nine ops of eq. (1)–(4) (`SessionGRUCell.recur`) become one kernel. `GRUBlockCell` computes
r, u = σ([x, h] W_ru + b_ru), c = tanh([x, r ⊙ h] W_c + b_c), h' = u ⊙ h + (1 − u) ⊙ c. Fed the
cell's input projection x = [W_z; W_r; W] x_t + b [B, 3H] (bias included), the weights below select
its parts and add the recurrent products, with u = σ(−(W_z x_t + U_z h)) = 1 − z so that h' is
eq. (1) of Hidasi et al. 2016. Keras has no fused GRU cell op, and the models run on the TensorFlow
backend only, hence `tf.raw_ops` here (and only here).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import tensorflow as tf


class FusedGRUWeights(NamedTuple):
    w_ru: Any  # [3H + H, 2H]: rows x_z, x_r, x_c, h → columns r_bar, u_bar
    w_c: Any  # [3H + H, H]: rows x_z, x_r, x_c, r ⊙ h → c_bar
    b_ru: Any  # zeros [2H]: the bias is in the projection
    b_c: Any  # zeros [H]


def fused_weights(recurrent_kernel) -> FusedGRUWeights:
    """`SessionGRUCell.recurrent_kernel` [H, 3H] ([U_z, U_r, U]) → the fused step's weights."""
    kernel = tf.convert_to_tensor(recurrent_kernel)
    h = kernel.shape[0]
    eye, zero = tf.eye(h, dtype=kernel.dtype), tf.zeros((h, h), kernel.dtype)
    u_z, u_r, u = kernel[:, :h], kernel[:, h : 2 * h], kernel[:, 2 * h :]
    w_ru = tf.concat(
        [
            tf.concat([zero, -eye], axis=1),  # x_z → u_bar = −(W_z x + b_z) …   eq. (2), negated
            tf.concat([eye, zero], axis=1),  # x_r → r_bar = W_r x + b_r …        eq. (4)
            tf.concat([zero, zero], axis=1),  # x_c
            tf.concat([u_r, -u_z], axis=1),  # h → … + U_r h, … − U_z h
        ],
        axis=0,
    )
    w_c = tf.concat([zero, zero, eye, u], axis=0)  # W x + b + U (r ⊙ h): eq. (3)
    return FusedGRUWeights(w_ru, w_c, tf.zeros([2 * h], kernel.dtype), tf.zeros([h], kernel.dtype))


def fused_step(projected, state, weights: FusedGRUWeights) -> Any:
    """projected [B, 3H] (bias included), state h_{t−1} [B, H] → h_t [B, H], eq. (1)–(4)."""
    return tf.raw_ops.GRUBlockCell(
        x=projected, h_prev=state, w_ru=weights.w_ru, w_c=weights.w_c, b_ru=weights.b_ru, b_c=weights.b_c
    )[3]


def at_step(sequence, t) -> Any:
    """sequence [T, …] at loop index t: one gather (`keras.ops.take` adds a negative-index fix-up and
    a strided slice at a loop index adds three ops, per step)."""
    return tf.gather(sequence, t)
