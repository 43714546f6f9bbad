"""LSIC: the four mixtures, the adversarial steps, re-ranking, windows and resumable training."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from movierec.models.base import QueryBatch, TrainingData, UserSequences
from movierec.models.lsic import LSICConfig, LSICRecommender, LSICScorer
from movierec.models.lsic.candidates import rerank
from movierec.models.lsic.training import Adversary, Episode, run
from movierec.models.lsic.windows import StepClock, build_grids
from movierec.models.rrn.steps import WEEK

N_USERS, N_ITEMS = 12, 9


def weekly_data(seed: int = 0, weeks: int = 8) -> TrainingData:
    """Every user rates a few movies in most weeks; ratings 1-5, ties within a second included."""
    rng = np.random.default_rng(seed)
    users, items, ratings, stamps = [], [], [], []
    for user in range(N_USERS):
        for week in range(weeks):
            if rng.random() < 0.3:
                continue
            chosen = rng.choice(N_ITEMS, size=2, replace=False)
            second = week * WEEK + int(rng.integers(0, WEEK - 1))
            for item in chosen:  # both at the same second: a tie group
                users.append(user)
                items.append(item)
                ratings.append(float(rng.integers(1, 6)))
                stamps.append(second)
    order = np.lexsort((items, stamps, users))
    users, items = np.array(users)[order], np.array(items)[order]
    indptr = np.r_[0, np.cumsum(np.bincount(users, minlength=N_USERS))].astype(np.int64)
    sequences = UserSequences(
        indptr,
        items.astype(np.int32),
        np.array(ratings, np.float32)[order],
        np.array(stamps, np.int64)[order],
        np.zeros(len(items), bool),
    )
    return TrainingData(N_USERS, N_ITEMS, sequences)


TINY = dict(
    mf_dim=3,
    embedding_dim=4,
    hidden_size=3,
    session_steps=2,
    samples=3,
    candidates=5,
    mf_epochs=2,
    pretrain_epochs=1,
    epochs=2,
    batch_size=8,
    holdout_fraction=0.0,
)


def scorer_inputs(episode: Episode, users, step):
    return episode.inputs(np.asarray(users), step)


@pytest.mark.parametrize("mixture", ["v1", "v2", "v3", "v4"])
def test_each_mixture_scores_the_catalogue_and_trains_its_own_parts(mixture):
    data = weekly_data()
    config = LSICConfig(**{**TINY, "mixture": mixture})
    episode = Episode(data, config)
    scorer = LSICScorer(N_USERS, N_ITEMS, mixture, 3, 4, 3, 2, poster_dim=6)
    scorer.set_posters(np.random.default_rng(1).normal(size=(N_ITEMS, 6)))
    inputs = scorer_inputs(episode, [0, 3, 5], episode.clock.now_step)
    with tf.GradientTape() as tape:
        scores = scorer(inputs)
        loss = tf.reduce_sum(scores * tf.random.stateless_normal(scores.shape, [1, 2]))
    assert tuple(scores.shape) == (3, N_ITEMS) and np.isfinite(scores.numpy()).all()
    gradients = dict(
        zip(
            [v.path for v in scorer.trainable_variables],
            tape.gradient(loss, scorer.trainable_variables),
            strict=True,
        )
    )
    nonzero = {
        path for path, g in gradients.items() if g is not None and np.abs(tf.convert_to_tensor(g)).sum() > 0
    }
    assert any("user_lstm" in p for p in nonzero) and any("movie_lstm" in p for p in nonzero)
    assert any("poster" in p for p in nonzero)  # the poster step reaches the movie LSTM (eq. 8)
    assert any("user_init" in p for p in nonzero) == (mixture != "v1")  # v2-v4 start from MF factors
    assert any("attention" in p for p in nonzero) == (mixture == "v4")
    if mixture == "v1":  # no MF inside the LSTMs: the factors matter only through e_u·e_m
        assert "user_init" not in " ".join(gradients)


def test_v4_with_neighbours_attends_over_each_entitys_nearest_factors():
    scorer = LSICScorer(N_USERS, N_ITEMS, "v4", 3, 4, 3, 2, attention_neighbours=2)
    factors = np.random.default_rng(0).normal(size=(N_ITEMS, 3))
    scorer.set_mf(np.random.default_rng(1).normal(size=(N_USERS, 3)), factors, np.zeros(N_ITEMS))
    table = scorer.item_neighbours.numpy()
    expected = np.argsort(-(factors @ factors.T), axis=1)[:, :2]
    assert table.shape == (N_ITEMS, 2)
    assert all(set(a) == set(b) for a, b in zip(table, expected, strict=True))


def test_a_window_reads_the_weeks_before_the_step_only():
    data = weekly_data()
    seq = data.sequences
    clock = StepClock.ending_at(seq.timestamps, WEEK)
    users, _ = build_grids(seq, N_ITEMS, clock, width=2)
    user = 0
    own = seq.users == user
    steps = clock.step_of(seq.timestamps[own])
    query = int(steps.max())
    window = users.window(np.array([user]), np.array([query]))
    # exactly the user's events of steps query-2 and query-1, never of the query's own week
    expected = np.sort(seq.items[own][(steps >= query - 2) & (steps < query)])
    assert np.array_equal(np.sort(window.others), expected)
    assert window.slots.max(initial=0) < 2
    assert np.allclose(np.abs(window.weights).sum() > 0, len(expected) > 0)


def test_the_step_grid_ends_at_now_and_clamps_later_queries():
    clock = StepClock.ending_at(np.array([10, 5 * WEEK + 3]), WEEK)
    assert clock.now == 5 * WEEK + 4
    assert clock.step_of(np.array([clock.now - 1]))[0] == clock.now_step - 1
    assert clock.step_of(np.array([clock.now + 10 * WEEK]))[0] == clock.now_step


def test_the_hinge_loss_of_a_hand_built_pair():
    config = LSICConfig(**{**TINY, "margin": 1.0})
    scorer = LSICScorer(N_USERS, N_ITEMS, "v1", 3, 4, 3, 2)
    scorer._built_once()
    adversary = Adversary(scorer, scorer, config)
    scores = tf.constant([[2.0, 1.5, 0.0], [0.0, 3.0, 1.0]])
    # max(0, 1 − 2 + 1.5) = 0.5 and max(0, 1 − 3 + 0) = 0
    loss = adversary._hinge(scores, tf.constant([0, 1]), tf.constant([1, 0]))
    assert float(loss) == pytest.approx(0.25)


def test_a_policy_gradient_step_raises_the_probability_of_the_rewarded_item():
    data = weekly_data()
    config = LSICConfig(
        **{
            **TINY,
            "mixture": "v1",
            "policy": "catalogue",
            "candidates": 0,
            "samples": 4,
            "learning_rate": 0.05,
        }
    )
    episode = Episode(data, config)
    generator = LSICScorer(N_USERS, N_ITEMS, "v1", 3, 4, 3, 2, name="g")
    discriminator = LSICScorer(N_USERS, N_ITEMS, "v1", 3, 4, 3, 2, name="d")
    generator._built_once()
    discriminator._built_once()
    rewarded = 6
    bias = np.full((N_ITEMS, 1), -3.0, np.float32)
    bias[rewarded] = 3.0  # D says: movie 6 looks like a real positive, every other movie does not
    discriminator.item_bias.embeddings.assign(bias)
    adversary = Adversary(generator, discriminator, config)
    users = np.array([0, 1, 2, 3], np.int32)
    inputs = {
        **scorer_inputs(episode, users, episode.clock.now_step),
        "movies": np.arange(N_ITEMS, dtype=np.int32),
    }
    support = np.tile(np.arange(N_ITEMS, dtype=np.int32), (len(users), 1))
    positives = np.zeros(len(users), np.int32)

    def probability() -> float:
        return float(tf.nn.softmax(generator(inputs), axis=1)[:, rewarded].numpy().mean())

    before = probability()
    adversary.g_step(inputs, positives, positives, support, np.array([0, 7], np.int32))
    after_one = probability()
    assert after_one > before
    for k in range(1, 5):
        adversary.g_step(inputs, positives, positives, support, np.array([k, 7], np.int32))
    assert probability() > before + 0.05


def test_reranking_puts_only_mf_candidates_first_in_the_scorers_order():
    mf = np.array([[5.0, 4.0, 3.0, 2.0, 1.0, 0.0]])
    scorer = np.array([[0.0, 9.0, 1.0, 8.0, 7.0, 6.0]])
    excluded = np.array([[False, True, False, False, False, False]])
    scores = rerank(mf, scorer, 3, excluded)[0]
    order = np.argsort(-scores, kind="stable")
    # candidates: MF's top 3 without the excluded movie 1 → {0, 2, 3}, ordered by the scorer: 3, 2, 0
    assert list(order[:3]) == [3, 2, 0]
    assert list(order[3:]) == [1, 4, 5]  # the rest in MF order
    assert np.array_equal(rerank(mf, scorer, 0), scorer.astype(np.float32))


def test_an_interrupted_training_resumes_from_its_checkpoint_with_the_same_result(tmp_path):
    data = weekly_data()
    # adversarial epochs only (pre-training resumes the same way; fewer graphs to trace)
    whole = LSICConfig(
        **{**TINY, "pretrain_epochs": 0, "epochs": 3, "checkpoint_dir": str(tmp_path / "whole")}
    )
    reference, reference_log = run(data, whole, whole.epochs, None)

    class Interrupted(Exception):
        pass

    def stop_after_two(entry):
        if entry["epoch"] == 2:
            raise Interrupted

    broken = dataclasses.replace(whole, checkpoint_dir=str(tmp_path / "broken"))
    with pytest.raises(Interrupted):
        run(data, broken, broken.epochs, None, on_epoch_end=stop_after_two)
    seen = []
    resumed, resumed_log = run(data, broken, broken.epochs, None, on_epoch_end=seen.append)
    assert [e["epoch"] for e in seen] == [3]  # epochs 1-2 came from the checkpoint
    assert [e["epoch"] for e in resumed_log] == [e["epoch"] for e in reference_log]
    for a, b in zip(reference.generator.weights, resumed.generator.weights, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)
    for a, b in zip(reference.discriminator.weights, resumed.discriminator.weights, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_a_non_finite_loss_stops_training_with_a_clear_error():
    data = weekly_data()
    config = LSICConfig(
        **{**TINY, "learning_rate": 1e30, "clip_value": 1e30, "optimizer": "sgd", "epochs": 0}
    )
    with pytest.raises(FloatingPointError, match=r"lsic: the [GD] loss became"):
        run(data, config, config.epochs, None)


def test_the_recommender_reranks_unseen_candidates_and_survives_saving(tmp_path):
    data = weekly_data()
    # epochs=0: the held-out run's one curve point (after pre-training) picks 0 adversarial epochs
    model = LSICRecommender(**{**TINY, "holdout_fraction": 0.3, "epochs": 0}).fit(data)
    assert model.training_log["best_epoch"] == 0 and "g_precision_at_5" in model.training_log["selection"][-1]
    seq = data.sequences
    users = np.arange(N_USERS)
    batch = QueryBatch(users, np.diff(seq.indptr), np.diff(seq.indptr), seq)
    scores = model.score(batch)
    assert scores.shape == (N_USERS, N_ITEMS) and np.isfinite(scores).all()
    top = np.argsort(-scores, axis=1, kind="stable")[:, : TINY["candidates"]]
    query, items = batch.visible()
    seen = np.zeros((N_USERS, N_ITEMS), bool)
    seen[query, items] = True
    unseen = (~seen).sum(axis=1)
    for user in users:  # the first N places hold unseen movies only (when N unseen exist)
        if unseen[user] >= TINY["candidates"]:
            assert not seen[user, top[user]].any()
    model.save(str(tmp_path))
    assert (tmp_path / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"  # figure 3, held-out run
    loaded = LSICRecommender.load(str(tmp_path), model.get_config())
    np.testing.assert_allclose(loaded.score(batch), scores, rtol=1e-5, atol=1e-5)
