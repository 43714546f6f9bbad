"""IARN (models/iarn): the interacting gates (in (0, 1), they move with the paired sequence; TAGM's do
not), padding (gate 0, no influence), causality (the target's second and later never matter), the
staged catalogue scorer against the plain forward pass, the .keras round trip, gradients, config
errors, the registry, explanations; the genre hierarchy against ML-100K's genre file."""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from movierec.models import build_model, get_spec, load_model, save_model
from movierec.models.base import QueryBatch, SideFeatures, TrainingData, UserSequences, canonical_order
from movierec.models.iarn import GENRE_GROUPS, EventHistory, IARNConfig, IARNRecommender, genre_parents
from movierec.models.iarn.inference import Predictor
from movierec.models.iarn.training import Trainer, new_model

N_USERS, N_ITEMS = 6, 9
GENRES = ["Action", "Children's", "Drama", "Horror"]
TINY = {
    "embedding_dim": 4,
    "hidden_size": 5,
    "latent_dim": 3,
    "attention_units": 4,
    "max_history": 6,
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 0.01,
    "dropout": 0.0,
    "validation_fraction": 0.0,
}
DATA_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "ml-100k")


def make_sequences(users, items, ratings, timestamps, n_users: int = N_USERS) -> UserSequences:
    users, items = np.asarray(users, np.int64), np.asarray(items, np.int64)
    timestamps = np.asarray(timestamps, np.int64)
    order = canonical_order(users, timestamps, items)
    return UserSequences(
        np.r_[0, np.cumsum(np.bincount(users, minlength=n_users))].astype(np.int64),
        items[order].astype(np.int32),
        np.asarray(ratings, np.float32)[order],
        timestamps[order],
        np.zeros(len(order), bool),
    )


def synthetic(seed: int = 0, n: int = 120) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    users = rng.integers(0, N_USERS, n)
    timestamps = rng.integers(0, 40, n) * 10  # many same-second events
    return users, rng.integers(0, N_ITEMS, n), rng.integers(1, 6, n), timestamps


def side_features() -> SideFeatures:
    genres = np.random.default_rng(1).integers(0, 2, (N_ITEMS, len(GENRES))).astype(np.int8)
    genres[0] = 0  # an item without a genre: the encoder's extra projection
    return SideFeatures(item_genres=genres, vocabularies={"item_genres": list(GENRES)})


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return TrainingData(N_USERS, N_ITEMS, make_sequences(*synthetic()), side_features())


@pytest.fixture(scope="module")
def fitted(data) -> IARNRecommender:
    return IARNRecommender(**TINY).fit(data)


def pair_inputs(user_items, item_users, item: int = 1, width: int | None = None) -> dict[str, np.ndarray]:
    """One pair's forward inputs, each history right-padded with -1 to `width`."""

    def padded(ids):
        row = np.full(width or len(ids), -1, np.int32)
        row[: len(ids)] = ids
        return row[None, :]

    u, v = padded(user_items), padded(item_users)
    return {
        "user_items": u,
        "user_ratings": np.where(u >= 0, 4.0, 0.0).astype(np.float32),
        "item_users": v,
        "item_ratings": np.where(v >= 0, 3.0, 0.0).astype(np.float32),
        "items": np.array([item], np.int32),
    }


def forward(model, inputs):
    rating, user_gates, item_gates = model.forward(inputs, training=False)
    return (
        float(ops.convert_to_numpy(rating)[0]),
        ops.convert_to_numpy(user_gates)[0],
        ops.convert_to_numpy(item_gates)[0],
    )


def untrained(data, **overrides):
    return new_model(data, IARNConfig(**{**TINY, **overrides}))[0]


def test_gates_lie_in_the_unit_interval_and_move_with_the_paired_sequence(data):
    model = untrained(data)
    _, user_gates, item_gates = forward(model, pair_inputs([1, 2, 3], [0, 4]))
    assert np.all((user_gates > 0) & (user_gates < 1)) and np.all((item_gates > 0) & (item_gates < 1))
    # the user's gates see the item's sequence (eq. 6), the item's gates the user's (eq. 8)
    _, user_gates_2, _ = forward(model, pair_inputs([1, 2, 3], [5, 2]))
    assert not np.allclose(user_gates, user_gates_2, atol=1e-6)
    _, _, item_gates_3 = forward(model, pair_inputs([7, 8, 6], [0, 4]))
    assert not np.allclose(item_gates, item_gates_3, atol=1e-6)


def test_tagm_gates_ignore_the_paired_side(data):
    model = untrained(data, backbone="tagm")
    assert not hasattr(model, "paired_fusion")
    _, user_gates, item_gates = forward(model, pair_inputs([1, 2, 3], [0, 4]))
    _, user_gates_2, _ = forward(model, pair_inputs([1, 2, 3], [5, 2, 1]))
    _, _, item_gates_2 = forward(model, pair_inputs([7, 8], [0, 4]))
    np.testing.assert_array_equal(user_gates, user_gates_2[:3])
    np.testing.assert_array_equal(item_gates, item_gates_2)
    assert np.all((user_gates > 0) & (user_gates < 1))


