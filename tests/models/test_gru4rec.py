"""GRU4Rec: session-parallel schedule, state resets, negatives, inference modes, a pattern to learn."""

import dataclasses
import itertools

import numpy as np
import pytest
from keras import ops

from movierec.models import GRU4Rec, GRU4RecRecommender, QueryBatch, TrainingData, UserSequences
from movierec.models import load_model as load_recommender
from movierec.models import save_model as save_recommender
from movierec.models.gru4rec import (
    InverseCdfSampler,
    narrowing_segments,
    negative_mask,
    popularity_sampler,
    session_parallel_batches,
    session_parallel_schedule,
    training_sessions,
)
from movierec.models.losses import RANKING_LOSSES


def sequences(per_user, session_breaks=()):
    return UserSequences.from_lists(per_user, session_breaks=session_breaks)


def queries(seq, users, positions, session_starts):
    return QueryBatch(np.asarray(users), np.asarray(positions), np.asarray(session_starts), seq)


SMALL = {"hidden_size": 16, "batch_size": 4, "n_sample": 4, "epochs": 1, "steps_per_call": 16}


# -- session-parallel mini-batches ----------------------------------------------------------------------


def test_training_sessions_split_at_session_starts_and_skip_single_events():
    # user 0: [10 11 12 | 13]   user 1: [20 21]   user 2: [30 | 31 32 33]   (| = session start)
    seq = sequences([[10, 11, 12, 13], [20, 21], [30, 31, 32, 33]], session_breaks=[(0, 3), (2, 1)])
    starts, lengths = training_sessions(seq, "session")
    assert starts.tolist() == [0, 4, 7]  # [13] and [30] have no target: skipped
    assert lengths.tolist() == [3, 2, 3]
    starts, lengths = training_sessions(seq, "user")
    assert starts.tolist() == [0, 4, 6] and lengths.tolist() == [4, 2, 4]


def test_session_parallel_schedule_hands_free_lanes_the_next_session():
    session, offset = session_parallel_schedule(np.array([3, 2, 4, 2, 2]), batch_size=2)
    # lane 0: s0 (2 steps), then s3, then s4; lane 1: s1 (1 step), then s2 (3 steps)
    assert session.tolist() == [[0, 1], [0, 2], [3, 2], [4, 2]]
    assert offset.tolist() == [[0, 0], [1, 0], [0, 1], [0, 2]]
    # more lanes than sessions: the spare lanes stay idle; a lane idles once sessions run out
    session, offset = session_parallel_schedule(np.array([3, 2]), batch_size=3)
    assert session.tolist() == [[0, 1, -1], [0, -1, -1]]


def test_session_parallel_batches_feed_each_event_and_target_the_next():
    seq = sequences([[10, 11, 12, 13], [20, 21], [30, 31, 32, 33]], session_breaks=[(0, 3), (2, 1)])
    starts, lengths = training_sessions(seq, "session")
    items, targets, reset, active = session_parallel_batches(seq.items, starts, lengths, batch_size=2)
    # sessions: A = 10 11 12, B = 20 21, C = 31 32 33; lane 0 holds A, lane 1 holds B then C
    assert items.tolist() == [[10, 20], [11, 31], [0, 32]]
    assert targets.tolist() == [[11, 21], [12, 32], [0, 33]]
    assert reset.tolist() == [[True, True], [False, True], [False, False]]  # exactly at session starts
    assert active.tolist() == [[True, True], [True, True], [False, True]]


