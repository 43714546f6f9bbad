"""LSTM+CNN (models/lstm_cnn): shapes, causal histories (the target and its same-second events never
enter), the .keras round trip, missing side tables, config errors; one real-data test on ML-100K."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from movierec.models import LSTMCNNConfig, LSTMCNNRecommender, build_model, load_model, save_model
from movierec.models.base import QueryBatch, SideFeatures, TrainingData, UserSequences, canonical_order
from movierec.models.lstm_cnn import LikedHistory

N_USERS, N_ITEMS, TITLE_LENGTH = 6, 9, 5
TINY = {
    "embedding_dim": 4,
    "feature_dim": 8,
    "title_windows": "2,3",
    "title_filters": 3,
    "lstm_units": 4,
    "head_units": 4,
    "max_history": 4,
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 0.01,
    "validation_fraction": 0.0,
}


def make_sequences(users, items, ratings, timestamps) -> UserSequences:
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    timestamps = np.asarray(timestamps, np.int64)
    order = canonical_order(users, timestamps, items)
    return UserSequences(
        np.r_[0, np.cumsum(np.bincount(users, minlength=N_USERS))].astype(np.int64),
        items[order].astype(np.int32),
        np.asarray(ratings, np.float32)[order],
        timestamps[order],
        np.zeros(len(order), bool),
    )


def synthetic(seed: int = 0, n: int = 120) -> UserSequences:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_USERS, n)
    timestamps = rng.integers(0, 40, n) * 10  # many same-second events
    return make_sequences(users, rng.integers(0, N_ITEMS, n), rng.integers(1, 6, n), timestamps)


def side_features(users: bool = True, titles: bool = True) -> SideFeatures:
    rng = np.random.default_rng(1)
    words = rng.integers(1, 7, (N_ITEMS, TITLE_LENGTH)).astype(np.int32)
    words[:, 3:] = 0  # padding
    return SideFeatures(
        item_genres=rng.integers(0, 2, (N_ITEMS, 4)).astype(np.int8),
        item_title_words=words if titles else None,
        user_gender=rng.integers(0, 3, N_USERS).astype(np.int32) if users else None,
        user_age_band=rng.integers(0, 8, N_USERS).astype(np.int32) if users else None,
        user_occupation=rng.integers(0, 4, N_USERS).astype(np.int32) if users else None,
        vocabularies={
            "item_genres": ["a", "b", "c", "d"],
            **({"item_title_words": ["<pad>", "<oov>", "w2", "w3", "w4", "w5", "w6"]} if titles else {}),
            **(
                {
                    "user_gender": ["<unknown>", "F", "M"],
                    "user_age_band": ["<unknown>", *"1234567"],
                    "user_occupation": ["<unknown>", "x", "y", "z"],
                }
                if users
                else {}
            ),
        },
    )


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return TrainingData(N_USERS, N_ITEMS, synthetic(), side_features())


@pytest.fixture(scope="module")
def fitted(data) -> LSTMCNNRecommender:
    return LSTMCNNRecommender(**TINY).fit(data)


def test_liked_history_windows_hold_strictly_earlier_liked_events_only():
    seq = make_sequences([0, 0, 0, 0, 1], [1, 2, 3, 4, 5], [5, 2, 4, 3, 5], [10, 20, 20, 30, 10])
    history = LikedHistory.from_sequences(seq, threshold=3.0)
    assert history.items.tolist() == [1, 3, 4, 5]  # item 2 rated 2 is not liked
    counts = history.counts_before(np.array([0, 0, 0, 0, 1]), np.array([10, 20, 21, 99, 10]))
    assert counts.tolist() == [0, 1, 2, 3, 0]  # at t=20 the same-second item 3 is not history
    windows = history.windows(np.array([0, 0]), np.array([3, 1]), max_history=2)
    assert history.items[windows[0]].tolist() == [3, 4] and windows[1].tolist() == [0, -1]


def test_a_history_window_never_splits_a_same_second_group():
    # user 0 liked 1 at t=10, then 2, 3, 4 in the same second t=20, then 5 at t=30
    seq = make_sequences([0] * 5 + [1], [1, 2, 3, 4, 5, 6], [5] * 6, [10, 20, 20, 20, 30, 20])
    history = LikedHistory.from_sequences(seq, threshold=3.0)
    windows = history.windows(np.array([0, 0, 0, 1]), np.array([5, 5, 4, 1]), max_history=3)
    items = [[history.items[r] for r in row if r >= 0] for row in windows.tolist()]
    # 3 latest of 5: the cut would keep 2 of the t=20 group, so only item 5 is left
    assert items[0] == [5]
    assert items[1:] == [[5], [2, 3, 4], [6]]  # a window that starts at a group keeps all of it
    windows = history.windows(np.array([0, 0]), np.array([5, 4]), max_history=4)
    items = [[history.items[r] for r in row if r >= 0] for row in windows.tolist()]
    assert items == [[2, 3, 4, 5], [1, 2, 3, 4]]
    windows = history.windows(np.array([0]), np.array([4]), max_history=2)
    assert (windows == -1).all()  # the whole window would be part of the t=20 group


def test_shapes_and_rating_scale(fitted, data):
    seq = data.sequences
    predicted = fitted.predict_ratings(seq.users[:7], seq.items[:7], seq.timestamps[:7])
    assert predicted.shape == (7,) and predicted.dtype == np.float32
    assert (predicted >= seq.ratings.min()).all() and (predicted <= seq.ratings.max()).all()
    batch = QueryBatch(np.array([0, 1, 2]), np.array([0, 2, 3]), np.zeros(3, np.int64), seq)
    scores = fitted.score(batch)
    assert scores.shape == (3, N_ITEMS) and scores.dtype == np.float32 and np.isfinite(scores).all()
    assert fitted.training_log["inputs"]["title_cnn"] and len(fitted.training_log["epochs"]) == 2


def test_the_target_and_its_same_second_events_never_enter_the_history(fitted):
    predictor, _ = fitted._ready()
    # user 0 liked item 1 (t=10), then items 2 and 3 in one second (t=20)
    tied = LikedHistory.from_sequences(make_sequences([0, 0, 0], [1, 2, 3], [5, 5, 5], [10, 20, 20]), 3.0)
    only_first = LikedHistory.from_sequences(make_sequences([0], [1], [5], [10]), 3.0)
    users, times = np.array([0, 0]), np.array([20, 20])
    for items in (np.array([4, 4]), np.array([2, 3])):  # another item, and the tied items themselves
        counts = tied.counts_before(users, times)
        assert counts.tolist() == [1, 1]
        np.testing.assert_allclose(
            predictor.ratings(tied, users, items, counts),
            predictor.ratings(only_first, users, items, np.array([1, 1])),
            rtol=1e-6,
        )
    # perturbing the target's own rating changes nothing for its prediction
    perturbed = LikedHistory.from_sequences(
        make_sequences([0, 0, 0], [1, 2, 3], [5, 1, 5], [10, 20, 20]), 3.0
    )
    users, items, times = np.array([0]), np.array([2]), np.array([20])
    np.testing.assert_allclose(
        predictor.ratings(tied, users, items, tied.counts_before(users, times)),
        predictor.ratings(perturbed, users, items, perturbed.counts_before(users, times)),
        rtol=1e-6,
    )


def test_a_targets_own_rating_and_ties_do_not_change_its_prediction_after_training(data):
    """End to end: change one training rating (and its tied neighbour's) and refit with the same seed;
    the stored history then differs, but that event's own prediction reads only earlier events."""
    seq = data.sequences
    event = int(np.flatnonzero(seq.users == 0)[-1])  # user 0's latest event
    start, stop = seq.tie_groups[0][event], seq.tie_groups[1][event]
    model = LSTMCNNRecommender(**TINY).fit(data)
    predictor, history = model._ready()
    user, time = seq.users[event : event + 1], seq.timestamps[event : event + 1]
    flipped = seq.ratings.copy()
    flipped[start:stop] = np.where(flipped[start:stop] >= 3, 1.0, 5.0)
    other = LikedHistory.from_sequences(dataclasses.replace(seq, ratings=flipped), 3.0)
    item = seq.items[event : event + 1]
    assert predictor.ratings(history, user, item, history.counts_before(user, time)) == pytest.approx(
        predictor.ratings(other, user, item, other.counts_before(user, time))
    )
    # the query form: a query at the tie group's start sees none of the group
    batch = QueryBatch(user.astype(np.int64), np.array([start - seq.indptr[0]]), np.zeros(1, np.int64), seq)
    batch_flipped = QueryBatch(
        batch.users, batch.positions, batch.session_starts, dataclasses.replace(seq, ratings=flipped)
    )
    np.testing.assert_allclose(model.score(batch), model.score(batch_flipped), rtol=1e-6)


def test_keras_round_trip_gives_identical_predictions_and_keeps_vocabularies(fitted, data, tmp_path):
    save_model(fitted, tmp_path)
    loaded = load_model(tmp_path)
    seq = data.sequences
    np.testing.assert_array_equal(
        fitted.predict_ratings(seq.users, seq.items, seq.timestamps),
        loaded.predict_ratings(seq.users, seq.items, seq.timestamps),
    )
    batch = QueryBatch(np.arange(N_USERS), np.full(N_USERS, 2), np.zeros(N_USERS, np.int64), seq)
    np.testing.assert_array_equal(fitted.score(batch), loaded.score(batch))
    assert loaded.keras_model.vocabularies["item_title_words"][:2] == ["<pad>", "<oov>"]
    assert loaded.get_config() == fitted.get_config()


@pytest.mark.parametrize(
    "users, titles, side", [(False, True, True), (True, False, True), (False, False, False)]
)
def test_missing_users_table_or_titles_still_trains(users, titles, side):
    seq = synthetic(seed=2)
    features = side_features(users=users, titles=titles) if side else None
    model = LSTMCNNRecommender(**{**TINY, "epochs": 1}).fit(TrainingData(N_USERS, N_ITEMS, seq, features))
    inputs = model.training_log["inputs"]
    assert inputs["title_cnn"] == titles and bool(inputs["user_fields"]) == users
    assert inputs["genres"] == side
    assert np.isfinite(model.predict_ratings(seq.users[:5], seq.items[:5], seq.timestamps[:5])).all()


def test_best_epoch_is_chosen_on_held_out_later_training_ratings(data):
    model = LSTMCNNRecommender(**{**TINY, "epochs": 2, "validation_fraction": 0.2}).fit(data)
    log = model.training_log
    assert log["best_epoch"] in (1, 2) and len(log["selection"]) == 2 and log["validation_events"] > 0
    assert len(log["epochs"]) == log["best_epoch"]


def test_config_errors_name_the_argument():
    with pytest.raises(ValueError, match="lstm-cnn: title_windows must be comma-separated"):
        LSTMCNNConfig(title_windows="2,x")
    with pytest.raises(ValueError, match="lstm-cnn: max_history must be an integer >= 1"):
        build_model("lstm-cnn", max_history=0)
    with pytest.raises(ValueError, match="lstm-cnn: dropout must be in \\[0, 1\\)"):
        build_model("lstm-cnn", dropout=1.0)
    with pytest.raises(ValueError, match="lstm-cnn: lstm_units must be int"):
        build_model("lstm-cnn", lstm_units="64")


def test_nan_loss_names_the_epoch(data):
    bad = dataclasses.replace(data.sequences, ratings=np.full(len(data.sequences.items), np.nan, np.float32))
    with pytest.raises(FloatingPointError, match="lstm-cnn: the training loss became nan in epoch 1"):
        LSTMCNNRecommender(**TINY).fit(dataclasses.replace(data, sequences=bad))


def test_a_few_epochs_lower_validation_rmse_on_ml100k(ml100k_dir):
    """Two epochs of a small LSTM+CNN predict validation users' ratings better than the training mean
    (the untrained model's output: the head's bias starts there)."""
    from movierec.constants import VALIDATION
    from movierec.data import load_dataset
    from movierec.data.side_features import build_side_features
    from movierec.evaluation.experiment import evaluate_ratings, prepare

    dataset = load_dataset(ml100k_dir)
    _, stream = prepare(dataset, "temporal")
    data = dataclasses.replace(stream.training_data(), side_features=build_side_features(dataset, stream))
    small = {**TINY, "feature_dim": 32, "embedding_dim": 16, "lstm_units": 16, "batch_size": 512}
    trained = LSTMCNNRecommender(**{**small, "epochs": 2, "learning_rate": 3e-3}).fit(data)
    events = stream.roles == VALIDATION
    mean = float(data.sequences.ratings.mean())
    baseline = float(np.sqrt(np.mean((stream.sequences.ratings[events] - mean) ** 2)))
    after = evaluate_ratings(trained, stream, VALIDATION)["rmse"]
    assert after < baseline - 0.03, (baseline, after)
