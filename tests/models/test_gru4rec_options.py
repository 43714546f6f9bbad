"""GRU4Rec's training options that follow the authors' implementation: the step loss normalised by
the fixed batch size, Adagrad with momentum, logQ correction, and dropout on the carried state."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from movierec.models import GRU4Rec, GRU4RecRecommender, TrainingData, UserSequences
from movierec.models.gru4rec.training import (
    indexed_adagrad,
    log_q_probabilities,
    loss_denominator,
    step_loss,
)
from movierec.models.losses import RANKING_LOSSES

N_ITEMS, LANES = 12, 4


def tail_step():
    """A step of 4 lanes where only the first two still have a session."""
    rng = np.random.default_rng(0)
    return {
        "state": tf.constant(rng.normal(size=(1, LANES, 5)).astype(np.float32)),
        "items": tf.constant([1, 2, 0, 0], tf.int32),
        "targets": tf.constant([3, 4, 0, 0], tf.int32),
        "reset": tf.constant([False, False, False, False]),
        "active": tf.constant([True, True, False, False]),
        "samples": tf.constant([5, 6, 7], tf.int32),
    }


def gradients(model, step, denominator, correction=None, loss="bpr-max"):
    with tf.GradientTape() as tape:
        _, value = step_loss(
            model, RANKING_LOSSES[loss], denominator=denominator, log_q_correction=correction, **step
        )
    return value, tape.gradient(value, model.trainable_variables)


def assert_same_step(value, grads, expected, expected_grads) -> None:
    """A step's loss and gradients equal the expected ones within float rounding."""
    assert float(value) == pytest.approx(float(expected), rel=1e-5)
    for got, want in zip(grads, expected_grads, strict=True):
        np.testing.assert_allclose(
            ops.convert_to_numpy(tf.convert_to_tensor(got)),
            ops.convert_to_numpy(tf.convert_to_tensor(want)),
            rtol=1e-4,
            atol=1e-7,
        )


def test_batch_normalisation_weighs_a_tail_step_by_its_active_lanes():
    keras.utils.set_random_seed(0)
    model = GRU4Rec(N_ITEMS, hidden_size=5)
    step = tail_step()
    by_batch = loss_denominator("batch", LANES, step["active"])
    by_active = loss_denominator("active", LANES, step["active"])
    assert float(by_batch) == LANES and float(by_active) == 2.0
    loss_b, grads_b = gradients(model, step, by_batch)
    loss_a, grads_a = gradients(model, step, by_active)
    # 2 busy lanes of 4: the step counts half as much as a full step, not as much
    assert float(loss_b) == pytest.approx(float(loss_a) / 2, rel=1e-6)
    for g_b, g_a in zip(grads_b, grads_a, strict=True):
        np.testing.assert_allclose(
            ops.convert_to_numpy(tf.convert_to_tensor(g_b)),
            ops.convert_to_numpy(tf.convert_to_tensor(g_a)) / 2,
            rtol=1e-5,
            atol=1e-8,
        )


def test_log_q_correction_subtracts_each_candidates_log_probability_from_its_logit():
    keras.utils.set_random_seed(0)
    model = GRU4Rec(N_ITEMS, hidden_size=5)
    step = tail_step()
    items = np.array([3, 3, 3, 4, 5, 6, 7, 7], np.int64)  # training targets: item 3 drawn 3/8 of the time
    sampler = np.full(N_ITEMS, 1 / N_ITEMS)
    correction = log_q_probabilities(items, N_ITEMS, sampler, logq=1.0)
    probability = ops.convert_to_numpy(correction(step["targets"], step["samples"]))
    np.testing.assert_allclose(probability[:2], [3 / 8, 1 / 8], rtol=1e-6)
    np.testing.assert_allclose(probability[LANES:], [1 / N_ITEMS] * 3, rtol=1e-6)
    corrected, _ = gradients(model, step, 1.0, correction, loss="cross-entropy")
    # the same loss by hand: softmax cross-entropy over (score − log q) of target and negatives
    _, hidden = model.step(step["items"], step["state"], step["reset"], training=True)
    candidates = np.r_[step["targets"].numpy(), step["samples"].numpy()]
    logits = ops.convert_to_numpy(model.score_items(hidden, candidates)) - np.log(
        np.maximum(probability, 1e-6)
    )
    expected = 0.0
    for lane in range(2):
        usable = [lane] + [c for c in range(2) if c != lane and candidates[c] != candidates[lane]] + [4, 5, 6]
        row = logits[lane, usable]
        expected -= row[0] - np.log(np.exp(row).sum())
    assert float(corrected) == pytest.approx(expected, rel=1e-4)
    plain, _ = gradients(model, step, 1.0, None, loss="cross-entropy")
    assert float(plain) != pytest.approx(expected, rel=1e-3)


