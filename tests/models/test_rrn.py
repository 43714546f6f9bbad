"""RRN (models/rrn): step sequences, the network's shapes and padding, causality, the stored states
and their updates, saving, hyper-parameter checks; one real-data test on MovieLens 100K."""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import pytest
from keras import ops
from tiny_configs import TINY_RRN

from movierec.models import RatingMFRecommender, load_model, save_model
from movierec.models.base import (
    QueryBatch,
    TrainingData,
    UserSequences,
    canonical_order,
    holdout,
    predict_ratings_at,
)
from movierec.models.rrn import RecurrentSide, RRNConfig, RRNRecommender, item_steps, user_steps
from movierec.models.rrn.network import NO_STEP
from movierec.models.rrn.state import REASONS
from movierec.models.rrn.steps import DAY, WEEK
from movierec.models.rrn.training import SideTrainer, read_states, run

TINY = TINY_RRN
N_USERS, N_ITEMS = 8, 6
START = 100 * WEEK  # a week boundary (steps count from the epoch)


def make_sequences(users, items, ratings, timestamps) -> UserSequences:
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    timestamps = np.asarray(timestamps, np.int64)
    order = canonical_order(users, timestamps, items)
    counts = np.bincount(users, minlength=N_USERS)
    return UserSequences(
        np.r_[0, np.cumsum(counts)].astype(np.int64),
        items[order].astype(np.int32),
        np.asarray(ratings, np.float32)[order],
        timestamps[order],
        np.zeros(len(order), bool),
    )


