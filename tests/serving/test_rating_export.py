"""The TF Serving export of rating models (serving/rating_export.py), on a tiny RRN trained in
Transform's id space (a real tensorflow-transform output of the pipeline's `preprocessing_fn`).

The SavedModel is loaded in a fresh process, as TF Serving would load it, and every signature is
called there; its answers are compared here with what `RRNRecommender` computes offline."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow_transform  # noqa: F401  (first, as in the TFX Trainer: it sets TF_USE_LEGACY_KERAS=1)
from gpu_kernels import assert_gpu_ready
from keras import ops
from tensorflow_serving.apis import predict_pb2
from tiny_configs import TINY_RRN
from transform_setup import example, transform_output
from warmup_replay import REPLAY_LINES, assert_one_replayable_request_per_signature

from movierec.models import QueryBatch, TrainingData, UserSequences, build_model, load_model, save_model
from movierec.models.base import canonical_order
from movierec.models.rrn.state import REASONS
from movierec.serving import RatingServable, export_for_serving, export_rating_model
from movierec.serving.warmup import request_inputs

DAY, WEEK = 86_400, 7 * 86_400
START = 2_000 * WEEK
N_USERS, N_ITEMS, PER_USER = 10, 12, 6
TINY = TINY_RRN
SIGNATURES = ("predict_rating", "recommend", "serving_default", "update_state")


def raw_events(seed: int = 0) -> list[tuple[str, str, float, int]]:
    """Every user rates PER_USER distinct items of N_ITEMS, one a day on a few days over 6 weeks;
    users 0 and 1 rate the two halves of the catalogue, so that every item is rated."""
    rng = np.random.default_rng(seed)
    events = []
    for user in range(N_USERS):
        items = np.arange(user * PER_USER, (user + 1) * PER_USER) if user < 2 else rng.permutation(N_ITEMS)
        days = np.sort(rng.choice(42, PER_USER, replace=False))
        for item, day in zip(items[:PER_USER], days, strict=True):
            events.append((f"u{user}", f"m{item}", float(rng.integers(1, 6)), int(START + day * DAY + 3600)))
    return events


class Setup:
    """The trained model, its id spaces and the export (built once per module)."""

    def __init__(self, folder):
        events = raw_events()
        output = transform_output(
            folder, [{"user_id": u, "item_id": i, "rating": r, "timestamp": t} for u, i, r, t in events]
        )
        from movierec.components.histories import vocabulary

        self.items, self.users = vocabulary(output, "item_id"), vocabulary(output, "user_id")
        self.item_index = {raw: k for k, raw in enumerate(self.items)}
        self.user_index = {raw: k for k, raw in enumerate(self.users)}
        users = np.array([self.user_index[u] for u, _, _, _ in events], np.int64)
        items = np.array([self.item_index[i] for _, i, _, _ in events], np.int64)
        ratings = np.array([r for _, _, r, _ in events], np.float32)
        times = np.array([t for _, _, _, t in events], np.int64)
        order = canonical_order(users, times, items)
        self.sequences = UserSequences(
            np.r_[0, np.cumsum(np.bincount(users, minlength=len(self.users)))].astype(np.int64),
            items[order].astype(np.int32),
            ratings[order],
            times[order],
            np.zeros(len(order), bool),
        )
        model = build_model("rrn", **TINY).fit(TrainingData(len(self.users), len(self.items), self.sequences))
        self.model_dir = str(folder / "recommender")
        save_model(model, self.model_dir)
        self.export_dir = str(folder / "export")
        assert export_for_serving(
            model, output, self.items, self.export_dir, user_vocabulary=self.users, rated=self.sequences
        )

    def fresh(self):
        """A copy of the trained recommender (update_state changes its states)."""
        return load_model(self.model_dir)

    def rated(self, user: int) -> set[int]:
        seq = self.sequences
        return set(seq.items[seq.indptr[user] : seq.indptr[user + 1]].tolist())


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    return Setup(tmp_path_factory.mktemp("rating-export"))


SERVE = textwrap.dedent(
    """
    import pickle, sys
    import tensorflow as tf

    export_dir, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        requests = pickle.load(f)
    loaded = tf.saved_model.load(export_dir)

    def call(name, **inputs):
        return {k: v.numpy() for k, v in loaded.signatures[name](**inputs).items()}

    def stage():
        return {
            "predict": call("predict_rating", examples=tf.constant(requests["examples"])),
            "recommend": {
                k: call("recommend", user_id=tf.constant(requests["rec_users"]), k=tf.constant(k, tf.int32))
                for k in requests["ks"]
            },
            "per_row": call(
                "recommend",
                user_id=tf.constant(requests["rec_users"]),
                k=tf.constant(requests["per_row_k"], tf.int32),
            ),
            "states": {k: v.numpy() for k, v in loaded.state_snapshot().items()},
        }

    def update(events):
        users, items, ratings, times = events
        return call(
            "update_state",
            user_id=tf.constant(users),
            item_id=tf.constant(items),
            rating=tf.constant(ratings, tf.float32),
            timestamp=tf.constant(times, tf.int64),
        )

    out = {"signatures": sorted(loaded.signatures), "stages": [stage()], "updates": []}
    out["default"] = call("serving_default", examples=tf.constant(requests["examples"]))
    {replay}
    out["warmup"] = replayed  # before any update: the states must still be the exported ones
    for events in requests["updates"]:
        out["updates"].append(update(events))
        out["stages"].append(stage())
    try:
        update(requests["mismatched"])
    except tf.errors.InvalidArgumentError as error:
        out["mismatch_error"] = error.message
    out["states_after_error"] = {k: v.numpy() for k, v in loaded.state_snapshot().items()}
    out["nothing_applied"] = [update(events) for events in requests["nothing_to_apply"]]
    out["nobody"] = call("recommend", user_id=tf.constant([], tf.string), k=tf.constant(3))
    out["bad_k"] = {}
    for name, k in requests["bad_k"].items():
        try:
            call("recommend", user_id=tf.constant(requests["rec_users"]), k=tf.constant(k, tf.int32))
        except tf.errors.InvalidArgumentError as error:
            out["bad_k"][name] = error.message
    out["no_examples"] = call("predict_rating", examples=tf.constant([], tf.string))
    out["states_at_end"] = {k: v.numpy() for k, v in loaded.state_snapshot().items()}
    with open(path, "wb") as f:
        pickle.dump(out, f)
    """
)
SERVE = SERVE.replace("{replay}\n", REPLAY_LINES)  # the warmup file, replayed in the same fresh process


def saved_model_cli() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return (
        [script]
        if os.path.exists(script)
        else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    )


def columns(events) -> tuple[np.ndarray, ...]:
    """update_state's request arrays from (user id, item id, rating, timestamp) tuples."""
    users, items, ratings, times = zip(*events, strict=True)
    return (
        np.array(users, object).astype(bytes),
        np.array(items, object).astype(bytes),
        np.array(ratings, np.float32),
        np.array(times, np.int64),
    )