@pytest.mark.parametrize(("momentum", "nesterov"), [(0.0, False), (0.5, False), (0.5, True)])
@pytest.mark.parametrize("sparse", [False, True])
def test_adagrad_follows_the_authors_update(sparse, momentum, nesterov):
    """θ − lr g / √(Σg² + ε) (momentum 0: TensorFlow's fused Adagrad kernels), with momentum the
    official's velocity update; a sparse gradient's duplicate rows are summed."""
    rate, eps = 0.1, 1e-6
    variable = keras.Variable(np.ones((4, 2), np.float32))
    optimizer = indexed_adagrad(rate, momentum, nesterov)
    rows = np.array([0, 2, 2])  # row 2 twice: its values add up
    steps = [
        np.array([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], np.float32),
        np.array([[-2.0, 1.0], [1.0, 0.5], [-0.25, 1.0]], np.float32),
    ]
    steps = [values * 1e-3 for values in steps]  # Σg² near ε: where ε goes shows in the update
    expected, accumulator, velocity = np.ones((4, 2)), np.zeros((4, 2)), np.zeros((4, 2))
    for values in steps:
        if sparse:
            gradient = tf.IndexedSlices(tf.constant(values), tf.constant(rows), tf.constant([4, 2]))
        else:
            dense = np.zeros((4, 2), np.float32)
            np.add.at(dense, rows, values)
            gradient = tf.constant(dense)
        optimizer.apply([gradient], [variable])
        g = np.zeros((4, 2))
        np.add.at(g, rows, values)
        accumulator += g**2
        step = rate * g / np.sqrt(accumulator + eps)
        touched = np.zeros((4, 1), bool)
        touched[rows] = True
        # a sparse update decays only the touched rows' velocity (the official's indexed update)
        new_velocity = np.where(touched | (not sparse), momentum * velocity - step, velocity)
        delta = momentum * new_velocity - step if nesterov else new_velocity
        expected += np.where(touched | (not sparse), delta, 0.0)
        velocity = new_velocity
    np.testing.assert_allclose(ops.convert_to_numpy(variable), expected, rtol=1e-5)
    if not momentum:
        return
    plain = keras.Variable(np.ones((4, 2), np.float32))
    no_momentum = indexed_adagrad(rate)
    for values in steps:
        no_momentum.apply(
            [tf.IndexedSlices(tf.constant(values), tf.constant(rows), tf.constant([4, 2]))], [plain]
        )
    assert not np.allclose(ops.convert_to_numpy(plain), expected)  # momentum changed the update


def test_dropout_on_the_state_carries_the_dropped_units_to_the_next_step():
    keras.utils.set_random_seed(0)
    items, state = tf.constant([1, 2, 3], tf.int32), tf.zeros((1, 3, 64))
    carried = GRU4Rec(N_ITEMS, hidden_size=64, dropout_hidden=0.5, dropout_carried=True)
    next_state, output = carried.step(items, state, training=True)
    np.testing.assert_array_equal(ops.convert_to_numpy(next_state[-1]), ops.convert_to_numpy(output))
    assert (ops.convert_to_numpy(next_state) == 0).mean() > 0.3  # the carried state has dropped units
    output_only = GRU4Rec(N_ITEMS, hidden_size=64, dropout_hidden=0.5)
    next_state, output = output_only.step(items, state, training=True)
    assert (ops.convert_to_numpy(next_state) == 0).mean() < 0.05 < (ops.convert_to_numpy(output) == 0).mean()
    # at inference both carry the whole state
    next_state, output = carried.step(items, state, training=False)
    assert (ops.convert_to_numpy(next_state) == 0).mean() < 0.05


def test_options_train_end_to_end_and_reject_a_loss_they_do_not_apply_to():
    rng = np.random.default_rng(0)
    sequences = UserSequences.from_lists([rng.integers(0, 20, size=6).tolist() for _ in range(30)])
    data = TrainingData(n_users=30, n_items=20, sequences=sequences)
    for hparams in (
        {"loss": "cross-entropy", "logq": 1.0, "momentum": 0.3},
        {
            "loss": "bpr-max",
            "elu_param": 0.5,
            "dropout_hidden_on": "state",
            "nesterov": True,
            "momentum": 0.2,
        },
        {"loss": "top1-max", "loss_normalization": "active", "epoch_tail": "keep"},
    ):
        model = GRU4RecRecommender(hidden_size=8, batch_size=4, n_sample=5, epochs=1, **hparams).fit(data)
        assert np.isfinite(model.training_log["epoch_losses"]).all()
    with pytest.raises(ValueError, match="logq"):
        GRU4RecRecommender(loss="bpr-max", logq=1.0)
    with pytest.raises(ValueError, match="elu_param"):
        GRU4RecRecommender(loss="cross-entropy", elu_param=0.5)