def synthetic(seed: int = 0, n: int = 240, days: int = 56) -> UserSequences:
    """Every user active on a few days out of `days`, with several ratings on some of them."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_USERS, n)
    day = rng.integers(0, days // 4, n) * 4 + users % 4  # every user skips most days
    timestamps = START + day * DAY + rng.integers(0, DAY, n)
    return make_sequences(users, rng.integers(0, N_ITEMS, n), rng.integers(1, 6, n), timestamps)


def training_path_predictions(recommender: RRNRecommender, seq: UserSequences) -> np.ndarray:
    """Each training event's prediction as training computes it (each side's probe of the event's
    own step, from the steps before it), without clipping."""
    model, config = recommender.keras_model, recommender.config
    rng = np.random.default_rng(0)
    users = SideTrainer(model, "user", seq, config, rng).dynamic_per_event()
    movies = SideTrainer(model, "movie", seq, config, rng).dynamic_per_event()
    stationary = model.stationary({"user": seq.users.astype("int32"), "item": seq.items.astype("int32")})
    return ops.convert_to_numpy(stationary) + (users * movies).sum(-1)


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return TrainingData(N_USERS, N_ITEMS, synthetic())


@pytest.fixture(scope="module")
def fitted(data, tmp_path_factory) -> str:
    """A fitted tiny RRN, saved: tests load their own copy (update_state changes states)."""
    folder = str(tmp_path_factory.mktemp("rrn"))
    RRNRecommender(**TINY).fit(data).save(folder)
    return folder


def load(folder: str) -> RRNRecommender:
    return RRNRecommender.load(folder, TINY)


# -- step sequences --------------------------------------------------------------------------------


def test_steps_skip_days_without_ratings_and_keep_the_wallclock_gap():
    t = START
    seq = make_sequences(
        users=[0, 0, 0, 0, 0, 2],
        items=[4, 1, 2, 3, 5, 1],
        ratings=[5, 3, 4, 2, 1, 4],
        timestamps=[t + 10, t + 10, t + 3 * DAY, t + 3 * DAY + 7, t + 10 * DAY, t + DAY],
    )
    steps = user_steps(seq, DAY)
    first = START // DAY
    assert steps.lengths.tolist() == [3, 0, 1] + [0] * (N_USERS - 3)
    assert steps.steps.tolist() == [first, first + 3, first + 10, first + 1]  # days 1, 2, 4–9 skipped
    assert steps.step_sizes.tolist() == [2, 2, 1, 1]
    assert steps.newbie.tolist() == [True, False, False, True]
    # τ_{t−1} is the previous *active* step (the gap stays visible); at the first step τ_{t−1} := τ_t
    assert steps.previous_steps.tolist() == [first, first, first + 3, first + 1]
    assert (steps.step_times == steps.steps * DAY).all()
    # the sparse rating vector of each step: (movie, rating) pairs, never a dense one-hot
    assert steps.other[:2].tolist() == [1, 4] and steps.ratings[:2].tolist() == [3, 5]
    assert (seq.items[steps.source] == steps.other).all()
    assert steps.last_steps().tolist()[:3] == [first + 10, -1, first + 1]
    rows, lengths = steps.padded(np.array([2, 0, 1]))
    assert rows.tolist() == [[3, -1, -1], [0, 1, 2], [-1, -1, -1]] and lengths.tolist() == [1, 3, 0]

    movies = item_steps(seq, N_ITEMS, WEEK)
    assert movies.lengths.tolist() == [0, 1, 1, 1, 1, 1]  # movie 1: one week, two users
    assert movies.step_sizes[0] == 2 and sorted(movies.other[:2].tolist()) == [0, 2]
    assert (seq.users[movies.source] == movies.other).all()


def test_sparse_input_equals_the_dense_rating_vector_product():
    side = RecurrentSide(n_inputs=6, embedding_dim=4, hidden_size=5, dynamic_dim=3)
    side.build()
    slots, others, ratings = np.array([0, 0, 2]), np.array([1, 4, 1]), np.array([5.0, 2.0, 3.0], "float32")
    dense = np.zeros((3, 6), "float32")
    dense[slots, others] = ratings
    sums = ops.convert_to_numpy(side.rating_sums(slots, others, ratings, 3))
    expected = dense @ ops.convert_to_numpy(side.rating_embedding)
    np.testing.assert_allclose(sums, expected, rtol=1e-6, atol=1e-6)
    assert not sums[1].any()  # a slot without ratings contributes nothing
    centered = RecurrentSide(n_inputs=6, embedding_dim=4, hidden_size=5, dynamic_dim=3, rating_offset=3.5)
    centered.build()
    centered.rating_embedding.assign(side.rating_embedding)
    dense[slots, others] = ratings - 3.5  # rating_input="centered": x_tj = r − μ
    np.testing.assert_allclose(
        ops.convert_to_numpy(centered.rating_sums(slots, others, ratings, 3)),
        dense @ ops.convert_to_numpy(side.rating_embedding),
        rtol=1e-6,
        atol=1e-6,
    )


def test_sequence_shapes_and_padding_never_reaches_real_steps():
    side = RecurrentSide(n_inputs=6, embedding_dim=4, hidden_size=5, dynamic_dim=3)
    side.build()
    rng = np.random.default_rng(0)
    inputs = rng.normal(size=(2, 3, 4)).astype("float32")
    features = rng.normal(size=(2, 3, 3)).astype("float32")
    zeros = np.zeros((2, 5), "float32")
    hs, cs, dynamic = side.sequence(inputs, features, zeros, zeros)
    assert tuple(hs.shape) == (2, 3, 5) and tuple(cs.shape) == (2, 3, 5) and tuple(dynamic.shape) == (2, 3, 3)
    padded_inputs = np.concatenate([inputs, 99 * np.ones((2, 4, 4), "float32")], axis=1)
    padded_features = np.concatenate([features, -99 * np.ones((2, 4, 3), "float32")], axis=1)
    hs_p, _, dynamic_p = side.sequence(padded_inputs, padded_features, zeros, zeros)
    np.testing.assert_allclose(
        ops.convert_to_numpy(hs_p)[:, :3], ops.convert_to_numpy(hs), rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(
        ops.convert_to_numpy(dynamic_p)[:, :3], ops.convert_to_numpy(dynamic), rtol=1e-6, atol=1e-6
    )
    # the probe of step 0 reads only the initial state and step 0's wall-clock, never step 0's ratings
    other_inputs = inputs.copy()
    other_inputs[:, 0] += 5
    _, _, dynamic_o = side.sequence(other_inputs, features, zeros, zeros)
    np.testing.assert_allclose(
        ops.convert_to_numpy(dynamic_o)[:, 0], ops.convert_to_numpy(dynamic)[:, 0], atol=1e-6
    )
    assert not np.allclose(ops.convert_to_numpy(dynamic_o)[:, 1], ops.convert_to_numpy(dynamic)[:, 1])


# -- causality and the stored states ------------------------------------------------------------------


def test_a_rating_never_influences_its_own_prediction(fitted, data):
    model = load(fitted)
    seq = data.sequences
    user = 0
    rows = np.arange(seq.indptr[user], seq.indptr[user + 1])
    days = seq.timestamps[rows] // DAY
    target = rows[np.flatnonzero(days > days[0])[0]]  # an event after the user's first active day
    same_step = rows[days == seq.timestamps[target] // DAY]
    later = rows[days > seq.timestamps[target] // DAY]
    before = training_path_predictions(model, seq)
    ratings = seq.ratings.copy()
    ratings[target] = 6.0 - ratings[target]  # 1 <-> 5, 2 <-> 4 (3 stays: push it to 1)
    if ratings[target] == seq.ratings[target]:
        ratings[target] = 1.0
    after = training_path_predictions(model, dataclasses.replace(seq, ratings=ratings))
    np.testing.assert_allclose(after[same_step], before[same_step], atol=1e-6)  # its own step included
    assert not np.allclose(after[later], before[later])  # while later steps read it


def test_predictions_from_states_equal_the_training_path_including_a_split_step(fitted, data):
    """States fed up to a cut (here in the middle of a day and of a week), then updated with the rest
    of that week, predict the next day's events exactly as training computes them."""
    model = load(fitted)
    seq = data.sequences
    expected = np.clip(training_path_predictions(model, seq), 1, 5)
    week_end = START + 3 * WEEK
    cut = START + 2 * WEEK + 3 * DAY + 5 * 3600
    read_states(model.keras_model, seq.select(seq.timestamps < cut))
    between = (seq.timestamps >= cut) & (seq.timestamps < week_end)
    report = model.update_state(
        seq.users[between], seq.items[between], seq.ratings[between], seq.timestamps[between]
    )
    assert report.applied == between.sum() > 0
    following = (seq.timestamps >= week_end) & (seq.timestamps < week_end + 4 * DAY)
    predicted = model.predict_ratings(seq.users[following], seq.items[following], seq.timestamps[following])
    assert following.sum() > 0
    np.testing.assert_allclose(predicted, expected[following], atol=1e-5)


