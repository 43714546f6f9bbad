"""IARN's TF Serving export (serving/iarn_graph.py through serving/rating_export.py) on a tiny model
trained on events whose ids went through a real Transform output. The SavedModel is loaded in a fresh
process; `predict_rating`, `recommend` and `explain` equal the recommender's offline answers, with the
tie rule (same-second events are never context) and the `max_history` cut exercised."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow_transform  # noqa: F401  (first, as in the TFX Trainer: it sets TF_USE_LEGACY_KERAS=1)
from gpu_kernels import KNOWN_GAPS, assert_gpu_ready
from transform_setup import example, transform_output
from warmup_replay import REPLAY_LINES, assert_one_replayable_request_per_signature

from movierec.components.histories import vocabulary
from movierec.models import QueryBatch, TrainingData, UserSequences, build_model
from movierec.models.base import canonical_order
from movierec.serving import export_for_serving

DAY = 86_400
START = 1_000_000_000
TINY = {
    "embedding_dim": 4,
    "hidden_size": 5,
    "latent_dim": 3,
    "attention_units": 4,
    "max_history": 3,  # users rate 5 movies: windows are cut
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 0.01,
    "dropout": 0.0,
    "validation_fraction": 0.0,
}
N_USERS, N_ITEMS = 8, 8


def interactions(seed: int = 0) -> list[dict]:
    """Every user rates 5 of 8 movies on one of 4 days: many ratings share a second."""
    rng = np.random.default_rng(seed)
    return [
        {
            "user_id": f"u{u}",
            "item_id": f"m{i}",
            "rating": float(rng.integers(1, 6)),
            "timestamp": int(START + rng.integers(0, 4) * DAY),
        }
        for u in range(N_USERS)
        for i in rng.choice(N_ITEMS, 5, replace=False)
    ]


class Setup:
    def __init__(self, folder):
        rows = interactions()
        output = transform_output(folder, rows)
        self.items, self.users = vocabulary(output, "item_id"), vocabulary(output, "user_id")
        item_index = {raw: k for k, raw in enumerate(self.items)}
        user_index = {raw: k for k, raw in enumerate(self.users)}
        users = np.array([user_index[r["user_id"]] for r in rows], np.int64)
        items = np.array([item_index[r["item_id"]] for r in rows], np.int64)
        times = np.array([r["timestamp"] for r in rows], np.int64)
        order = canonical_order(users, times, items)
        self.sequences = UserSequences(
            np.r_[0, np.cumsum(np.bincount(users, minlength=len(self.users)))].astype(np.int64),
            items[order].astype(np.int32),
            np.array([r["rating"] for r in rows], np.float32)[order],
            times[order],
            np.zeros(len(order), bool),
        )
        data = TrainingData(len(self.users), len(self.items), self.sequences)
        self.model = build_model("iarn", **TINY).fit(data)
        self.export_dir = str(folder / "export")
        assert export_for_serving(
            self.model, output, self.items, self.export_dir, user_vocabulary=self.users, rated=self.sequences
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    return Setup(tmp_path_factory.mktemp("iarn-export"))


SERVE = textwrap.dedent(
    """
    import pickle, subprocess, sys
    import tensorflow as tf

    export_dir, path = sys.argv[1], sys.argv[2]
    with open(path, "rb") as f:
        requests = pickle.load(f)
    loaded = tf.saved_model.load(export_dir)
    out = {"signatures": sorted(loaded.signatures)}
    for name, examples in requests["predict"].items():
        answer = loaded.signatures["predict_rating"](examples=tf.constant(examples))
        out[name] = answer["predicted_rating"].numpy()
    answer = loaded.signatures["recommend"](user_id=tf.constant(requests["users"]), k=tf.constant(4))
    out["recommend"] = {k: v.numpy() for k, v in answer.items()}
    out["explain"] = []
    for user, item, time in requests["explain"]:
        answer = loaded.signatures["explain"](
            user_id=tf.constant(user), item_id=tf.constant(item), timestamp=tf.constant(time, tf.int64)
        )
        out["explain"].append({k: v.numpy() for k, v in answer.items()})
    out["cli"] = subprocess.run(
        ["saved_model_cli", "show", "--all", "--dir", export_dir], capture_output=True, text=True
    ).stdout
    with open(path, "wb") as f:
        pickle.dump(out, f)
    """
)
# the warmup file replayed in the same fresh process, before its answers are written
SERVE = SERVE.replace(
    'with open(path, "wb")', REPLAY_LINES + 'out["warmup"] = replayed\nwith open(path, "wb")'
)


@pytest.fixture(scope="module")
def served(setup, tmp_path_factory) -> dict:
    later, middle = START + 30 * DAY, START + 2 * DAY
    seq, users, items = setup.sequences, setup.users, setup.items
    known = [
        example(users[u], items[i], int(t))
        for u, i, t in zip(seq.users, seq.items, seq.timestamps, strict=True)
    ]
    grid = {
        name: [example(users[u], items[i], t) for u in range(len(users)) for i in range(len(items))]
        for name, t in (("grid_later", later), ("grid_middle", middle))
    }
    explain = [
        (users[u], items[i], t) for u, i, t in ((0, 0, -1), (1, 2, middle), (3, 5, later), (2, 7, START))
    ]
    path = tmp_path_factory.mktemp("requests") / "requests.pkl"
    requests = {
        "predict": {
            "known": known,
            **grid,
            "no_time": [example(users[0], items[1])],
            "new_user": [example("u-new", items[i], later) for i in range(len(items))],
            "new_item": [example(users[u], "m-new", later) for u in range(len(users))],
        },
        "users": [*users, "u-new"],
        "explain": [*explain, ("u-new", items[0], -1), (users[0], "m-new", -1)],
    }
    path.write_bytes(pickle.dumps(requests))
    subprocess.run([sys.executable, "-c", SERVE, setup.export_dir, str(path)], check=True)
    return pickle.loads(path.read_bytes()) | {"requests": requests, "later": later, "middle": middle}


def _empty_side(model, users: np.ndarray, items: np.ndarray, t: int) -> np.ndarray:
    """Offline twin of the fallback: the network on the known side's training history before t and an
    empty history (-1) on the unknown side (users < 0: unknown user; items < 0: unknown item)."""
    predictor = model._ready()
    n = len(users)
    stamps = np.full(n, t, np.int64)
    user_counts = predictor.user_history.counts_before(np.maximum(users, 0), stamps) * (users >= 0)
    item_counts = predictor.item_history.counts_before(np.maximum(items, 0), stamps) * (items >= 0)
    inputs = predictor._inputs(np.maximum(users, 0), np.maximum(items, 0), user_counts, item_counts)
    rating, _, _ = predictor._forward(inputs)
    return np.clip(np.asarray(rating), *model.keras_model.rating_range)


def test_served_ratings_equal_the_offline_predictions(setup, served):
    seq, model = setup.sequences, setup.model
    np.testing.assert_allclose(
        served["known"], model.predict_ratings(seq.users, seq.items, seq.timestamps), atol=1e-5
    )
    users, items = np.repeat(np.arange(N_USERS), N_ITEMS), np.tile(np.arange(N_ITEMS), N_USERS)
    for name in ("later", "middle"):
        times = np.full(len(users), served[name])
        np.testing.assert_allclose(
            served[f"grid_{name}"], model.predict_ratings(users, items, times), atol=1e-5
        )
    # no timestamp: now(), one second after the latest training event
    np.testing.assert_allclose(served["no_time"], model.predict_ratings([0], [1], [model.now()]), atol=1e-5)
    assert "update_state" not in served["signatures"]
    assert {"explain", "predict_rating", "recommend", "serving_default"} <= set(served["signatures"])


def test_unknown_ids_fall_back_to_an_empty_history_on_their_side(setup, served):
    later, model = served["later"], setup.model
    items = np.arange(N_ITEMS)
    np.testing.assert_allclose(
        served["new_user"], _empty_side(model, np.full(N_ITEMS, -1), items, later), atol=1e-5
    )
    users = np.arange(N_USERS)
    np.testing.assert_allclose(
        served["new_item"], _empty_side(model, users, np.full(N_USERS, -1), later), atol=1e-5
    )
    low, high = model.keras_model.rating_range
    assert np.all((served["new_user"] >= low) & (served["new_user"] <= high))


def test_served_recommendations_equal_the_evaluated_ranking_without_rated_items(setup, served):
    seq, model = setup.sequences, setup.model
    lengths = np.diff(seq.indptr)
    scores = model.score(QueryBatch(np.arange(N_USERS), lengths, np.zeros(N_USERS, np.int64), seq))
    # an unknown user: a stream with one more user who has no event (empty context, time now())
    extra = UserSequences(
        np.r_[seq.indptr, seq.indptr[-1]], seq.items, seq.ratings, seq.timestamps, seq.session_start
    )
    population = model.score(
        QueryBatch(np.array([N_USERS]), np.zeros(1, np.int64), np.zeros(1, np.int64), extra)
    )
    scores = np.vstack([scores, population])
    for u in range(N_USERS + 1):
        rated = set(seq.items[seq.indptr[u] : seq.indptr[u + 1]].tolist()) if u < N_USERS else set()
        ranked = [i for i in np.argsort(-scores[u], kind="stable") if i not in rated][:4]
        got = [x.decode() for x in served["recommend"]["item_ids"][u] if x]
        assert got == [setup.items[i] for i in ranked]
        np.testing.assert_allclose(
            served["recommend"]["scores"][u][: len(ranked)], scores[u][ranked], atol=1e-5
        )


def test_served_explanations_equal_the_offline_ones(setup, served):
    user_index = {raw: k for k, raw in enumerate(setup.users)}
    item_index = {raw: k for k, raw in enumerate(setup.items)}
    cut = 0
    for (user, item, time), answer in zip(served["requests"]["explain"], served["explain"], strict=True):
        if user not in user_index or item not in item_index:
            continue
        offline = setup.model.explain(user_index[user], item_index[item], None if time < 0 else time)
        assert int(answer["timestamp"]) == offline["timestamp"]
        assert answer["user_known"] and answer["item_known"]
        for side, other, ids in (("user", "item", setup.items), ("item", "user", setup.users)):
            events = offline[f"{side}_history"]
            assert [x.decode() for x in answer[f"{side}_history_{other}_ids"]] == [
                ids[e[other]] for e in events
            ]
            np.testing.assert_array_equal(answer[f"{side}_history_ratings"], [e["rating"] for e in events])
            np.testing.assert_array_equal(
                answer[f"{side}_history_timestamps"], [e["timestamp"] for e in events]
            )
            np.testing.assert_allclose(
                answer[f"{side}_history_gates"], [e["gate"] for e in events], atol=1e-5
            )
            assert all(e["timestamp"] < offline["timestamp"] for e in events)
            cut += len(events) == TINY["max_history"]
        np.testing.assert_allclose(answer["predicted_rating"], offline["predicted_rating"], atol=1e-5)
        np.testing.assert_allclose(answer["raw_rating"], offline["raw_rating"], atol=1e-5)
    assert cut  # some window was cut at max_history


def test_explaining_an_unknown_id_gives_an_empty_side_and_the_fallback_rating(setup, served):
    new_user, new_item = served["explain"][-2:]
    assert not new_user["user_known"] and new_user["item_known"]
    assert len(new_user["user_history_item_ids"]) == 0 and len(new_user["item_history_user_ids"]) > 0
    now = setup.model.now()
    np.testing.assert_allclose(
        new_user["predicted_rating"],
        _empty_side(setup.model, np.array([-1]), np.array([0]), now)[0],
        atol=1e-5,
    )
    assert new_item["user_known"] and not new_item["item_known"]
    assert len(new_item["item_history_user_ids"]) == 0 and len(new_item["user_history_item_ids"]) > 0
    assert np.all((new_item["user_history_gates"] > 0) & (new_item["user_history_gates"] < 1))


def test_saved_model_cli_lists_the_signatures(served):
    text = served["cli"]
    for name in ("explain", "predict_rating", "recommend", "serving_default", "transform_features"):
        assert f"signature_def['{name}']" in text
    assert "user_history_gates" in text and "item_history_user_ids" in text


def test_warmup_requests_replay_in_a_fresh_process(served):
    assert_one_replayable_request_per_signature(served["warmup"])


def test_every_op_of_the_signatures_has_a_gpu_kernel_or_is_a_host_op(setup):
    ops = assert_gpu_ready(
        setup.export_dir,
        ("explain", "predict_rating", "recommend", "serving_default", "transform_features"),
        KNOWN_GAPS["iarn"],
    )
    assert {"TopKV2", "MatMul"} <= ops
