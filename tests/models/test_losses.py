"""Ranking losses against values worked out by hand (score rows: target first, two negatives)."""

import math

import numpy as np
import pytest
from keras import ops

from movierec.models.losses import RANKING_LOSSES, RankingLoss

SCORES = np.array([[2.0, 1.0, -1.0]], dtype=np.float32)
TARGET = np.array([0])


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def value(kind, scores=SCORES, target=TARGET, mask=None):
    return float(ops.convert_to_numpy(RANKING_LOSSES[kind](ops.convert_to_tensor(scores), target, mask))[0])


def test_bpr():
    # −(log σ(2−1) + log σ(2+1)) / 2
    assert value("bpr") == pytest.approx(-(math.log(sigmoid(1)) + math.log(sigmoid(3))) / 2, rel=1e-5)


def test_top1():
    # (σ(1−2) + σ(1²) + σ(−1−2) + σ((−1)²)) / 2
    expected = (sigmoid(-1) + sigmoid(1) + sigmoid(-3) + sigmoid(1)) / 2
    assert value("top1") == pytest.approx(expected, rel=1e-5)


def test_cross_entropy():
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(1) + math.exp(-1)))
    assert value("cross-entropy") == pytest.approx(expected, rel=1e-5)


def test_bpr_max():
    s1, s2 = math.exp(1) / (math.exp(1) + math.exp(-1)), math.exp(-1) / (math.exp(1) + math.exp(-1))
    expected = -math.log(s1 * sigmoid(1) + s2 * sigmoid(3)) + (s1 * 1 + s2 * 1)
    assert value("bpr-max") == pytest.approx(expected, rel=1e-5)


def test_top1_max_weighs_top1_terms_by_the_softmax_of_the_negatives():
    # Hidasi & Karatzoglou 2018, eq. 9: Σ_j s_j (σ(r_j − r_i) + σ(r_j²))
    s1, s2 = math.exp(1) / (math.exp(1) + math.exp(-1)), math.exp(-1) / (math.exp(1) + math.exp(-1))
    expected = s1 * (sigmoid(-1) + sigmoid(1)) + s2 * (sigmoid(-3) + sigmoid(1))
    assert value("top1-max") == pytest.approx(expected, rel=1e-5)


def test_elu_param_passes_the_bpr_max_scores_through_elu_first():
    alpha = 0.5
    elu = np.where(SCORES > 0, SCORES, alpha * (np.exp(SCORES) - 1)).astype(np.float32)
    with_elu = RANKING_LOSSES["bpr-max"](ops.convert_to_tensor(SCORES), TARGET, elu_param=alpha)
    assert float(ops.convert_to_numpy(with_elu)[0]) == pytest.approx(value("bpr-max", elu), rel=1e-5)
    assert float(ops.convert_to_numpy(with_elu)[0]) != pytest.approx(value("bpr-max"), rel=1e-3)


def test_negative_mask_drops_columns():
    # with the second negative masked, BPR sees only the first
    mask = np.array([[1.0, 1.0, 0.0]], dtype=np.float32)
    assert value("bpr", mask=mask) == pytest.approx(-math.log(sigmoid(1)), rel=1e-5)


def test_target_can_be_any_column():
    rolled = np.roll(SCORES, 1, axis=1)  # target now in column 1
    assert value("bpr", rolled, np.array([1])) == pytest.approx(value("bpr"), rel=1e-6)


def test_keras_wrapper_round_trips_its_config():
    loss = RankingLoss("top1")
    assert RankingLoss.from_config(loss.get_config()).kind == "top1"
    with pytest.raises(ValueError, match="unknown ranking loss"):
        RankingLoss("hinge")


@pytest.mark.parametrize(("regularization", "elu"), [(1.0, 0.5), (0.3, 0.0), (0.0, 1.0)])
def test_bpr_max_s_written_out_gradient_is_autodiff_s(regularization, elu):
    """The hand-written gradient equals autodiff of the plain formula (eq. 10–11), with ELU, with
    multiplicity weights (0, 1, 2) and a target in every position."""
    import tensorflow as tf

    from movierec.models import losses

    def plain(scores, target, mask):
        if elu > 0:
            scores = ops.elu(scores, alpha=elu)
        negatives = losses._negatives(scores, target, mask)
        weights = losses._negative_softmax(scores, negatives)
        ranked_above = ops.sigmoid(losses._target_scores(scores, target) - scores)
        value = -ops.log(ops.sum(weights * ranked_above, axis=1) + 1e-10)
        return value + regularization * ops.sum(weights * ops.square(scores), axis=1)

    rng = np.random.default_rng(0)
    scores = tf.constant(2 * rng.normal(size=(6, 11)).astype(np.float32))
    target = tf.constant([0, 3, 5, 10, 2, 2])
    mask = tf.constant(rng.integers(0, 3, size=(6, 11)).astype(np.float32))
    upstream = tf.constant(rng.random(6).astype(np.float32))
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(scores)
        written = losses.bpr_max_loss(scores, target, mask, regularization, elu)
        reference = plain(scores, target, mask)
        weighted = (tf.reduce_sum(written * upstream), tf.reduce_sum(reference * upstream))
    np.testing.assert_allclose(written.numpy(), reference.numpy(), rtol=1e-6)  # cheaper forms, same values
    np.testing.assert_allclose(
        tape.gradient(weighted[0], scores).numpy(), tape.gradient(weighted[1], scores).numpy(), atol=1e-6
    )
