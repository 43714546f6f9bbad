"""Ranking losses over a score matrix whose row b scores its target (column `target[b]`) against
negatives (every other column unless `negative_mask` says otherwise).

`negative_mask` [B, C] is 0/1, or a column's multiplicity: how many candidates it stands for (GRU4Rec
scores the whole catalogue when the catalogue is no larger than its candidate list, and an item drawn
k times is one column of weight k). Every loss equals its value over the candidate list with the
column repeated k times; with 0/1 masks the arithmetic is exactly that of a plain mask.

One implementation serves BPR-MF (a positive column plus sampled negatives) and GRU4Rec (mini-batch
negatives: the other rows' targets, plus optional extra sampled items). Written with keras.ops so
they run on any Keras 3 backend. Equations: Hidasi et al., ICLR 2016, section 3.1.2 (BPR, TOP1) and
Hidasi & Karatzoglou, CIKM 2018, section 3 (BPR-max).
"""

from __future__ import annotations

from collections.abc import Callable

import keras
from keras import ops


def _target_scores(scores, target):
    return ops.take_along_axis(scores, ops.expand_dims(ops.cast(target, "int32"), -1), axis=1)


def _negatives(scores, target, negative_mask):
    """Float mask of the columns that act as negatives for each row (never the target itself)."""
    n_columns = ops.shape(scores)[1]
    not_target = 1.0 - ops.one_hot(ops.cast(target, "int32"), n_columns, dtype=scores.dtype)
    if negative_mask is None:
        return not_target
    return not_target * ops.cast(negative_mask, scores.dtype)


def _masked_mean(values, mask):
    return ops.sum(values * mask, axis=1) / ops.maximum(ops.sum(mask, axis=1), 1.0)


def bpr_loss(scores, target, negative_mask=None):
    """BPR: -1/N_S Σ_j log σ(r_i − r_j)   (Hidasi et al. 2016, eq. in §3.1.2)."""
    mask = _negatives(scores, target, negative_mask)
    return _masked_mean(-ops.log_sigmoid(_target_scores(scores, target) - scores), mask)


def top1_loss(scores, target, negative_mask=None):
    """TOP1: 1/N_S Σ_j σ(r_j − r_i) + σ(r_j²)   (Hidasi et al. 2016, §3.1.2)."""
    mask = _negatives(scores, target, negative_mask)
    values = ops.sigmoid(scores - _target_scores(scores, target)) + ops.sigmoid(ops.square(scores))
    return _masked_mean(values, mask)


def _weighted_logits(scores, weights):
    """Logits of a softmax over the columns with weight > 0, a column of weight k counting k times
    (score + log k; for weight 1 that adds an exact 0.0, so a 0/1 mask gives the plain scores)."""
    counted = weights > 0
    return ops.where(counted, scores + ops.log(ops.where(counted, weights, 1.0)), ops.full_like(scores, -1e9))


def cross_entropy_loss(scores, target, negative_mask=None):
    """Categorical cross-entropy of the target under a softmax over target and negatives."""
    mask = _negatives(scores, target, negative_mask)
    n_columns = ops.shape(scores)[1]
    keep = mask + ops.one_hot(ops.cast(target, "int32"), n_columns, dtype=scores.dtype)
    return -ops.squeeze(_target_scores(ops.log_softmax(_weighted_logits(scores, keep), axis=1), target), 1)


def _negative_softmax(scores, mask):
    """s_j: softmax over each row's negatives only (0 elsewhere), Hidasi & Karatzoglou 2018, §3.2;
    a negative of multiplicity k weighs k (the softmax over the candidate list it stands for)."""
    return ops.softmax(_weighted_logits(scores, mask), axis=1) * ops.cast(mask > 0, scores.dtype)


def top1_max_loss(scores, target, negative_mask=None):
    """TOP1-max: Σ_j s_j (σ(r_j − r_i) + σ(r_j²)), s = softmax over the negatives' scores
    (Hidasi & Karatzoglou 2018, eq. 9)."""
    mask = _negatives(scores, target, negative_mask)
    values = ops.sigmoid(scores - _target_scores(scores, target)) + ops.sigmoid(ops.square(scores))
    return ops.sum(_negative_softmax(scores, mask) * values, axis=1)