def states_of(recommender) -> dict[str, np.ndarray]:
    model = recommender.keras_model
    return {
        f"{side}_{name}": ops.convert_to_numpy(variable)
        for side in ("user", "movie")
        for name, variable in model.states(side).fields.items()
    }


class Scenario:
    """Requests sent to the SavedModel in a fresh process (predictions, recommendations, two state
    updates, a malformed update), `saved_model_cli show --all` run beside it, and the same steps
    replayed offline on a copy of the recommender: `served` and `offline` hold one stage per point
    (before the updates, after the first, after the second)."""

    def __init__(self, setup: Setup, folder):
        self.setup = setup
        recommender = setup.fresh()
        model = recommender.keras_model
        users, items, seq = setup.users, setup.items, setup.sequences
        self.n_users, self.n_items = n_users, n_items = len(users), len(items)
        self.now = recommender.now()
        self.later = later = self.now + 10 * DAY
        # predict_rating: the training events, every (user, item) later on, rows that must not fail
        train_rows = [
            (users[u], items[i], int(t)) for u, i, t in zip(seq.users, seq.items, seq.timestamps, strict=True)
        ]
        grid = [(users[u], items[i], later) for u in range(n_users) for i in range(n_items)]
        odd = [
            ("nobody", items[0], later),  # unknown user: μ + b_i
            (users[0], "nothing", later),  # unknown item: μ + b_u
            ("nobody", "nothing", later),  # both: μ
            (None, items[1], later),  # no user_id at all: an unknown user
            (users[2], items[3], None),  # no timestamp: the model's current time
            ([users[4], users[5]], items[6], later),  # a second value is ignored
        ]
        self.known_users = np.r_[seq.users, np.repeat(np.arange(n_users), n_items)]
        self.known_items = np.r_[seq.items, np.tile(np.arange(n_items), n_users)]
        self.known_times = np.r_[seq.timestamps, np.full(n_users * n_items, later)]
        self.n_train, self.n_known = len(train_rows), len(train_rows) + len(grid)
        examples = [
            example(u, i, t, rating=4.0, title="Toy Story (1995)", genres=["Animation", "Comedy"])
            for u, i, t in train_rows + grid + odd
        ]
        # update_state: first user a alone (the latest user, so no movie state is later than its events:
        # a step equal to its state's, then two later days) and one event per rejection reason; then
        # many users and movies with several steps each
        user_time = ops.convert_to_numpy(model.user_states.last_time)
        movie_time = ops.convert_to_numpy(model.movie_states.last_time)
        self.a = a = int(np.argmax(user_time))
        b = int(np.argsort(user_time)[-2])
        self.unrated = unrated = sorted(set(range(n_items)) - setup.rated(a))
        t_a = int(user_time[a])
        first = [
            (users[a], items[unrated[0]], 5.0, t_a),
            (users[a], items[unrated[1]], 1.0, t_a + 2 * DAY),
            (users[a], items[unrated[0]], 4.0, t_a + 2 * DAY + 60),
            (users[a], items[unrated[2]], 2.0, t_a + 5 * DAY),
            ("nobody", items[0], 4.0, later),
            (users[a], "nothing", 4.0, later),
            (users[a], items[0], 7.0, later),
            (users[a], items[0], float("nan"), later),
            (users[b], items[0], 4.0, int(user_time[b]) - 1),
        ]
        early, late_movie = int(np.argmin(user_time)), int(np.argmax(movie_time))
        if movie_time[late_movie] - 1 >= user_time[early]:
            first.append((users[early], items[late_movie], 3.0, int(movie_time[late_movie]) - 1))
        rng = np.random.default_rng(1)
        second = [
            (users[u], items[i], float(rng.integers(1, 6)), int(later + rng.integers(0, 20 * DAY)))
            for u, i in zip(rng.integers(0, n_users, 40), rng.integers(0, n_items, 40), strict=True)
        ]
        self.updates = [columns(first), columns(second)]
        self.rec_users = [*range(n_users), None, a]  # every user, an unknown one, a repeated one
        self.ks = (3, n_items + 5, 0, -2)
        # one k per row: clamped row by row (below 0, 0, a few, the catalogue, beyond it)
        self.per_row_k = np.resize([2, -1, n_items, 0, 5, n_items + 7, 1], len(self.rec_users))
        requests = {
            "examples": examples,
            "rec_users": np.array(
                [users[u] if u is not None else "nobody" for u in self.rec_users], object
            ).astype(bytes),
            "ks": self.ks,
            "per_row_k": self.per_row_k,
            "bad_k": {  # one k for some rows, a k per (row, column)
                "short": np.array([3, 3], np.int32),
                "matrix": np.full((len(self.rec_users), 2), 3, np.int32),
            },
            "updates": self.updates,
            "mismatched": (np.array([b"x", b"y"]), np.array([b"z"]), np.array([1.0, 2.0]), np.array([1, 2])),
            "nothing_to_apply": [  # an empty request, and one whose every event is rejected
                tuple(np.zeros(0, dtype) for dtype in (bytes, bytes, np.float32, np.int64)),
                columns([("nobody", items[0], 4.0, later), (users[0], items[0], 9.0, later)]),
            ],
        }
        path = folder / "requests.pkl"
        path.write_bytes(pickle.dumps(requests))
        # the fresh process and saved_model_cli run while this one replays the steps offline
        cli = subprocess.Popen(
            [*saved_model_cli(), "show", "--all", "--dir", setup.export_dir],
            stdout=subprocess.PIPE,
            text=True,
        )
        serve = subprocess.Popen([sys.executable, "-c", SERVE, setup.export_dir, str(path)])
        self.offline, self.reports = [self.offline_stage(recommender)], []
        for u, i, r, t in self.updates:
            self.reports.append(
                recommender.update_state(
                    np.array([setup.user_index.get(x.decode(), -1) for x in u]),
                    np.array([setup.item_index.get(x.decode(), -1) for x in i]),
                    r,
                    t,
                )
            )
            self.offline.append(self.offline_stage(recommender))
        assert serve.wait() == 0
        self.served = pickle.loads(path.read_bytes())
        self.cli = cli.communicate()[0]
        assert cli.returncode == 0
        self.model = model

    def offline_stage(self, recommender) -> dict:
        seq = self.setup.sequences
        known = [u for u in self.rec_users if u is not None]
        lengths = np.diff(seq.indptr)[known]  # each user's whole stream: no later target, time now()
        batch = QueryBatch(np.array(known), lengths, np.zeros(len(known), np.int64), seq)
        return {
            "predict": recommender.predict_ratings(self.known_users, self.known_items, self.known_times),
            "scores": dict(zip(known, recommender.score(batch), strict=False)),
            "states": states_of(recommender),
            "now": recommender.now(),
        }

    def accepted_items(self, stage: int) -> dict[int, set[int]]:
        """The items of the events update_state accepted before `stage`, per user index."""
        fed: dict[int, set[int]] = {u: set() for u in range(self.n_users)}
        for answer, (u, i, _, _) in zip(self.served["updates"][:stage], self.updates, strict=False):
            for ok, user, item in zip(answer["accepted"], u, i, strict=True):
                if ok:
                    fed[self.setup.user_index[user.decode()]].add(self.setup.item_index[item.decode()])
        return fed

    def stationary(self) -> tuple[float, np.ndarray, np.ndarray, tuple[float, float]]:
        """μ, b_u, b_i and the rating scale of the model."""
        s = self.model.stationary
        return (
            self.model.global_mean,
            ops.convert_to_numpy(s.user_bias.embeddings)[:, 0],
            ops.convert_to_numpy(s.item_bias.embeddings)[:, 0],
            self.model.rating_range,
        )