@pytest.mark.parametrize(("shrink", "multiple", "narrowest"), [(4, 1, 1), (2, 1, 4), (4, 2, 2)])
def test_narrowing_segments_keep_every_busy_lane_on_fewer_lanes(shrink, multiple, narrowest):
    rng = np.random.default_rng(0)
    lengths = rng.integers(2, 40, size=90)
    session, _ = session_parallel_schedule(lengths, batch_size=32)
    active = session >= 0
    segments = narrowing_segments(active, shrink, multiple, narrowest)
    assert segments[0][0] == 0 and segments[-1][1] == len(active)
    widths = [len(lanes) for _, _, lanes in segments]
    assert widths[0] == 32 and len(widths) >= 3  # the tail did narrow, more than once
    assert min(widths) >= narrowest and min(widths) < narrowest * shrink
    for (_, stop, lanes), (next_start, _, next_lanes) in itertools.pairwise(segments):
        assert stop == next_start and set(next_lanes) <= set(lanes) and len(next_lanes) < len(lanes)
    for start, stop, lanes in segments:
        assert len(lanes) % multiple == 0 and (np.diff(lanes) > 0).all()
        outside = np.setdiff1d(np.arange(32), lanes)
        assert not active[start:stop][:, outside].any()  # no busy lane left out
        if start > 0:  # a narrowing happens once the busy lanes fit in 1/shrink of the width before
            assert active[start].sum() <= len(lanes)
    # a full batch to the end (every lane busy every step) never narrows
    assert [len(lanes) for *_, lanes in narrowing_segments(np.ones((5, 8), bool))] == [8]
    with pytest.raises(ValueError, match="shrink"):
        narrowing_segments(active, shrink=1)


def test_an_epoch_on_narrowing_lanes_trains_as_the_full_width(monkeypatch):
    """The tail on fewer lanes is the same training (dropout off: its draws depend on the width):
    the same epoch losses and weights, up to float rounding, as every step on all lanes."""
    from movierec.models.gru4rec import training

    rng = np.random.default_rng(0)
    per_user = [list(rng.integers(0, 30, size=rng.integers(3, 25))) for _ in range(80)]
    data = TrainingData(80, 30, sequences(per_user))
    config = {**SMALL, "batch_size": 32, "dropout_hidden": 0.0, "epochs": 2}
    widths = []

    def spy(active, *args):
        segments = narrowing_segments(active, *args)
        widths.extend(len(lanes) for *_, lanes in segments)
        return segments

    monkeypatch.setattr(training, "narrowing_segments", spy)
    narrowed = GRU4RecRecommender(**config).fit(data)
    assert min(widths) < 32  # the tails did run on fewer lanes
    monkeypatch.setattr(
        training, "narrowing_segments", lambda active, *_: [(0, len(active), np.arange(active.shape[1]))]
    )
    full = GRU4RecRecommender(**config).fit(data)
    np.testing.assert_allclose(
        narrowed.training_log["epoch_losses"], full.training_log["epoch_losses"], rtol=1e-5
    )
    for a, b in zip(narrowed.keras_model.weights, full.keras_model.weights, strict=True):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-4, atol=1e-6)


