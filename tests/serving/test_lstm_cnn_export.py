"""LSTM+CNN's TF Serving export (serving/lstm_cnn_graph.py through serving/rating_export.py) on a tiny
model trained the pipeline's way: side features from SequenceGen's side tables through a real
Transform output (components/side_tables.py). The SavedModel is loaded in a fresh process; its answers
equal the recommender's offline ones, and it scores a movie and a user it has never seen from raw
strings alone."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform  # noqa: F401  (first, as in the TFX Trainer: it sets TF_USE_LEGACY_KERAS=1)
from gpu_kernels import KNOWN_GAPS, assert_gpu_ready
from transform_setup import example, transform_output
from warmup_replay import REPLAY_LINES, assert_one_replayable_request_per_signature

from movierec.components.histories import vocabulary
from movierec.components.sequence_gen import SIDE_TABLES, _side_row
from movierec.components.side_tables import side_features
from movierec.data.side_features import title_words
from movierec.models import QueryBatch, TrainingData, UserSequences, build_model
from movierec.models.base import canonical_order
from movierec.serving import export_for_serving

DAY = 86_400
START = 1_000_000_000
TINY = {
    "embedding_dim": 4,
    "feature_dim": 8,
    "title_windows": "2,3",
    "title_filters": 3,
    "lstm_units": 4,
    "head_units": 4,
    "max_history": 3,
    "epochs": 2,
    "batch_size": 16,
    "learning_rate": 0.01,
    "validation_fraction": 0.0,
}
TITLES = [
    "Star Wars (1977)",
    "Star Trek (1979)",
    "The Heat (2013)",
    "Heat (1995)",
    "Love Actually (2003)",
    "Star Love (1990)",
    "War Games (1983)",
    "Love and War (1996)",
]
GENRES = [
    ["Sci-Fi"],
    ["Sci-Fi", "Action"],
    ["Comedy"],
    ["Action"],
    ["Romance"],
    ["Romance", "Sci-Fi"],
    ["War"],
    ["War"],
]
USERS = {
    f"u{k}": ("M" if k % 2 else "F", ["18-24", "25-34", "35-44"][k % 3], ["writer", "artist"][k % 2])
    for k in range(8)
}


def interactions(seed: int = 0) -> list[dict]:
    """Every user rates 5 movies; many ratings share a second (the tie rule matters)."""
    rng = np.random.default_rng(seed)
    rows = []
    for user, (gender, band, occupation) in USERS.items():
        for item in rng.choice(len(TITLES), 5, replace=False):
            rows.append(
                {
                    "user_id": user,
                    "item_id": f"m{item}",
                    "rating": float(rng.integers(1, 6)),
                    "timestamp": int(START + rng.integers(0, 4) * DAY),
                    "title": TITLES[item],
                    "genres": GENRES[item],
                    "gender": gender,
                    "age_band": band,
                    "occupation": occupation,
                }
            )
    seen = set()
    flagged = []
    for row in rows:  # the first of each movie's ratings (in the list's order) counts its title
        flagged.append(row | {"item_first_training_rating": int(row["item_id"] not in seen)})
        seen.add(row["item_id"])
    return flagged


def write_side_tables(folder, rows: list[dict]) -> str:
    """SequenceGen's `items` and `users` splits for these training rows; returns the train pattern."""
    for table, (key, names) in SIDE_TABLES.items():
        os.makedirs(folder / f"Split-{table}")
        records = dict(_side_row(example(**row), key, names) for row in rows)
        with tf.io.TFRecordWriter(str(folder / f"Split-{table}" / "data.gz"), options="GZIP") as writer:
            for record in records.values():
                writer.write(record)
    return str(folder / "Split-train" / "*")


class Setup:
    def __init__(self, folder):
        rows = interactions()
        self.rows = rows
        output = transform_output(folder, rows)
        self.items, self.users = vocabulary(output, "item_id"), vocabulary(output, "user_id")
        self.side = side_features(output, write_side_tables(folder, rows), self.items, self.users)
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
        data = TrainingData(len(self.users), len(self.items), self.sequences, self.side)
        self.model = build_model("lstm-cnn", **TINY).fit(data)
        self.export_dir = str(folder / "export")
        assert export_for_serving(
            self.model, output, self.items, self.export_dir, user_vocabulary=self.users, rated=self.sequences
        )


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Setup:
    return Setup(tmp_path_factory.mktemp("lstm-cnn-export"))