@pytest.fixture(scope="module")
def scenario(setup, tmp_path_factory) -> Scenario:
    return Scenario(setup, tmp_path_factory.mktemp("requests"))


def test_saved_model_cli_shows_the_signatures_tf_serving_serves(scenario):
    cli = scenario.cli
    for name in SIGNATURES:
        assert f"signature_def['{name}']" in cli
    assert set(SIGNATURES) <= set(scenario.served["signatures"])  # and a fresh process loads them
    update = cli[cli.index("signature_def['update_state']") :]
    for field, dtype in (("user_id", "DT_STRING"), ("item_id", "DT_STRING"), ("rating", "DT_FLOAT")):
        assert f"inputs['{field}'] tensor_info:\n        dtype: {dtype}" in update
    assert "inputs['timestamp'] tensor_info:\n        dtype: DT_INT64" in update
    assert "outputs['accepted'] tensor_info:\n        dtype: DT_BOOL" in update
    recommend = cli[cli.index("signature_def['recommend']") :]
    # k: [] (one for every row) or [B] (per row, what server-side batching needs)
    assert "inputs['k'] tensor_info:\n        dtype: DT_INT32\n        shape: unknown_rank" in recommend
    assert "outputs['unknown_ids'] tensor_info:\n        dtype: DT_INT32\n        shape: (-1)" in recommend
    rating = cli[cli.index("signature_def['predict_rating']") :]
    assert "outputs['predicted_rating'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1)" in rating
    assert "outputs['unknown_ids'] tensor_info:\n        dtype: DT_INT32\n        shape: (-1)" in rating


