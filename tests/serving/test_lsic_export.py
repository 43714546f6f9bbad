"""LSIC's TF Serving export (serving/two_stage_export.py): MF retrieval + G's re-ranking in one
`recommend` call, on a tiny model trained on events whose ids went through a real Transform output.
The SavedModel is loaded in a fresh process; its answers equal the recommender's offline ranking."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow_transform  # noqa: F401  (first, as in the TFX Trainer: it sets TF_USE_LEGACY_KERAS=1)
from gpu_kernels import assert_gpu_ready
from transform_setup import example, transform_output
from warmup_replay import assert_one_replayable_request_per_signature, replay_in_fresh_process

from movierec.components.histories import vocabulary
from movierec.models import QueryBatch, TrainingData, UserSequences, build_model
from movierec.models.base import canonical_order
from movierec.serving.two_stage_export import export_two_stage_model

WEEK = 7 * 86_400
START = 1_000_000_000
N_USERS, N_ITEMS, CANDIDATES = 10, 12, 6
TINY = {
    "mf_dim": 3,
    "embedding_dim": 4,
    "hidden_size": 3,
    "session_steps": 2,
    "samples": 3,
    "candidates": CANDIDATES,
    "mf_epochs": 2,
    "pretrain_epochs": 1,
    "epochs": 1,
    "batch_size": 8,
    "holdout_fraction": 0.0,
}


def interactions(seed: int = 0) -> list[dict]:
    """Users rate 5 of 12 movies over 6 weeks, two at a time (same-second pairs)."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(N_USERS):
        movies = rng.choice(N_ITEMS, 6, replace=False)
        for pair in range(3):
            second = int(START + rng.integers(0, 6) * WEEK + rng.integers(0, 1000))
            rows += [
                {
                    "user_id": f"u{u}",
                    "item_id": f"m{i}",
                    "rating": float(rng.integers(2, 6)),
                    "timestamp": second,
                }
                for i in movies[2 * pair : 2 * pair + 2]
            ]
    return rows


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lsic_export")
    rows = interactions()
    output = transform_output(folder, rows)
    items, users = vocabulary(output, "item_id"), vocabulary(output, "user_id")
    item_index = {raw: k for k, raw in enumerate(items)}
    user_index = {raw: k for k, raw in enumerate(users)}
    u = np.array([user_index[r["user_id"]] for r in rows], np.int64)
    i = np.array([item_index[r["item_id"]] for r in rows], np.int64)
    t = np.array([r["timestamp"] for r in rows], np.int64)
    order = canonical_order(u, t, i)
    sequences = UserSequences(
        np.r_[0, np.cumsum(np.bincount(u, minlength=len(users)))].astype(np.int64),
        i[order].astype(np.int32),
        np.array([r["rating"] for r in rows], np.float32)[order],
        t[order],
        np.zeros(len(order), bool),
    )
    model = build_model("lsic", **TINY).fit(TrainingData(len(users), len(items), sequences))
    export_dir = str(folder / "export")
    assert export_two_stage_model(model, output, items, users, export_dir, top_k=4)
    # offline: what evaluation ranks for each user at the end of training (context = training events)
    batch = QueryBatch(np.arange(len(users)), np.diff(sequences.indptr), np.diff(sequences.indptr), sequences)
    offline = model.score(batch)
    return {"dir": export_dir, "items": items, "users": users, "sequences": sequences, "offline": offline}


SERVE = textwrap.dedent(
    """
    import pickle, sys
    import tensorflow as tf
    loaded = tf.saved_model.load(sys.argv[1])
    users = pickle.loads(bytes.fromhex(sys.argv[2]))
    recommend = loaded.signatures["recommend"]
    out = {}
    for k in (3, 0, 1000):
        answer = recommend(user_id=tf.constant(users), k=tf.constant(k, tf.int32))
        out[k] = {name: value.numpy() for name, value in answer.items()}
    per_row = pickle.loads(bytes.fromhex(sys.argv[4]))
    answer = recommend(user_id=tf.constant(users), k=tf.constant(per_row, tf.int32))
    out["per_row"] = {name: value.numpy() for name, value in answer.items()}
    try:
        recommend(user_id=tf.constant(users), k=tf.constant(per_row[:2], tf.int32))
    except tf.errors.InvalidArgumentError as error:
        out["short_k"] = error.message
    examples = pickle.loads(bytes.fromhex(sys.argv[3]))
    answer = loaded.signatures["serving_default"](examples=tf.constant(examples))
    out["default"] = {name: value.numpy() for name, value in answer.items()}
    print(pickle.dumps(out).hex())
    """
)