def test_update_state_changes_that_users_predictions_and_no_weight(fitted):
    model = load(fitted)
    weights = [w.copy() for w in model.keras_model.get_weights()]
    trainable_before = [ops.convert_to_numpy(v).copy() for v in model.keras_model.trainable_variables]
    later = int(ops.convert_to_numpy(model.keras_model.user_states.last_time).max()) + 5 * DAY
    users = np.repeat(np.arange(N_USERS), N_ITEMS)
    items = np.tile(np.arange(N_ITEMS), N_USERS)
    times = np.full(len(users), later + WEEK)
    before = model.predict_ratings(users, items, times).reshape(N_USERS, N_ITEMS)
    report = model.update_state(
        np.array([3, 3]), np.array([2, 2]), np.array([5.0, 4.0]), np.array([later, later + 9])
    )
    assert report.applied == 2 and report.n_rejected == 0
    after = model.predict_ratings(users, items, times).reshape(N_USERS, N_ITEMS)
    assert not np.allclose(after[3], before[3])  # the user's predictions move
    others = np.arange(N_USERS) != 3
    untouched = np.arange(N_ITEMS) != 2  # movie 2's own state read the new ratings too
    np.testing.assert_array_equal(after[np.ix_(others, untouched)], before[np.ix_(others, untouched)])
    for old, new in zip(trainable_before, model.keras_model.trainable_variables, strict=True):
        np.testing.assert_array_equal(ops.convert_to_numpy(new), old)
    assert any(
        not np.array_equal(a, b) for a, b in zip(weights, model.keras_model.get_weights(), strict=True)
    )