def bpr_max_value_and_gradient(
    scores, target, negative_mask=None, score_regularization: float = 1.0, elu_param: float = 0.0
) -> tuple:
    """BPR-max's value per row [B] (`bpr_max_loss`) and its gradient with respect to `scores`
    [B, C], in one pass over the scores (a compiler can fuse all of it into a few loops; GRU4Rec's
    training compiles it with XLA).

    With w_j the softmax weights (s_j in `bpr_max_loss`), σ_j = σ(r_i − r_j), P = Σ_j w_j σ_j (+ε),
    R = Σ_j w_j r_j² and a_j = ∂L/∂w_j = −σ_j/P + λ r_j²:
      ∂L/∂r_j = w_j (a_j − Σ_k w_k a_k) + w_j σ'_j / P + 2λ w_j r_j      (softmax, sigmoid, regulariser)
      ∂L/∂r_i = −Σ_j w_j σ'_j / P                                        (the target's own score)
    σ'_j = σ_j (1 − σ_j), then × ELU' (1 above 0, ELU(x) + α below). Σ_k w_k a_k = λR − (P − ε)/P
    needs no pass of its own; a column of multiplicity k weighs k·exp(r_j − max) in the softmax (as
    `_negative_softmax`), and σ(x) = (1 + tanh(x/2))/2 — the same values, with fewer and cheaper
    passes over the [B, C] scores."""
    mask = _negatives(scores, target, negative_mask)
    target = ops.cast(target, "int32")
    s = ops.elu(scores, alpha=elu_param) if elu_param > 0 else scores
    counted = mask > 0
    top = ops.max(ops.where(counted, s, -1e9), axis=1, keepdims=True)
    exponentials = mask * ops.exp(ops.where(counted, s - top, 0.0))
    weights = exponentials / ops.maximum(ops.sum(exponentials, axis=1, keepdims=True), 1e-30)
    own_score = _target_scores(s, target)
    ranked_above = 0.5 + 0.5 * ops.tanh(0.5 * (own_score - s))
    total = ops.sum(weights * ranked_above, axis=1, keepdims=True) + 1e-10  # P
    square = ops.square(s)
    regularizer = ops.sum(weights * square, axis=1, keepdims=True)  # R
    loss = ops.squeeze(-ops.log(total) + score_regularization * regularizer, 1)

    inverse = 1.0 / total
    slope = ranked_above * (1.0 - ranked_above)
    mean = score_regularization * regularizer - (total - 1e-10) * inverse  # Σ_k w_k a_k
    per_weight = score_regularization * square - ranked_above * inverse
    gradient = weights * (per_weight - mean + slope * inverse + 2.0 * score_regularization * s)
    at_target = -ops.sum(weights * slope, axis=1, keepdims=True) * inverse
    if elu_param > 0:
        gradient = gradient * ops.where(scores > 0, ops.ones_like(s), s + elu_param)
        raw_own = _target_scores(scores, target)
        at_target = at_target * ops.where(raw_own > 0, ops.ones_like(own_score), own_score + elu_param)
    # the target's column is no negative (its weight is 0): its gradient is only ∂L/∂r_i
    return loss, gradient + ops.one_hot(target, ops.shape(scores)[1], dtype=scores.dtype) * at_target


def bpr_max_loss(
    scores,
    target,
    negative_mask=None,
    score_regularization: float = 1.0,
    elu_param: float = 0.0,
    value_and_gradient: Callable | None = None,
):
    """BPR-max: −log Σ_j s_j σ(r_i − r_j) + λ Σ_j s_j r_j², s = softmax over the negatives' scores
    (Hidasi & Karatzoglou 2018, eq. 10 with the score regularisation of eq. 11). `elu_param` α > 0:
    the scores first pass through ELU(α), as the authors' implementation does for BPR-max (it bounds
    negative scores below by −α, so the softmax and the regulariser see no large negative values).

    The gradient is written out (`bpr_max_value_and_gradient`; autodiff would chain ~40 elementwise
    ops) and computed with the value, so the backward pass is one product with the upstream
    gradient. `value_and_gradient`: a compiled form of `bpr_max_value_and_gradient` (the same
    arguments and results) to use instead.
    """
    compute = value_and_gradient or bpr_max_value_and_gradient

    @ops.custom_gradient
    def loss_of(raw):
        loss, gradient = compute(raw, target, negative_mask, score_regularization, elu_param)

        def grad(*args, upstream=None):
            upstream = args[0] if upstream is None else upstream
            return gradient * ops.expand_dims(upstream, 1)

        return loss, grad

    return loss_of(scores)


RANKING_LOSSES: dict[str, Callable] = {
    "bpr": bpr_loss,
    "top1": top1_loss,
    "cross-entropy": cross_entropy_loss,
    "bpr-max": bpr_max_loss,
    "top1-max": top1_max_loss,
}


@keras.saving.register_keras_serializable(package="movierec")
class RankingLoss(keras.losses.Loss):
    """Keras wrapper: `y_true` holds each row's target column, `y_pred` the score matrix."""

    def __init__(self, kind: str = "bpr", name: str | None = None, **kwargs):
        if kind not in RANKING_LOSSES:
            raise ValueError(f"unknown ranking loss {kind!r}; choose one of {sorted(RANKING_LOSSES)}")
        super().__init__(name=name or f"{kind}_loss", **kwargs)
        self.kind = kind

    def call(self, y_true, y_pred):
        return RANKING_LOSSES[self.kind](y_pred, ops.reshape(y_true, (-1,)))

    def get_config(self) -> dict:
        return {**super().get_config(), "kind": self.kind}