@pytest.mark.parametrize("n_candidates", [6, 20])
def test_candidate_scores_are_the_same_whichever_way_they_are_computed(n_candidates):
    # 6 candidates of 12 items: gathered rows; 20: a full-catalogue matmul and a column pick
    keras.utils.set_random_seed(0)
    model = GRU4Rec(N_ITEMS, hidden_size=5)
    hidden = tf.constant(np.random.default_rng(1).normal(size=(3, 5)).astype(np.float32))
    candidates = tf.constant(np.random.default_rng(2).integers(0, N_ITEMS, n_candidates), tf.int32)
    np.testing.assert_allclose(
        ops.convert_to_numpy(model.score_candidates(hidden, candidates)),
        ops.convert_to_numpy(model.score_items(hidden, candidates)),
        rtol=1e-5,
        atol=1e-6,
    )


def variable_users(model, optimizer, step, loss) -> dict:
    """The ops of a compiled training step (loss, gradients, the optimizer's update) that use each
    variable, keyed by the id of its resource handle."""
    optimizer.build(model.trainable_variables)

    @tf.function
    def train():
        value, grads = gradients(model, step, 4.0, loss=loss)
        optimizer.apply(grads, model.trainable_variables)
        return value

    graph = train.get_concrete_function().graph
    return {id(outside): inside.consumers() for outside, inside in graph.captures}


# ops that read or write a variable's listed rows only (a whole read would be ReadVariableOp)
ROW_WISE = {
    "ResourceGather",
    "ResourceScatterAdd",
    "ResourceScatterSub",
    "ResourceScatterUpdate",
    "ResourceSparseApplyAdagradV2",
}


@pytest.mark.parametrize("constrained", [True, False])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_a_training_step_reads_only_the_rows_it_uses_of_the_item_tables(momentum, constrained):
    """The compiled step must not read a whole item table (output weights and bias, the 1-of-N input
    kernel, the optimizer's slots): with such a read alive, the in-place row update makes TensorFlow
    copy the table, and a step costs O(catalogue) instead of O(candidates)."""
    n_items = 50
    step = tail_step()
    step["samples"] = tf.constant([5, 6, 7, 8], tf.int32)  # 4 + 4 candidates < 50 items: row lookups
    model = GRU4Rec(n_items, 5, constrained_embedding=constrained)
    optimizer = indexed_adagrad(0.1, momentum)
    users = variable_users(model, optimizer, step, "cross-entropy")
    tables = [model.output_weights, model.output_bias]
    if not constrained:
        tables.append(model.cells[0].input_kernel)
    slots = [v for v in optimizer.variables if v.shape[:1] == (n_items,)]
    assert len(slots) == len(tables) * (2 if momentum else 1)
    for variable in tables + slots:
        readers = {op.type for op in users[id(variable.value.handle)]}
        assert readers and readers <= ROW_WISE, (variable.path, readers)


def test_a_step_that_scores_the_catalogue_reads_the_output_weights_once_and_never_row_wise():
    """A row-wise access (a gather) switches a TensorFlow variable to copy-on-read for good: every
    whole read and dense update then copies it. The catalogue form reads the output weights whole,
    so its tied-embedding lookup must take its rows from that one read."""
    step = {**tail_step(), "samples": tf.constant([5, 6, 7, 5, 3, 1, 1, 9, 10, 11], tf.int32)}
    model = GRU4Rec(N_ITEMS, 5, constrained_embedding=True)
    readers = variable_users(model, indexed_adagrad(0.1), step, "bpr-max")[
        id(model.output_weights.value.handle)
    ]
    assert {op.type for op in readers} == {"ReadVariableOp", "ResourceApplyAdagradV2"}, readers
    used = [op for op in readers if op.type == "ReadVariableOp" and op.outputs[0].consumers()]
    assert len(used) == 1, used  # the lookup and the scores share one read