def test_update_state_rejects_bad_events_one_by_one_with_a_reason(fitted):
    model = load(fitted)
    state_time = ops.convert_to_numpy(model.keras_model.user_states.last_time)
    movie_time = ops.convert_to_numpy(model.keras_model.movie_states.last_time)
    user, movie = int(np.argmin(state_time)), int(np.argmax(movie_time))
    late = int(max(state_time.max(), movie_time.max())) + DAY
    events = [  # (user, item, rating, timestamp, reason or None)
        (user, 0, 4.0, late, None),
        (N_USERS, 0, 4.0, late, "unknown user"),
        (-1, 0, 4.0, late, "unknown user"),
        (user, N_ITEMS, 4.0, late, "unknown item"),
        (user, 0, 7.0, late, "rating outside the scale"),
        (user, 0, float("nan"), late, "rating outside the scale"),
        (user, 0, 4.0, late + 0.5, "timestamp missing or not an integer"),
        (
            int(np.argmax(state_time)),
            0,
            4.0,
            int(state_time.max()) - 1,
            "timestamp earlier than the user's state",
        ),
        (user, movie, 3.0, int(movie_time[movie]) - 1, "timestamp earlier than the movie's state"),
        (user, 1, 2.0, late + DAY, None),
    ]
    if int(movie_time[movie]) - 1 < state_time[user]:
        pytest.skip("synthetic data: the latest movie is not later than the earliest user")
    users, items, ratings, times, reasons = zip(*events, strict=True)
    report = model.update_state(
        np.array(users), np.array(items), np.array(ratings), np.array(times, dtype=np.float64)
    )
    assert report.received == len(events) and report.applied == 2
    expected = {reason: sum(r == reason for r in reasons) for reason in REASONS}
    assert report.rejected == expected
    assert report.rejected_rows.tolist() == [k for k, r in enumerate(reasons) if r is not None]
    assert report.rejected_reasons.tolist() == [r for r in reasons if r is not None]
    assert ops.convert_to_numpy(model.keras_model.user_states.last_time)[user] == late + DAY


def test_keras_round_trip_predicts_identically_with_updated_states(fitted, data, tmp_path):
    model = load(fitted)
    late = int(ops.convert_to_numpy(model.keras_model.user_states.last_time).max()) + DAY
    model.update_state(np.array([1, 2]), np.array([0, 5]), np.array([2.0, 5.0]), np.array([late, late]))
    save_model(model, tmp_path)  # through the registry: model.keras (weights and states) + manifest
    loaded = load_model(tmp_path)
    assert isinstance(loaded, RRNRecommender) and loaded.get_config() == model.get_config()
    users, items = np.arange(N_USERS).repeat(2), np.tile([0, 5], N_USERS)
    times = np.full(len(users), late + 2 * WEEK)
    np.testing.assert_array_equal(
        loaded.predict_ratings(users, items, times), model.predict_ratings(users, items, times)
    )
    seq = data.sequences
    batch = QueryBatch(np.arange(N_USERS), np.zeros(N_USERS, np.int64), np.zeros(N_USERS, np.int64), seq)
    scores = model.score(batch)
    assert scores.shape == (N_USERS, N_ITEMS) and scores.dtype == np.float32
    np.testing.assert_array_equal(loaded.score(batch), scores)
    # score() ranks by the rating predicted at the query's time (here each user's first event)
    first_times = seq.timestamps[seq.indptr[:-1]]
    np.testing.assert_allclose(
        scores.ravel(),
        model.predict_ratings(
            np.arange(N_USERS).repeat(N_ITEMS),
            np.tile(np.arange(N_ITEMS), N_USERS),
            first_times.repeat(N_ITEMS),
        ),
        atol=1e-5,
    )


# -- training ------------------------------------------------------------------------------------


def test_a_non_finite_loss_stops_training_naming_the_epoch(data):
    ratings = data.sequences.ratings.copy()
    ratings[7] = np.nan
    broken = TrainingData(N_USERS, N_ITEMS, dataclasses.replace(data.sequences, ratings=ratings))
    with pytest.raises(FloatingPointError, match="epoch 1"):
        RRNRecommender(**{**TINY, "pmf_epochs": 0}).fit(broken)