# one k per row of `served`'s users (10 known, then "nobody", then ""): below 0, 0, a few, N, beyond N
PER_ROW_K = [2, -1, CANDIDATES, 0, 5, 1000, 1, 3, 4, 6, 2, 3]


@pytest.fixture(scope="module")
def served(setup):
    users = [*setup["users"].tolist(), "nobody", ""]
    examples = [example(user=str(setup["users"][0])), example(user="nobody")]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            SERVE,
            setup["dir"],
            pickle.dumps(users).hex(),
            pickle.dumps(examples).hex(),
            pickle.dumps(PER_ROW_K).hex(),
        ],
        capture_output=True,
        text=True,
        cwd="/",
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return pickle.loads(bytes.fromhex(done.stdout.strip().splitlines()[-1]))


def test_recommend_serves_the_evaluated_reranking_of_unseen_candidates(setup, served):
    answer = served[3]
    items, seq = setup["items"], setup["sequences"]
    for user in range(len(setup["users"])):
        expected = np.argsort(-setup["offline"][user], kind="stable")[:3]
        got = [np.flatnonzero(items == raw.decode())[0] for raw in answer["item_ids"][user]]
        assert got == expected.tolist(), f"user {user}"
        rated = set(seq.items[seq.indptr[user] : seq.indptr[user + 1]].tolist())
        assert not rated & set(got)  # a rated movie is never recommended
    # unknown users ("nobody", and an empty id) are counted, and get the population's answer
    assert answer["unknown_ids"].dtype == np.int32
    assert answer["unknown_ids"].tolist() == [0] * len(setup["users"]) + [1, 1]
    assert all(raw != b"" for raw in answer["item_ids"][-2])  # the population's answer: by G's b_m
    assert len(set(answer["scores"][-2].tolist())) > 1
    np.testing.assert_array_equal(answer["item_ids"][-1], answer["item_ids"][-2])


def test_k_is_clamped_to_the_reranked_candidates(served):
    assert served[0]["item_ids"].shape[1] == 0
    assert served[1000]["item_ids"].shape[1] == CANDIDATES
    # fewer than N unseen movies for nobody here: every row's list is full or padded with ""
    scores = served[1000]["scores"]
    assert np.all(np.diff(scores, axis=1) <= 0)
    assert np.array_equal(served[1000]["item_ids"] == b"", np.isneginf(scores))


def test_k_per_row_is_clamped_row_by_row_to_the_first_k_of_the_full_list(served):
    full, per_row = served[1000], served["per_row"]
    ks = np.clip(PER_ROW_K, 0, CANDIDATES)
    assert per_row["item_ids"].shape == (len(PER_ROW_K), ks.max())
    for row, k in enumerate(ks):
        np.testing.assert_array_equal(per_row["item_ids"][row, :k], full["item_ids"][row, :k])
        np.testing.assert_allclose(per_row["scores"][row, :k], full["scores"][row, :k], rtol=1e-6)
        assert (per_row["item_ids"][row, k:] == b"").all() and np.isneginf(per_row["scores"][row, k:]).all()
    assert per_row["unknown_ids"].tolist() == full["unknown_ids"].tolist()
    message = served.get("short_k", "").replace("\\'", "'")  # TF escapes the quotes
    assert "request field 'k' must be one value ([]) or one per row of 'user_id'" in message  # 2 for 12


def test_serving_default_reads_user_ids_from_examples(setup, served):
    default = served["default"]
    assert default["item_ids"].shape == (2, 4)
    assert np.array_equal(default["item_ids"][0], served[1000]["item_ids"][0][:4])
    assert default["unknown_ids"].tolist() == [0, 1]


def test_the_warmup_requests_replay_and_every_op_has_a_gpu_kernel(setup):
    replayed = replay_in_fresh_process(setup["dir"])
    assert_one_replayable_request_per_signature(replayed)
    recommend = replayed["answers"][replayed["requested"].index("recommend")]
    assert recommend["item_ids"].shape == (1, 4) and recommend["unknown_ids"].tolist() == [0]
    assert_gpu_ready(setup["dir"], ["recommend", "serving_default"])