SERVE = textwrap.dedent(
    """
    import pickle, sys
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
    later = START + 30 * DAY
    seq, users, items = setup.sequences, setup.users, setup.items
    known = [
        example(users[u], items[i], int(t))
        for u, i, t in zip(seq.users, seq.items, seq.timestamps, strict=True)
    ]
    grid = [example(users[u], items[i], later) for u in range(len(users)) for i in range(len(items))]
    new_movie = dict(title="Star Heat Unseen (2031)", genres=["War", "Comedy"])
    path = tmp_path_factory.mktemp("requests") / "requests.pkl"
    requests = {
        "predict": {
            "known": known,
            "grid": grid,
            # a movie the catalogue lacks, with a title and genre combination no training movie has
            "new_movie": [example(users[0], "m-new", later, **new_movie)],
            "new_movie_other_genres": [
                example(users[0], "m-new", later, title=new_movie["title"], genres=["Romance"])
            ],
            "new_movie_no_features": [example(users[0], "m-new", later)],
            "new_user": [
                example("u-new", items[0], later, gender="F", age_band="18-24", occupation="artist")
            ],
            "new_user_other_fields": [
                example("u-new", items[0], later, gender="M", age_band="35-44", occupation="writer")
            ],
        },
        "users": list(users),
    }
    path.write_bytes(pickle.dumps(requests))
    subprocess.run([sys.executable, "-c", SERVE, setup.export_dir, str(path)], check=True)
    return pickle.loads(path.read_bytes()) | {"requests": requests, "later": later}


def test_side_features_from_the_transform_graph_decode_to_the_raw_titles_genres_and_fields(setup):
    side = setup.side
    words = side.vocabularies["item_title_words"]
    genres = side.vocabularies["item_genres"]
    raw = {r["item_id"]: r for r in setup.rows}
    for k, item in enumerate(setup.items):
        decoded = [words[w] for w in side.item_title_words[k] if w > 0]
        expected = [w if w in words else "<oov>" for w in title_words(raw[item]["title"])]
        assert decoded == expected
        assert sorted(g for g, on in zip(genres, side.item_genres[k], strict=True) if on) == sorted(
            raw[item]["genres"]
        )
    assert "star" in words and "love" in words and "wars" not in words  # "wars": one movie only
    occupations = side.vocabularies["user_occupation"]
    for k, user in enumerate(setup.users):
        assert occupations[side.user_occupation[k]] == USERS[user][2]


def test_served_ratings_equal_the_offline_predictions(setup, served):
    seq = setup.sequences
    offline = setup.model.predict_ratings(seq.users, seq.items, seq.timestamps)
    np.testing.assert_allclose(served["known"], offline, atol=1e-5)
    n_users, n_items = len(setup.users), len(setup.items)
    users, items = np.repeat(np.arange(n_users), n_items), np.tile(np.arange(n_items), n_users)
    later = np.full(len(users), served["later"])
    np.testing.assert_allclose(served["grid"], setup.model.predict_ratings(users, items, later), atol=1e-5)
    assert "update_state" not in served["signatures"] and "recommend" in served["signatures"]


def test_served_recommendations_equal_the_evaluated_ranking_without_rated_items(setup, served):
    seq = setup.sequences
    n_users = len(setup.users)
    # the evaluated score of a query after every training event: the whole stored history
    lengths = np.diff(seq.indptr)
    scores = setup.model.score(QueryBatch(np.arange(n_users), lengths, np.zeros(n_users, np.int64), seq))
    for u in range(n_users):
        rated = set(seq.items[seq.indptr[u] : seq.indptr[u + 1]].tolist())
        ranked = [i for i in np.argsort(-scores[u], kind="stable") if i not in rated][:4]
        got = [x.decode() for x in served["recommend"]["item_ids"][u] if x]
        assert got == [setup.items[i] for i in ranked]
        np.testing.assert_allclose(
            served["recommend"]["scores"][u][: len(ranked)], scores[u][ranked], atol=1e-5
        )


def test_an_unseen_movie_and_an_unseen_user_are_scored_from_raw_strings(setup, served):
    low, high = setup.model.keras_model.rating_range
    for name in (
        "new_movie",
        "new_movie_other_genres",
        "new_movie_no_features",
        "new_user",
        "new_user_other_fields",
    ):
        (value,) = served[name]
        assert np.isfinite(value) and low <= value <= high
    # the title and genres decide the new movie's rating, the fields the new user's
    assert served["new_movie"][0] != served["new_movie_other_genres"][0]
    assert served["new_movie"][0] != served["new_movie_no_features"][0]
    assert served["new_user"][0] != served["new_user_other_fields"][0]


def test_warmup_requests_replay_in_a_fresh_process(served):
    assert_one_replayable_request_per_signature(served["warmup"])


def test_every_op_of_the_signatures_has_a_gpu_kernel_or_is_a_host_op(setup):
    ops = assert_gpu_ready(
        setup.export_dir,
        ("predict_rating", "recommend", "serving_default", "transform_features"),
        KNOWN_GAPS["lstm-cnn"],
    )
    assert not KNOWN_GAPS["lstm-cnn"]
    # the checked graph holds the compute: the scores and top-k, the gathers from the side tables,
    # the histories' scatter and segment sums, and the transform graph's title words (split on the
    # host, placed with a scatter)
    assert {"TopKV2", "MatMul", "ResourceGather", "ScatterNd", "UnsortedSegmentSum", "StringSplitV2"} <= ops
    # no ragged kernels (RaggedRange, RaggedTensorToTensor) and no bincount of a ragged row partition
    assert not {op for op in ops if op.startswith("Ragged")} and "DenseBincount" not in ops
