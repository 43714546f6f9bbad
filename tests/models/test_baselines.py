"""Baselines and matrix factorisation on tiny hand-made streams whose right answers are known."""

import numpy as np
import pytest

from movierec.models import (
    BPRMFRecommender,
    ItemKNN,
    Popularity,
    QueryBatch,
    RatingMFRecommender,
    SessionPopularity,
    TrainingData,
    UserSequences,
    build_model,
    load_model,
    save_model,
)
from movierec.models.base import gather_ranges


def sequences(per_user, gap_after=()):
    return UserSequences.from_lists(per_user, session_breaks=gap_after)


def batch(seq, users, positions, session_starts=None):
    users, positions = np.asarray(users), np.asarray(positions)
    starts = np.zeros_like(positions) if session_starts is None else np.asarray(session_starts)
    return QueryBatch(users, positions, starts, seq)


def test_gather_ranges():
    assert gather_ranges(np.array([5, 0, 9]), np.array([2, 0, 3])).tolist() == [5, 6, 9, 10, 11]


def test_popularity_ranks_by_training_counts():
    seq = sequences([[0, 1, 1], [1, 2]])
    model = Popularity().fit(TrainingData(2, 4, seq))
    scores = model.score(batch(seq, [0, 1], [1, 1]))
    assert scores.shape == (2, 4)
    assert scores[0].tolist() == [1, 3, 1, 0]


def test_session_popularity_counts_the_current_session_then_popularity():
    seq = sequences([[3, 3, 2, 0, 0, 1]], gap_after=[(0, 3)])  # sessions [3 3 2] [0 0 1]
    model = SessionPopularity().fit(TrainingData(1, 4, seq))
    scores = model.score(batch(seq, [0], [5], session_starts=[3]))[0]
    # session so far: 0, 0 -> item 0 first; then by global counts 3 (2 events) > 1 = 2 (1 event)
    assert np.argsort(-scores, kind="stable").tolist() == [0, 3, 1, 2]


def test_item_knn_uses_regularised_session_cooccurrence():
    seq = sequences([[0, 1], [0, 1], [0, 2]], gap_after=[])
    model = ItemKNN(regularization=0.0).fit(TrainingData(3, 4, seq))
    sim = model.similarity.toarray()
    assert sim[0, 1] == pytest.approx(2 / np.sqrt(3 * 2), rel=1e-5)
    assert sim[0, 2] == pytest.approx(1 / np.sqrt(3 * 1), rel=1e-5)
    assert sim[0, 0] == 0
    scores = model.score(batch(seq, [2], [1]))[0]  # latest item 0
    assert scores[1] > scores[2] > scores[3]
    # no context: popularity alone orders the items
    empty = model.score(batch(seq, [2], [0]))[0]
    assert np.argsort(-empty, kind="stable").tolist() == [0, 1, 2, 3]


def two_taste_groups(n_users=40, n_items=20, per_user=8, seed=0):
    """Even users watch items 0..9, odd users items 10..19."""
    rng = np.random.default_rng(seed)
    per = [rng.choice(10, per_user, replace=False) + (10 if u % 2 else 0) for u in range(n_users)]
    return TrainingData(n_users, n_items, sequences(per))


def test_bpr_mf_learns_the_taste_groups():
    data = two_taste_groups()
    model = BPRMFRecommender(epochs=40, embedding_dim=8, batch_size=64, learning_rate=0.02).fit(data)
    scores = model.score(batch(data.sequences, [0, 1], [0, 0]))
    assert scores[0, :10].mean() > scores[0, 10:].mean() + 0.5
    assert scores[1, 10:].mean() > scores[1, :10].mean() + 0.5


def test_rating_mf_beats_the_global_mean():
    rng = np.random.default_rng(1)
    n_users, n_items = 30, 25
    seq = sequences([rng.choice(n_items, 12, replace=False) for _ in range(n_users)])
    users = seq.users
    taste = np.where((users % 2 == 0) == (seq.items < 12), 5.0, 1.0).astype(np.float32)
    seq = UserSequences(seq.indptr, seq.items, taste, seq.timestamps, seq.session_start)
    model = RatingMFRecommender(epochs=60, embedding_dim=4, batch_size=32, learning_rate=0.02, l2=0.0)
    model.fit(TrainingData(n_users, n_items, seq))
    predicted = model.predict_ratings(users, seq.items)
    assert np.sqrt(np.mean((predicted - taste) ** 2)) < 0.5 * np.std(taste)


def test_unknown_hyper_parameter_is_an_error():
    with pytest.raises(ValueError, match="unknown hyper-parameters"):
        build_model("bpr-mf", embeding_dim=3)


@pytest.mark.parametrize("name", ["pop", "spop", "itemknn", "bpr-mf", "mf"])
def test_save_and_load_give_the_same_scores(name, tmp_path):
    data = two_taste_groups(n_users=6, n_items=20, per_user=4)
    hparams = {"epochs": 1} if name in ("bpr-mf", "mf") else {}
    model = build_model(name, **hparams).fit(data)
    save_model(model, tmp_path / "m")
    restored = load_model(tmp_path / "m")
    queries = batch(data.sequences, [0, 3], [2, 4])
    np.testing.assert_allclose(restored.score(queries), model.score(queries), rtol=1e-6)