def test_predict_rating_is_the_recommenders_and_unknown_ids_fall_back(scenario):
    served = scenario.served["stages"][0]["predict"]["predicted_rating"]
    assert served.dtype == np.float32 and served.shape == (scenario.n_known + 6,)
    np.testing.assert_array_equal(scenario.served["default"]["predicted_rating"], served)  # one function
    np.testing.assert_allclose(served[: scenario.n_known], scenario.offline[0]["predict"], atol=1e-5)
    mu, user_bias, item_bias, (low, high) = scenario.stationary()
    fallbacks = np.clip([mu + item_bias[0], mu + user_bias[0], mu, mu + item_bias[1]], low, high)
    odd = served[scenario.n_known :]
    np.testing.assert_allclose(odd[:4], fallbacks, atol=1e-6)
    recommender = scenario.setup.fresh()
    np.testing.assert_allclose(odd[4], recommender.predict_ratings([2], [3], [scenario.now])[0], atol=1e-5)
    np.testing.assert_allclose(odd[5], recommender.predict_ratings([4], [6], [scenario.later])[0], atol=1e-5)
    # the fallbacks are reported: how many of each pair's ids the vocabularies lack
    unknown = scenario.served["stages"][0]["predict"]["unknown_ids"]
    assert unknown.dtype == np.int32 and not unknown[: scenario.n_known].any()
    assert unknown[scenario.n_known :].tolist() == [1, 1, 2, 1, 0, 0]
    np.testing.assert_array_equal(scenario.served["default"]["unknown_ids"], unknown)