@pytest.mark.parametrize(
    ("argument", "value"),
    [
        ("hidden_size", 0),
        ("embedding_dim", -3),
        ("user_step", 0),
        ("epochs", 2.5),
        ("learning_rate", 0.0),
        ("l2", -1e-3),
        ("validation_fraction", 1.0),
        ("input_scaling", "max"),
        ("rating_input", "signed"),
        ("clipnorm", float("inf")),
    ],
)
def test_config_errors_name_the_argument(argument, value):
    with pytest.raises(ValueError, match=argument):
        RRNRecommender(**{argument: value})
    with pytest.raises(ValueError, match=argument):
        RRNConfig(**{argument: value})


def test_unknown_hyper_parameters_are_named():
    with pytest.raises(ValueError, match="hiden_size"):
        RRNRecommender(hiden_size=10)
    assert RRNRecommender().get_config() == dataclasses.asdict(RRNConfig())


@pytest.mark.slow
def test_a_few_epochs_lower_the_validation_rmse_on_movielens(ml100k_dir):
    """Real data: trained on the temporal protocol's training events minus their latest 10%, which
    are predicted from the earlier events' states; two epochs of the networks beat PMF alone."""
    from movierec.data import load_dataset
    from movierec.evaluation.experiment import prepare

    _, stream = prepare(load_dataset(str(ml100k_dir)), "temporal")
    train = stream.training_data()
    head, later = holdout(train.sequences, 0.1)
    seq = train.sequences
    seen_users = np.bincount(head.users, minlength=train.n_users) > 0
    seen_items = np.bincount(head.items, minlength=train.n_items) > 0
    keep = later & seen_users[seq.users] & seen_items[seq.items]
    validation = (seq.users[keep], seq.items[keep], seq.ratings[keep], seq.timestamps[keep])
    keras.utils.set_random_seed(0)
    _, log = run(head, train.n_users, train.n_items, RRNConfig(pmf_epochs=10), 2, validation)
    rmse = [e["validation_rmse"] for e in log.epochs]
    assert len(rmse) == 3 and rmse[0] < 1.0  # epoch 0: PMF with untrained networks
    assert rmse[2] < rmse[0] - 0.005, rmse


def test_steps_of_a_state_never_go_back(fitted):
    model = load(fitted).keras_model
    last = ops.convert_to_numpy(model.user_states.last_step)
    previous = ops.convert_to_numpy(model.user_states.previous_step)
    has = last != NO_STEP
    assert has.all() and (previous[has] < last[has]).all()


def test_rating_evaluation_passes_timestamps_to_the_models_that_take_them(fitted, data):
    seq = data.sequences
    rrn = load(fitted)
    later = seq.timestamps + 20 * WEEK
    np.testing.assert_array_equal(
        predict_ratings_at(rrn, seq.users, seq.items, later), rrn.predict_ratings(seq.users, seq.items, later)
    )
    assert not np.allclose(
        predict_ratings_at(rrn, seq.users, seq.items, later),
        rrn.predict_ratings(seq.users, seq.items, seq.timestamps),
    )
    mf = RatingMFRecommender(epochs=1).fit(data)  # time-independent: its signature has no timestamps
    np.testing.assert_array_equal(
        predict_ratings_at(mf, seq.users, seq.items, later), mf.predict_ratings(seq.users, seq.items)
    )


def test_update_state_rejects_timestamps_from_the_future_and_keeps_the_states_time(fitted):
    model = load(fitted)
    now = model.now()
    # milliseconds sent to a model of seconds: accepted, it would lock every later real event out
    report = model.update_state(np.array([3]), np.array([2]), np.array([4.0]), np.array([now * 1000]))
    assert report.applied == 0 and report.rejected["timestamp later than the wall clock"] == 1
    assert model.now() == now
    later = model.update_state(np.array([3]), np.array([2]), np.array([4.0]), np.array([now + DAY]))
    assert later.applied == 1