def test_each_epoch_trains_on_the_batches_built_in_turn_from_the_seed(monkeypatch):
    """The batches are built by a worker while the previous epoch trains: every epoch must still
    get what building the epochs one after the other from the seeded generator gives (same session
    order, tie shuffle and samples), with ties in the data so the shuffle draws."""
    from movierec.models.gru4rec import training
    from movierec.models.gru4rec.batching import InverseCdfSampler, epoch_batches, popularity_sampler

    rng = np.random.default_rng(1)
    per_user = [list(rng.integers(0, 30, size=rng.integers(3, 12))) for _ in range(12)]
    seq = sequences(per_user)
    data = TrainingData(12, 30, dataclasses.replace(seq, timestamps=seq.timestamps // 2))  # pairs tie
    recommender = GRU4RecRecommender(**{**SMALL, "epochs": 3, "seed": 7})
    config, trained, original = recommender.config, [], training.train_epoch

    def spy(model, train_chunk, batches, *rest):
        trained.append(batches)
        return original(model, train_chunk, batches, *rest)

    monkeypatch.setattr(training, "train_epoch", spy)
    recommender.fit(data)
    starts, lengths = training.training_sessions(data.sequences, config.session_mode)
    sampler = InverseCdfSampler(popularity_sampler(data.sequences.items, 30, config.sample_alpha))
    built = np.random.default_rng(7)
    assert len(trained) == 3
    for batches in trained:
        for got, want in zip(
            batches, epoch_batches(data.sequences, starts, lengths, config, sampler, built), strict=True
        ):
            np.testing.assert_array_equal(got, want)
    assert not all(np.array_equal(trained[0][0], b[0]) for b in trained[1:])  # the epochs differ


# -- the network ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("embedding_dim, constrained", [(0, False), (8, False), (0, True)])
def test_reset_lane_equals_a_fresh_zero_state_run(embedding_dim, constrained):
    model = GRU4Rec(
        20, hidden_size=6, n_layers=2, embedding_dim=embedding_dim, constrained_embedding=constrained
    )
    warm, _ = model.step(np.array([3, 4]), model.initial_state(2))
    warm, _ = model.step(np.array([5, 6]), warm)
    stepped, hidden = model.step(np.array([7, 8]), warm, reset=np.array([True, False]))
    fresh, fresh_hidden = model.step(np.array([7]), model.initial_state(1))
    np.testing.assert_allclose(
        ops.convert_to_numpy(hidden)[:1], ops.convert_to_numpy(fresh_hidden), atol=1e-6
    )
    np.testing.assert_allclose(ops.convert_to_numpy(stepped)[:, :1], ops.convert_to_numpy(fresh), atol=1e-6)
    # the other lane kept its history
    assert not np.allclose(
        ops.convert_to_numpy(hidden)[1],
        ops.convert_to_numpy(model.step(np.array([8]), model.initial_state(1))[1])[0],
    )


def test_encode_resets_before_session_starts_and_ignores_padding():
    model = GRU4Rec(20, hidden_size=6)
    items = np.array([[1, 2, 3, 4, 0, 0], [3, 4, 0, 0, 0, 0], [5, 0, 0, 0, 0, 0]])
    mask = np.array([[1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], dtype=bool)
    reset = np.zeros_like(mask)
    reset[0, 2] = True  # row 0: [1 2 | 3 4] must end like row 1 ([3 4])
    hidden = ops.convert_to_numpy(model.encode(items, reset, mask))
    np.testing.assert_allclose(hidden[0], hidden[1], atol=1e-6)
    np.testing.assert_array_equal(hidden[2], 0.0)  # no valid step: zero state
    scores = ops.convert_to_numpy(model.score_sequences(items, reset, mask))
    np.testing.assert_allclose(scores[2], ops.convert_to_numpy(model.output_bias), atol=1e-6)
    # the Keras call: one step from a given state, candidate or full-catalogue scores
    state = model.initial_state(3)
    _, full = model({"items": items[:, 0], "state": state, "reset": np.zeros(3, bool)})
    next_state, picked = model({"items": items[:, 0], "state": state, "candidates": np.array([2, 7])})
    assert tuple(next_state.shape) == (1, 3, 6)
    np.testing.assert_allclose(ops.convert_to_numpy(picked), ops.convert_to_numpy(full)[:, [2, 7]], atol=1e-5)
    # candidate scores are the matching columns of the full-catalogue scores
    some = np.array([4, 0, 19])
    np.testing.assert_allclose(
        ops.convert_to_numpy(model.score_items(ops.convert_to_tensor(hidden), some)),
        scores[:, some],
        atol=1e-5,
    )


def test_negative_mask_drops_accidental_hits_and_idle_lanes():
    targets = np.array([3, 5, 3, 9])
    samples = np.array([5, 3, 7])
    active = np.array([True, True, True, False])
    mask = ops.convert_to_numpy(negative_mask(targets, samples, active))
    # columns: targets 3 5 3 9 | samples 5 3 7
    expected = [
        [0, 1, 0, 0, 1, 0, 1],  # target 3: lane 2's 3 and sample 3 are hits; lane 3 idle
        [1, 0, 1, 0, 0, 1, 1],  # target 5: sample 5 is a hit
        [0, 1, 0, 0, 1, 0, 1],
        [1, 1, 1, 0, 1, 1, 1],
    ]
    np.testing.assert_array_equal(mask, expected)
    # a masked duplicate of the target changes nothing: the loss equals the loss without that column
    scores = np.array([[2.0, 0.5, 2.0, -1.0]], np.float32)  # columns: target, neg, hit, neg
    with_hit = RANKING_LOSSES["cross-entropy"](scores, np.array([0]), np.array([[1, 1, 0, 1]], np.float32))
    without = RANKING_LOSSES["cross-entropy"](scores[:, [0, 1, 3]], np.array([0]))
    np.testing.assert_allclose(ops.convert_to_numpy(with_hit), ops.convert_to_numpy(without), rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("n_items", [1, 7, 1682])
def test_the_inverse_cdf_sampler_draws_exactly_what_numpy_s_choice_draws(alpha, n_items):
    """Same draws as `rng.choice(n, shape, p=p)` (so training's samples did not change), the
    generator left in the same state; items without support (probability 0) never drawn."""
    rng = np.random.default_rng(n_items)
    support = rng.zipf(1.4, 20 * n_items) % n_items
    support = support[support != n_items // 2]  # one item never seen: probability 0
    probabilities = popularity_sampler(support, n_items, alpha)
    sampler = InverseCdfSampler(probabilities)
    sampler.BLOCK = 10_000  # several blocks, the last one partial
    ours, numpys = np.random.default_rng(1), np.random.default_rng(1)
    drawn = sampler.draw(ours, (300, 257))
    assert drawn.dtype == np.int32
    np.testing.assert_array_equal(drawn, numpys.choice(n_items, size=(300, 257), p=probabilities))
    assert ours.random() == numpys.random()
    if n_items > 1:
        assert not (drawn == n_items // 2).any()
    # the draws that needed a search are the few whose bucket holds a CDF boundary
    assert (~sampler.settled).mean() <= 1 / 32


# -- the recommender ------------------------------------------------------------------------------------


def chains(n_users=60, n_items=30, length=8, seed=0):
    """Every user watches a run of consecutive items: item i is always followed by item i + 1."""
    rng = np.random.default_rng(seed)
    per = [list(range(s, s + length)) for s in rng.integers(0, n_items - length, n_users)]
    return TrainingData(n_users, n_items, sequences(per))


def test_gru4rec_learns_the_successor_pattern():
    data = chains()
    model = GRU4RecRecommender(
        hidden_size=32, batch_size=8, n_sample=8, epochs=20, learning_rate=0.1, loss="cross-entropy"
    ).fit(data)
    users = np.arange(data.n_users)
    positions = np.full(data.n_users, 4)
    scores = model.score(queries(data.sequences, users, positions, np.zeros_like(users)))
    assert scores.shape == (data.n_users, data.n_items) and scores.dtype == np.float32
    expected = data.sequences.items[data.sequences.indptr[:-1] + 4]
    assert np.mean(scores.argmax(axis=1) == expected) > 0.9  # Recall@1
    losses = model.training_log["epoch_losses"]
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("loss", sorted(RANKING_LOSSES))
def test_every_loss_trains_without_nan(loss):
    data = chains(n_users=12, n_items=15, length=5)
    model = GRU4RecRecommender(**{**SMALL, "epochs": 2, "loss": loss, "dropout_hidden": 0.2}).fit(data)
    assert np.isfinite(model.training_log["epoch_losses"]).all()
    scores = model.score(queries(data.sequences, [0, 1], [2, 3], [0, 0]))
    assert np.isfinite(scores).all()


def test_training_is_deterministic_for_a_seed():
    data = chains(n_users=12, n_items=15, length=5)
    batch = queries(data.sequences, [0, 1, 2], [2, 3, 4], [0, 0, 0])
    first = GRU4RecRecommender(**SMALL, dropout_input=0.2, seed=3).fit(data).score(batch)
    second = GRU4RecRecommender(**SMALL, dropout_input=0.2, seed=3).fit(data).score(batch)
    np.testing.assert_array_equal(first, second)


def test_inference_modes_differ_exactly_where_sessions_split():
    # user 0: [1 2 3 | 4 5 6], user 1: [7 8 9 10] (one session), user 2: [2 3 | 11 12]
    seq = sequences([[1, 2, 3, 4, 5, 6], [7, 8, 9, 10], [2, 3, 11, 12]], session_breaks=[(0, 3), (2, 2)])
    data = TrainingData(3, 14, seq)
    users, positions = [0, 0, 1, 2, 2], [2, 5, 3, 1, 4]
    session_starts = [0, 3, 0, 0, 2]  # queries 1 and 4 have earlier sessions behind them
    batch = queries(seq, users, positions, session_starts)

    by_user = GRU4RecRecommender(**SMALL, session_mode="user").fit(data)
    session_scores = by_user.score(batch)
    by_user.config = dataclasses.replace(by_user.config, inference_mode="sequence")
    sequence_scores = by_user.score(batch)
    differs = ~np.isclose(session_scores, sequence_scores, atol=1e-6).all(axis=1)
    assert differs.tolist() == [False, True, False, False, True]

    # trained on sessions, "sequence" resets where training did: the same as "session"
    by_session = GRU4RecRecommender(**SMALL, session_mode="session").fit(data)
    expected = by_session.score(batch)
    by_session.config = dataclasses.replace(by_session.config, inference_mode="sequence")
    np.testing.assert_allclose(by_session.score(batch), expected, atol=1e-6)


def test_history_is_capped_and_empty_context_gets_the_zero_state_scores():
    seq = sequences([[1, 2, 3, 4, 5, 6]])
    model = GRU4RecRecommender(**SMALL, inference_mode="sequence", max_history=2).fit(TrainingData(1, 8, seq))
    inputs = model.query_sequences(queries(seq, [0, 0], [5, 0], [0, 0]))
    assert inputs["items"][0, :2].tolist() == [4, 5] and inputs["mask"][0].sum() == 2
    assert inputs["mask"][1].sum() == 0
    scores = model.score(queries(seq, [0], [0], [0]))[0]
    network = model.keras_model
    np.testing.assert_allclose(
        scores, ops.convert_to_numpy(network.score_all(network.initial_state(1)[-1]))[0]
    )


def test_save_and_load_give_identical_scores(tmp_path):
    data = chains(n_users=12, n_items=15, length=5)
    model = GRU4RecRecommender(
        **SMALL, n_layers=2, embedding_dim=8, constrained_embedding=False, final_activation="tanh"
    ).fit(data)
    save_recommender(model, tmp_path / "gru4rec")
    restored = load_recommender(tmp_path / "gru4rec")
    assert isinstance(restored, GRU4RecRecommender) and restored.get_config() == model.get_config()
    batch = queries(data.sequences, [0, 3, 5], [2, 4, 0], [0, 0, 0])
    np.testing.assert_array_equal(restored.score(batch), model.score(batch))


def test_sparse_adagrad_matches_dense_adagrad():
    import keras
    import tensorflow as tf

    from movierec.models.gru4rec.training import indexed_adagrad

    sparse_var, dense_var = (
        keras.Variable(np.ones((5, 2), np.float32)),
        keras.Variable(np.ones((5, 2), np.float32)),
    )
    sparse_opt = indexed_adagrad(0.1)
    dense_opt = keras.optimizers.Adagrad(0.1, initial_accumulator_value=0.0, epsilon=1e-6)
    for values in ([[1.0, 2.0], [3.0, -1.0], [0.5, 0.5]], [[-2.0, 1.0], [1.0, 1.0], [1.0, 0.0]]):
        gradient = tf.IndexedSlices(tf.constant(values), tf.constant([1, 3, 1]), tf.constant([5, 2]))
        sparse_opt.apply([gradient], [sparse_var])
        dense_opt.apply([tf.convert_to_tensor(gradient)], [dense_var])
    np.testing.assert_allclose(ops.convert_to_numpy(sparse_var), ops.convert_to_numpy(dense_var), rtol=1e-5)


@pytest.mark.parametrize(
    "modes",
    [("session", "session"), ("session", "sequence"), ("user", "sequence")],
    ids=lambda m: "-".join(m),
)
def test_serving_scorer_reads_a_history_exactly_as_evaluation_reads_the_context(modes):
    # Serve what was evaluated: for the same context (several sessions, longer than max_history) the
    # history scorer of the export gives the scores of `score()`, and runs no padded steps.
    session_mode, inference_mode = modes
    per_user = [[1, 2, 3, 4, 5, 6, 7, 0], [3, 4, 5], [6, 7]]
    seq = sequences(per_user, session_breaks=[(0, 3), (0, 6)])
    model = GRU4RecRecommender(
        **SMALL, session_mode=session_mode, inference_mode=inference_mode, max_history=4
    ).fit(TrainingData(3, 8, seq))
    users, positions = np.array([0, 0, 0, 1, 2]), np.array([8, 5, 2, 3, 0])
    first_of_session = [max(b for b in (0, 3, 6) if b < max(p, 1)) for p in positions[:3]] + [0, 0]
    batch = queries(seq, users, positions, first_of_session)
    expected = model.score(batch)

    width = 10  # left-padded with -1, wider than any history
    items = np.full((len(users), width), -1, np.int32)
    starts = np.zeros((len(users), width), bool)
    for q, (u, p) in enumerate(zip(users, positions, strict=True)):
        rows = np.arange(seq.indptr[u], seq.indptr[u] + p)
        if p:
            items[q, -p:] = seq.items[rows]
            starts[q, -p:] = seq.session_start[rows]
    served = np.asarray(model.history_scorer()({"items": items, "session_start": starts}))
    np.testing.assert_allclose(served, expected, atol=1e-5)


def _sliced_recurrence(x, state, recurrent_kernel, h):
    """eq. (1)–(4) with slices, the cell's formulation until 2026-11-30 (the README's GRU4Rec
    figures were measured with it)."""
    recurrent = ops.matmul(state, recurrent_kernel[:, : 2 * h])
    z = ops.sigmoid(x[:, :h] + recurrent[:, :h])
    r = ops.sigmoid(x[:, h : 2 * h] + recurrent[:, h:])
    candidate = ops.tanh(x[:, 2 * h :] + ops.matmul(r * state, recurrent_kernel[:, 2 * h :]))
    return (1.0 - z) * state + z * candidate


def test_the_cells_splits_give_the_sliced_recurrences_values_and_gradients_bit_for_bit():
    """The cell splits its gates (a split's gradient is one concatenation, cheaper than the
    zero-filled tensors of slices): training must not move by one bit, or the README's figures would
    need re-measuring."""
    import tensorflow as tf

    model = GRU4Rec(30, hidden_size=16, embedding_dim=6)
    model.step(np.array([0]), model.initial_state(1))  # builds the weights
    cell = model.cells[0]
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(7, 48)).astype(np.float32))
    state = tf.constant(rng.normal(size=(7, 16)).astype(np.float32))
    upstream = tf.constant(rng.normal(size=(7, 16)).astype(np.float32))
    answers = []
    for recurrence in (
        lambda: cell.recur(x, state),
        lambda: _sliced_recurrence(x, state, cell.recurrent_kernel, 16),
    ):
        with tf.GradientTape() as tape:
            tape.watch([x, state])
            out = recurrence()
            loss = tf.reduce_sum(out * upstream)
        grads = tape.gradient(loss, [x, state, cell.recurrent_kernel])
        answers.append([out.numpy()] + [g.numpy() for g in grads])
    for split, sliced in zip(*answers, strict=True):
        np.testing.assert_array_equal(split, sliced)