@pytest.mark.parametrize("backbone", ["iarn", "tagm", "rnn", "lstm"])
def test_padded_steps_get_gate_zero_and_have_no_influence(data, backbone):
    model = untrained(data, backbone=backbone, rating_input=True)
    rating, user_gates, item_gates = forward(model, pair_inputs([1, 2, 3], [0, 4]))
    padded_inputs = pair_inputs([1, 2, 3], [0, 4], width=7)
    padded_inputs["user_ratings"][0, 3:] = 99.0  # whatever sits under padding is never read
    padded_inputs["item_ratings"][0, 2:] = -7.0
    padded, user_padded, item_padded = forward(model, padded_inputs)
    assert padded == pytest.approx(rating, abs=1e-6)
    np.testing.assert_allclose(user_padded[:3], user_gates, atol=1e-6)
    np.testing.assert_allclose(item_padded[:2], item_gates, atol=1e-6)
    assert np.all(user_padded[3:] == 0) and np.all(item_padded[2:] == 0)
    # an empty history is all padding: a finite prediction, every gate 0
    empty, user_empty, item_empty = forward(model, pair_inputs([], [], width=3))
    assert np.isfinite(empty) and not user_empty.any() and not item_empty.any()


def test_same_second_and_later_events_never_change_a_prediction(data, fitted):
    model = fitted.keras_model
    seq = data.sequences
    t = int(np.median(seq.timestamps))
    user, item = 2, 3
    base = Predictor(model, seq, TINY["max_history"]).raw_ratings([user], [item], [t])
    users, items, ratings, timestamps = (seq.users, seq.items, seq.ratings, seq.timestamps)
    # the user rates another movie in the same second and later; other users rate the item then
    extra = ([user, user, 0, 1], [5, 6, item, item], [1, 5, 1, 5], [t, t + 10, t, t + 30])
    later = make_sequences(
        *(np.r_[a, b] for a, b in zip((users, items, ratings, timestamps), extra, strict=True))
    )
    assert Predictor(model, later, TINY["max_history"]).raw_ratings([user], [item], [t]) == pytest.approx(
        base
    )
    # an earlier event does change it: the histories are really read
    earlier = make_sequences(
        *(
            np.r_[a, b]
            for a, b in zip((users, items, ratings, timestamps), ([user], [item], [5], [t - 1]), strict=True)
        )
    )
    assert Predictor(model, earlier, TINY["max_history"]).raw_ratings([user], [item], [t]) != pytest.approx(
        base
    )


def test_a_query_reads_only_its_visible_context(data, fitted):
    seq = data.sequences
    user = int(np.argmax(np.diff(seq.indptr)))
    position = int(np.diff(seq.indptr)[user] // 2)
    batch = QueryBatch(np.array([user]), np.array([position]), np.array([0]), seq)
    scores = fitted.score(batch)
    # rewrite everything from the target on: different items, ratings, later times
    changed = seq.items.copy(), seq.ratings.copy()
    rows = np.arange(seq.indptr[user] + position, seq.indptr[user + 1])
    changed[0][rows] = (changed[0][rows] + 1) % N_ITEMS
    changed[1][rows] = 6 - changed[1][rows]
    other = dataclasses.replace(seq, items=changed[0], ratings=changed[1])
    np.testing.assert_array_equal(
        fitted.score(QueryBatch(batch.users, batch.positions, batch.session_starts, other)), scores
    )
    assert scores.shape == (1, N_ITEMS) and np.isfinite(scores).all()


@pytest.mark.parametrize("backbone", ["iarn", "tagm"])
def test_the_catalogue_scorer_equals_the_forward_pass(data, backbone):
    model = IARNRecommender(**{**TINY, "backbone": backbone}).fit(data)
    seq = data.sequences
    users = np.array([0, 3, 5])
    lengths = np.diff(seq.indptr)[users]
    batch = QueryBatch(users, lengths, np.zeros(3, np.int64), seq)  # every training event visible
    scores = model.score(batch)
    now = np.full(N_ITEMS, model.now())
    for row, user in enumerate(users):
        expected = model._ready().raw_ratings(np.full(N_ITEMS, user), np.arange(N_ITEMS), now)
        np.testing.assert_allclose(scores[row], expected, rtol=1e-5, atol=1e-5)


def test_save_load_round_trip_gives_identical_predictions(data, fitted, tmp_path):
    save_model(fitted, tmp_path / "iarn")
    loaded = load_model(tmp_path / "iarn")
    assert isinstance(loaded, IARNRecommender) and loaded.get_config() == fitted.get_config()
    seq = data.sequences
    np.testing.assert_array_equal(
        loaded.predict_ratings(seq.users, seq.items, seq.timestamps),
        fitted.predict_ratings(seq.users, seq.items, seq.timestamps),
    )
    batch = QueryBatch(np.array([1, 4]), np.array([3, 5]), np.zeros(2, np.int64), seq)
    np.testing.assert_array_equal(loaded.score(batch), fitted.score(batch))
    assert loaded.explain(1, 2) == fitted.explain(1, 2)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"features": "hierarchical"},
        {"features": "none"},
        {"backbone": "tagm"},
        {"backbone": "rnn"},
        {"backbone": "lstm", "rating_input": True},
    ],
)
def test_the_gradient_reaches_every_trainable_weight(data, overrides):
    config = IARNConfig(**{**TINY, **overrides})
    model, _ = new_model(data, config)
    trainer = Trainer(model, data, config, np.random.default_rng(0))
    rows = np.arange(len(data.sequences.items))
    inputs = trainer.batch(rows, trainer.user_history, trainer.item_history)
    names = ("user_items", "user_ratings", "item_users", "item_ratings", "items")
    with tf.GradientTape() as tape:
        predicted = model(dict(zip(names, inputs[:5], strict=True)), training=True)
        loss = ops.mean(ops.square(inputs[5] - predicted))
    grads = tape.gradient(loss, model.trainable_variables)
    dead = [
        v.path
        for v, g in zip(model.trainable_variables, grads, strict=True)
        if g is None or not np.any(ops.convert_to_numpy(tf.convert_to_tensor(g)))
    ]
    assert not dead