@pytest.mark.parametrize("stage", [0, 1, 2])
def test_recommend_ranks_like_score_at_now_without_rated_items(scenario, stage):
    """Before the updates, and after each: items fed by update_state are removed too."""
    answers, offline = scenario.served["stages"][stage]["recommend"], scenario.offline[stage]
    n_items, setup = scenario.n_items, scenario.setup
    mu, _, item_bias, _ = scenario.stationary()
    fed = scenario.accepted_items(stage)
    full = answers[n_items + 5]  # k clamped to the catalogue
    assert full["item_ids"].shape == (len(scenario.rec_users), n_items) and full["scores"].dtype == np.float32
    for row, user in enumerate(scenario.rec_users):
        ids, values = full["item_ids"][row], full["scores"][row]
        if user is None:  # the population ranking, nothing removed
            expected, rated = mu + item_bias, set()  # unclipped: a ranking
        else:
            expected, rated = offline["scores"][user], setup.rated(user) | fed[user]
        kept = [i for i in np.argsort(-expected, kind="stable") if i not in rated]
        assert [setup.item_index[v.decode()] for v in ids[: len(kept)]] == kept
        np.testing.assert_allclose(values[: len(kept)], expected[kept], atol=1e-5)
        assert (ids[len(kept) :] == b"").all() and np.isneginf(values[len(kept) :]).all()  # padding
        np.testing.assert_array_equal(answers[3]["item_ids"][row], ids[:3])
    assert answers[0]["item_ids"].shape == answers[-2]["item_ids"].shape == (len(scenario.rec_users), 0)
    unknown = [int(user is None) for user in scenario.rec_users]
    for answer in (full, answers[3], answers[0]):
        assert answer["unknown_ids"].dtype == np.int32 and answer["unknown_ids"].tolist() == unknown
    if stage:
        assert any(fed.values())


@pytest.mark.parametrize("stage", [0, 2])
def test_recommend_honours_k_per_row_as_the_first_k_of_the_full_ranking(scenario, stage):
    served = scenario.served["stages"][stage]
    full, per_row = served["recommend"][scenario.n_items + 5], served["per_row"]
    ks = np.clip(scenario.per_row_k, 0, scenario.n_items)
    assert per_row["item_ids"].shape == (len(scenario.rec_users), ks.max())
    for row, k in enumerate(ks):
        np.testing.assert_array_equal(per_row["item_ids"][row, :k], full["item_ids"][row, :k])
        np.testing.assert_allclose(per_row["scores"][row, :k], full["scores"][row, :k], atol=1e-6)
        assert (per_row["item_ids"][row, k:] == b"").all() and np.isneginf(per_row["scores"][row, k:]).all()
    assert per_row["unknown_ids"].tolist() == [int(user is None) for user in scenario.rec_users]


def test_a_k_of_another_shape_is_refused_naming_the_field(scenario):
    for name in ("short", "matrix"):
        message = scenario.served["bad_k"].get(name, "").replace("\\'", "'")  # TF escapes the quotes
        assert "request field 'k' must be one value ([]) or one per row of 'user_id'" in message, name


@pytest.mark.parametrize("update", [0, 1])
def test_update_state_answers_and_states_equal_the_offline_update(scenario, update):
    answer, report = scenario.served["updates"][update], scenario.reports[update]
    reasons = [""] * report.received
    for row, reason in zip(report.rejected_rows, report.rejected_reasons, strict=True):
        reasons[row] = reason
    assert answer["reason"].astype(str).tolist() == reasons
    np.testing.assert_array_equal(answer["accepted"], np.array(reasons) == "")
    served, offline = scenario.served["stages"][update + 1], scenario.offline[update + 1]
    assert served["states"].keys() == offline["states"].keys()
    for name, value in offline["states"].items():
        if value.dtype == np.int64:
            np.testing.assert_array_equal(served["states"][name], value, err_msg=name)
        else:
            np.testing.assert_allclose(served["states"][name], value, atol=2e-6, err_msg=name)
    np.testing.assert_allclose(
        served["predict"]["predicted_rating"][: scenario.n_known], offline["predict"], atol=1e-5
    )
    if update == 0:  # user a's four events, and one rejection of every kind the data allows
        assert reasons[:4] == [""] * 4
        assert set(reasons[4:]) == set(REASONS[:3] + REASONS[4 : 4 + report.received - 8])
    else:
        assert report.applied == report.received


