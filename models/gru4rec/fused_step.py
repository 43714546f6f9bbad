"""One GRU step as TensorFlow's fused `GRUBlockCell` kernel (CPU and GPU), for inference loops.

On a CPU a short served history costs the number of small ops per step, not arithmetic: the cell's
nine ops of eq. (1)–(4) (`SessionGRUCell.recur`) become one kernel. `GRUBlockCell` computes
r, u = σ([x, h] W_ru + b_ru), c = tanh([x, r ⊙ h] W_c + b_c), h' = u ⊙ h + (1 − u) ⊙ c. With the
cell's input kernel [K_z, K_r, K], recurrent kernel [U_z, U_r, U] and bias [b_z, b_r, b]:
W_ru = [[K_r, −K_z]; [U_r, −U_z]], b_ru = [b_r, −b_z] gives r = eq. (4) and u = σ(−(K_z x + U_z h +
b_z)) = 1 − z, so h' is eq. (1); W_c = [K; U], b_c = b gives eq. (3) (Hidasi et al. 2016). The same
multiply-adds as the cell's, except for the 1-of-N input, whose identity input kernel adds a
[3H × 3H] product per step (`GRU4Rec.fused_layers`). Keras has no fused GRU cell op, and the models
run on the TensorFlow backend only, hence `tf.raw_ops` here (and only here).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import tensorflow as tf


class FusedGRUWeights(NamedTuple):
    w_ru: Any  # [D + H, 2H]: rows x, h → columns r_bar, u_bar
    w_c: Any  # [D + H, H]: rows x, r ⊙ h → c_bar
    b_ru: Any  # [2H]
    b_c: Any  # [H]


def fused_weights(input_kernel, recurrent_kernel, bias) -> FusedGRUWeights:
    """A `SessionGRUCell`'s input kernel [D, 3H], recurrent kernel [H, 3H] and bias [3H] (each
    ordered z, r, candidate) → the fused step's weights for inputs x [B, D]."""
    kernel, recurrent = tf.convert_to_tensor(input_kernel), tf.convert_to_tensor(recurrent_kernel)
    bias = tf.convert_to_tensor(bias)
    h = recurrent.shape[0]
    k_z, k_r, k = kernel[:, :h], kernel[:, h : 2 * h], kernel[:, 2 * h :]
    u_z, u_r, u = recurrent[:, :h], recurrent[:, h : 2 * h], recurrent[:, 2 * h :]
    w_ru = tf.concat([tf.concat([k_r, -k_z], axis=1), tf.concat([u_r, -u_z], axis=1)], axis=0)
    b_ru = tf.concat([bias[h : 2 * h], -bias[:h]], axis=0)
    return FusedGRUWeights(w_ru, tf.concat([k, u], axis=0), b_ru, bias[2 * h :])


def read_once(weights: FusedGRUWeights) -> FusedGRUWeights:
    """Variables read into tensors before a loop (a variable used in a loop body is read at every
    use, every step)."""
    return FusedGRUWeights(*(tf.convert_to_tensor(w) for w in weights))


def fused_step(x, state, weights: FusedGRUWeights) -> Any:
    """x [B, D] (the input the weights were made for), state h_{t−1} [B, H] → h_t [B, H], eq. (1)–(4)."""
    return tf.raw_ops.GRUBlockCell(
        x=x, h_prev=state, w_ru=weights.w_ru, w_c=weights.w_c, b_ru=weights.b_ru, b_c=weights.b_c
    )[3]


def at_step(sequence, t) -> Any:
    """sequence [T, …] at loop index t: one gather (`keras.ops.take` adds a negative-index fix-up and
    a strided slice at a loop index adds three ops, per step)."""
    return tf.gather(sequence, t)