def test_config_errors_name_the_argument():
    for hparams, argument in [
        ({"backbone": "gru"}, "backbone"),
        ({"features": "deep"}, "features"),
        ({"max_history": 0}, "max_history"),
        ({"dropout": 1.0}, "dropout"),
        ({"clip_value": -1.0}, "clip_value"),
        ({"hidden_size": 2.5}, "hidden_size"),
        ({"window": 3}, "window"),
    ]:
        with pytest.raises(ValueError, match=argument):
            IARNRecommender(**hparams)


def test_the_registry_builds_it():
    model = build_model("iarn", max_history=7)
    assert isinstance(model, IARNRecommender) and model.config.max_history == 7
    assert get_spec("iarn").rating


def test_a_non_finite_loss_stops_training_naming_the_epoch(data, monkeypatch):
    monkeypatch.setattr(Trainer, "epoch", lambda self: float("nan"))
    with pytest.raises(FloatingPointError, match="epoch 1"):
        IARNRecommender(**TINY).fit(data)


def test_fit_picks_the_epoch_on_held_out_training_ratings_then_refits(data):
    model = IARNRecommender(**{**TINY, "validation_fraction": 0.25, "epochs": 3}).fit(data)
    log = model.training_log
    assert len(log["selection"]) == 3 and 1 <= log["best_epoch"] <= 3
    assert len(log["epochs"]) == log["best_epoch"] and log["validation_events"] > 0


def test_explain_returns_both_histories_with_gates_and_the_prediction(data, fitted):
    seq = data.sequences
    t = int(np.quantile(seq.timestamps, 0.7))
    found = fitted.explain(2, 3, t)
    assert found["predicted_rating"] == pytest.approx(float(fitted.predict_ratings([2], [3], [t])[0]))
    user_rows = np.arange(seq.indptr[2], seq.indptr[3])
    earlier = user_rows[seq.timestamps[user_rows] < t][-TINY["max_history"] :]
    assert [e["item"] for e in found["user_history"]] == seq.items[earlier].tolist()
    raters = np.flatnonzero((seq.items == 3) & (seq.timestamps < t))
    raters = raters[np.lexsort((seq.users[raters], seq.timestamps[raters]))][-TINY["max_history"] :]
    assert [e["user"] for e in found["item_history"]] == seq.users[raters].tolist()
    assert found["user_history"] and found["item_history"]
    for event in found["user_history"] + found["item_history"]:
        assert event["timestamp"] < t and 0 < event["gate"] < 1


def test_event_history_counts_only_strictly_earlier_events():
    seq = make_sequences([0, 0, 0, 1], [1, 2, 3, 1], [1, 2, 3, 4], [10, 20, 20, 5], n_users=2)
    users = EventHistory.of_users(seq)
    assert users.counts_before([0, 0, 0, 1], [10, 20, 21, 5]).tolist() == [0, 1, 3, 0]
    items = EventHistory.of_items(seq, 4)
    assert items.counts_before([1, 1], [10, 11]).tolist() == [1, 2]  # user 1 at 5, user 0 at 10
    rows = items.windows([1], [2], 1)
    assert items.others[rows[0]].tolist() == [0]  # the latest one only


def test_the_genre_hierarchy_has_every_movielens_genre():
    assert genre_parents(["Children's", "Childrens", "sci-fi", "IMAX"]).tolist() == [3, 3, 2, 7]
    path = os.path.join(DATA_DIR, "u.genre")
    if not os.path.exists(path):
        pytest.skip("ML-100K is not in ../shared/data")
    with open(path, encoding="latin-1") as lines:
        names = [line.split("|")[0] for line in lines if line.strip()]
    parents = genre_parents(names)
    named = {g for genres in GENRE_GROUPS.values() for g in genres}
    assert set(names) - {"unknown"} <= named and (parents[[n != "unknown" for n in names]] != 7).all()