def test_update_state_moves_that_users_predictions_only(scenario):
    """Other users' predictions change only for the movies the update fed (their states read it)."""
    n_users, n_items, a = scenario.n_users, scenario.n_items, scenario.a
    grid = slice(scenario.n_train, scenario.n_known)
    before, after = (
        scenario.served["stages"][k]["predict"]["predicted_rating"][grid].reshape(n_users, n_items)
        for k in (0, 1)
    )
    assert not np.allclose(after[a], before[a])
    others = np.arange(n_users) != a
    untouched = np.ones(n_items, bool)
    untouched[scenario.unrated[:3]] = False
    np.testing.assert_array_equal(after[np.ix_(others, untouched)], before[np.ix_(others, untouched)])


def test_a_request_with_arrays_of_different_lengths_names_the_field_and_changes_nothing(scenario):
    assert "request field item_id needs one entry per user_id" in scenario.served["mismatch_error"]
    for name, value in scenario.served["states_after_error"].items():
        np.testing.assert_array_equal(value, scenario.served["stages"][-1]["states"][name])


def test_requests_with_nothing_to_do_answer_and_change_nothing(scenario):
    empty, rejected = scenario.served["nothing_applied"]
    assert empty["accepted"].shape == empty["reason"].shape == (0,)
    assert rejected["accepted"].tolist() == [False, False]
    assert rejected["reason"].astype(str).tolist() == ["unknown user", "rating outside the scale"]
    for name, value in scenario.served["states_at_end"].items():
        np.testing.assert_array_equal(value, scenario.served["stages"][-1]["states"][name])
    assert scenario.served["nobody"]["item_ids"].shape == (0, 0)  # K: the largest k of no row
    assert scenario.served["no_examples"]["predicted_rating"].shape == (0,)


def test_export_for_serving_dispatches_and_names_what_a_rating_export_lacks(setup, tmp_path):
    from movierec.models import build_model as build

    pop = build("pop")
    assert not isinstance(pop, RatingServable)
    assert not export_for_serving(pop, None, setup.items, str(tmp_path / "pop"))
    assert not (tmp_path / "pop").exists()
    mf = build("mf", epochs=1)  # predicts ratings, but has no state to update
    assert not isinstance(mf, RatingServable) and not export_rating_model(
        mf, None, setup.items, setup.users, "x"
    )
    rrn = setup.fresh()
    assert isinstance(rrn, RatingServable)
    with pytest.raises(ValueError, match="user_vocabulary"):
        export_for_serving(rrn, None, setup.items, str(tmp_path / "rrn"), rated=setup.sequences)
    with pytest.raises(ValueError, match=r"^rated: "):
        export_for_serving(rrn, None, setup.items, str(tmp_path / "rrn"), user_vocabulary=setup.users)
    with pytest.raises(ValueError, match="item_vocabulary"):
        export_rating_model(
            rrn, None, setup.items[:-1], setup.users, str(tmp_path / "rrn"), rated=setup.sequences
        )
    assert not (tmp_path / "rrn").exists()


# -- GPU readiness -------------------------------------------------------------------------------------


def test_every_op_of_the_signatures_has_a_gpu_kernel_or_is_a_host_op(setup):
    ops = assert_gpu_ready(setup.export_dir, (*SIGNATURES, "transform_features"))
    assert {"While", "ResourceScatterNdUpdate", "TopKV2", "MatMul"} <= ops


def test_warmup_requests_replay_in_a_fresh_process_without_changing_the_states(scenario):
    replayed = scenario.served["warmup"]
    assert_one_replayable_request_per_signature(replayed)
    assert replayed["model_names"] == ["rrn"]
    # update_state is warmed with an event it rejects: the states stay as exported
    update = replayed["answers"][replayed["requested"].index("update_state")]
    assert update["accepted"].tolist() == [False] and update["reason"][0]
    assert replayed["before"].keys() == replayed["after"].keys()
    for name, value in replayed["before"].items():
        np.testing.assert_array_equal(value, replayed["after"][name], err_msg=name)
    # a real training event: its user is known, so recommend returns that user's ranking
    recommend = replayed["answers"][replayed["requested"].index("recommend")]
    assert recommend["item_ids"].shape == (1, 10) and np.isfinite(recommend["scores"]).any()
    assert recommend["unknown_ids"].tolist() == [0]
    request = predict_pb2.PredictRequest.FromString(
        replayed["requests"][replayed["requested"].index("recommend")]
    )
    assert request_inputs(request)["k"].shape == (1,)  # per row: server-side batching can merge it