@pytest.mark.parametrize("constrained", [False, True])
@pytest.mark.parametrize("loss", sorted(RANKING_LOSSES))
def test_the_catalogue_form_of_the_loss_equals_the_loss_over_the_candidate_columns(
    loss, constrained, monkeypatch
):
    """With 4 lanes + 10 samples ≥ 12 items the step scores the catalogue and weighs each item by how
    many usable candidates it is; the value and every gradient must be those of the candidate list
    (duplicated samples, a sample equal to a lane's target, idle lanes' targets not counted). With
    the tied embedding the output weights' gradient also sums the input rows' (taken from the step's
    one read of the table; the step's items 1, 2, 0, 0 repeat a row)."""
    from movierec.models.gru4rec.batching import catalogue_negatives, negative_mask

    keras.utils.set_random_seed(0)
    model = GRU4Rec(N_ITEMS, hidden_size=5, constrained_embedding=constrained)
    step = {**tail_step(), "samples": tf.constant([5, 6, 7, 5, 3, 1, 1, 9, 10, 11], tf.int32)}
    weights = ops.convert_to_numpy(
        catalogue_negatives(step["targets"], step["samples"], step["active"], N_ITEMS)
    )
    assert weights[0, 1] == 2 and weights[0, 3] == 0 and weights[1, 3] == 2 and weights[0, 0] == 0

    def over_candidates():
        with tf.GradientTape() as tape:
            _, hidden = model.step(step["items"], step["state"], step["reset"], training=False)
            candidates = ops.concatenate([step["targets"], step["samples"]], axis=0)
            scores = ops.take(model.score_all(hidden), candidates, axis=1)
            mask = negative_mask(step["targets"], step["samples"], step["active"])
            per_lane = RANKING_LOSSES[loss](scores, ops.arange(LANES, dtype="int32"), mask)
            value = ops.sum(per_lane * ops.cast(step["active"], "float32")) / LANES
        return value, tape.gradient(value, model.trainable_variables)

    from movierec.models.gru4rec import training

    used = []
    monkeypatch.setattr(
        training, "catalogue_negatives", lambda *args: used.append(args) or catalogue_negatives(*args)
    )

    def catalogue():  # what step_loss computes here (dropout 0: training changes nothing)
        with tf.GradientTape() as tape:
            _, value = step_loss(model, RANKING_LOSSES[loss], denominator=float(LANES), **step)
        return value, tape.gradient(value, model.trainable_variables)

    expected, expected_grads = over_candidates()
    value, grads = catalogue()
    assert used, "the step did not take the catalogue form"
    assert_same_step(value, grads, expected, expected_grads)


def test_a_0_1_mask_gives_the_plain_softmax_over_the_negatives_bit_for_bit():
    from movierec.models.losses import _negative_softmax

    rng = np.random.default_rng(0)
    scores = rng.normal(size=(4, 9)).astype(np.float32)
    mask = (rng.random((4, 9)) < 0.6).astype(np.float32)
    plain = ops.softmax(np.where(mask > 0, scores, -1e9).astype(np.float32), axis=1) * mask
    np.testing.assert_array_equal(ops.convert_to_numpy(_negative_softmax(scores, mask)), plain)


@pytest.mark.parametrize("elu, compiled_rows", [(0.0, None), (0.5, None), (0.5, LANES), (0.5, LANES + 1)])
def test_the_training_s_compiled_bpr_max_equals_the_plain_loss(elu, compiled_rows):
    """`make_loss` compiles BPR-max's value and gradient with XLA: inside a compiled training step its
    value and every gradient must be the plain loss's within float rounding, and the loss the step
    calls must really be the compiled one (its graph holds an XLA-compiled call). With
    `compiled_rows`, a step of that many lanes runs the compiled kernel and a step of another width
    (LANES + 1: the narrowed tail's case) the plain ops — both the same loss."""
    from movierec.models.gru4rec.config import GRU4RecConfig
    from movierec.models.gru4rec.training import make_loss

    keras.utils.set_random_seed(0)
    model = GRU4Rec(N_ITEMS, hidden_size=5)
    step = {**tail_step(), "samples": tf.constant([5, 6, 7, 5, 3, 1, 1, 9, 10, 11], tf.int32)}
    compiled = make_loss(GRU4RecConfig(loss="bpr-max", elu_param=elu, bpreg=0.7), compiled_rows)
    plain = RANKING_LOSSES["bpr-max"]

    @tf.function(autograph=False)
    def value_and_grads(loss_fn):
        with tf.GradientTape() as tape:
            _, value = step_loss(model, loss_fn, denominator=float(LANES), **step)
        return value, tape.gradient(value, model.trainable_variables)

    def expected_loss(scores, target, mask):
        return plain(scores, target, mask, score_regularization=0.7, elu_param=elu)

    value, grads = value_and_grads(compiled)
    expected, expected_grads = value_and_grads(expected_loss)
    graph = value_and_grads.get_concrete_function(compiled).graph
    nested = [f for f in graph.as_graph_def().library.function]
    assert any(f.attr["_XlaMustCompile"].b for f in nested), "BPR-max was not compiled"
    assert_same_step(value, grads, expected, expected_grads)
