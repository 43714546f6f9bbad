"""The LSIC paper's protocol options: a fixed cut date (--cut-time), positives = ratings >= X
(--positive-rating: lower ratings stay candidates), chosen metric cutoffs (--ks), and BPR-MF trained on
positive feedback only (min_rating)."""

import json

import click
import numpy as np
import pytest
from click.testing import CliRunner

from movierec.cli import main
from movierec.cli.common import HEADLINE, headline_metrics, parse_cut_time, parse_ks, split_params
from movierec.data import interactions_frame, load_dataset
from movierec.data.splits import TEST, temporal_split
from movierec.data.stream import build_queries, build_stream
from movierec.evaluation.experiment import EvaluationSettings, evaluate_ranking
from movierec.models import BPRMFRecommender, QueryBatch, TrainingData, UserSequences, build_model

MARCH_1998 = 888_710_400  # 1998-03-01 00:00:00 UTC

# Training (before t=5): w rates every item, u and x rate a. Test period (t >= 5):
#   u: b@5 (5 stars) tied with c@5 (2 stars), d@7 (1 star), e@9 (4 stars)
#   v: only low ratings (a@1 trains v); x: c@5 (1 star) before b@6 (5 stars)
ROWS = [
    ("w", "a", 3, 1),
    ("w", "b", 3, 2),
    ("w", "c", 3, 3),
    ("w", "d", 3, 4),
    ("w", "e", 3, 4),
    ("u", "a", 4, 1),
    ("u", "b", 5, 5),
    ("u", "c", 2, 5),
    ("u", "d", 1, 7),
    ("u", "e", 4, 9),
    ("v", "a", 5, 1),
    ("v", "b", 3, 6),
    ("v", "c", 1, 8),
    ("x", "a", 4, 1),
    ("x", "c", 1, 5),
    ("x", "b", 5, 6),
]


def make_stream():
    df = interactions_frame(ROWS)
    return build_stream(df, temporal_split(df, cut_time=5, validation_share=0.0))


def names(stream, items):
    return sorted(stream.item_ids[np.asarray(items)].tolist())


def test_next_item_queries_ask_only_positive_targets_and_keep_the_tie_rule():
    stream = make_stream()
    assert len(build_queries(stream, TEST, "next-item")) == 8
    queries = build_queries(stream, TEST, "next-item", min_relevant_rating=4)
    # u's b and e, x's b; the five low-rated held-out events are not asked, and counted
    assert len(queries) == 3 and queries.skipped_without_relevant == 5
    users = stream.user_ids[queries.users].tolist()
    targets = stream.item_ids[queries.relevant.indices].tolist()
    assert list(zip(users, targets, strict=True)) == [("u", "b"), ("u", "e"), ("x", "b")]
    for q, (user, target) in enumerate(zip(users, targets, strict=True)):
        batch, _, ignored = queries.batch(q, q + 1, stream.sequences)
        _, context = batch.visible()
        if (user, target) == ("u", "b"):
            # c (2 stars) shares b's second: still neither context nor competitor; d, e stay candidates
            assert names(stream, context) == ["a"] and names(stream, ignored.indices) == ["c"]
        elif (user, target) == ("u", "e"):
            # the low-rated events before e are context as before
            assert names(stream, context) == ["a", "b", "c", "d"] and ignored.indices.size == 0
        else:
            assert names(stream, context) == ["a", "c"] and ignored.indices.size == 0


def test_user_queries_keep_low_rated_items_as_candidates_and_skip_users_without_positives():
    stream = make_stream()
    everything = build_queries(stream, TEST, "user")
    assert stream.user_ids[everything.users].tolist() == ["u", "v", "x"]
    queries = build_queries(stream, TEST, "user", min_relevant_rating=4)
    assert stream.user_ids[queries.users].tolist() == ["u", "x"]
    assert queries.skipped_without_relevant == 1  # v rated nothing >= 4 in the period
    assert names(stream, queries.relevant.row(0)) == ["b", "e"]
    assert names(stream, queries.relevant.row(1)) == ["b"]
    # low-rated items are neither relevant nor ignored, even c tied with u's positive b
    assert queries.ignored.indices.size == 0
    # the list is still asked at the start of the period: x's low-rated c@5 is not context for b@6
    assert queries.positions.tolist() == [1, 1]
    assert queries.positions.tolist() == everything.positions[[0, 2]].tolist()


class Scores:
    """Fixed scores per item name (a model that likes low-rated items)."""

    name = "fixed"

    def __init__(self, stream, by_name):
        self.row = np.array([by_name[n] for n in stream.item_ids], np.float32)

    def score(self, batch: QueryBatch) -> np.ndarray:
        return np.tile(self.row, (len(batch), 1))


def test_a_low_rated_item_ranked_above_the_positive_costs_precision():
    stream = make_stream()
    # x's list: a is seen; c (1 star) outranks b (5 stars)
    model = Scores(stream, {"a": 9.0, "c": 3.0, "b": 2.0, "d": 1.0, "e": 0.0})
    x = int(np.flatnonzero(stream.user_ids == "x")[0])

    def metrics(threshold):
        """x's metrics among all users' lists."""
        queries = build_queries(stream, TEST, "user", min_relevant_rating=threshold)
        accumulator = evaluate_ranking(
            model, stream, queries, EvaluationSettings(ks=(1, 2), query_mode="user")
        )
        row = np.flatnonzero(queries.users[accumulator.query_rows()] == x)[0]
        return {name: values[row] for name, values in accumulator.per_query().items()}

    every_event = metrics(None)  # c and b both relevant: the top two are hits
    assert every_event["precision@1"] == 1.0 and every_event["precision@2"] == 1.0
    positives = metrics(4)  # c is a candidate that beats b: b ranks second, not first
    assert positives["precision@1"] == 0.0 and positives["precision@2"] == 0.5
    assert positives["mrr"] == 0.5 and positives["map"] == 0.5
    assert positives["ndcg@2"] == pytest.approx(1 / np.log2(3))


def test_min_relevant_rating_must_be_a_number():
    with pytest.raises(ValueError, match="min_relevant_rating"):
        build_queries(make_stream(), TEST, "user", min_relevant_rating=float("nan"))


def test_cut_time_reads_a_utc_date_or_unix_seconds():
    assert parse_cut_time(None, None, "1998-03-01") == MARCH_1998
    assert parse_cut_time(None, None, " 888710400 ") == MARCH_1998
    assert parse_cut_time(None, None, None) is None
    for bad in ("1998-02-30", "March 1998", "1998-3-1", "8.5e8", ""):
        with pytest.raises(click.BadParameter) as error:
            parse_cut_time(None, None, bad)
        assert "--cut-time" in error.value.format_message() and repr(bad) in error.value.format_message()


def test_ks_are_positive_integers_sorted_once():
    assert parse_ks(None, None, "10,3,5,5") == (3, 5, 10)
    assert parse_ks(None, None, None) == (5, 10, 20)
    for bad in ("3,x", "0,5", "", "3;5", "-1"):
        with pytest.raises(click.BadParameter, match="positive whole numbers") as error:
            parse_ks(None, None, bad)
        assert "--ks" in error.value.format_message()
    columns, detail = headline_metrics((3, 5, 10))
    paper = ("precision@3", "precision@5", "precision@10", "ndcg@3", "ndcg@5", "ndcg@10", "mrr", "map")
    assert columns[:8] == paper and detail[:8] == paper
    assert "recall@20" not in columns and "precision@5" in detail
    assert headline_metrics((5, 10, 20))[0] == HEADLINE


def test_split_params_take_a_cut_time_instead_of_the_test_fraction():
    assert split_params("temporal", 0.2, 3, MARCH_1998) == {"cut_time": MARCH_1998, "seed": 3}
    assert split_params("temporal", 0.2, 3) == {"test_fraction": 0.2, "seed": 3}
    with pytest.raises(click.BadParameter, match="no cut time"):
        split_params("random", 0.2, 3, MARCH_1998)


def test_the_ml100k_cut_on_1998_03_01(ml100k_dir):
    interactions = load_dataset(str(ml100k_dir)).interactions
    split = temporal_split(interactions, cut_time=MARCH_1998, seed=0)
    timestamps = interactions["timestamp"].to_numpy()
    assert len(split.train) == 77_985 and timestamps[split.train].max() < MARCH_1998
    evaluated = len(split.validation) + len(split.test) + sum(split.dropped.values())
    assert evaluated == 22_015 and timestamps[np.r_[split.validation, split.test]].min() >= MARCH_1998
    assert split.params["cut_time"] == MARCH_1998 and split.params["test_fraction"] is None
    # validation and test users are disjoint: the period's users are divided, not its events
    users = interactions["user_id"].to_numpy()
    assert not set(users[split.validation]) & set(users[split.test])


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def test_cut_time_needs_a_protocol_with_a_cut_and_no_test_fraction(tmp_path):
    # checked before any data is read: the folder does not even exist
    missing = str(tmp_path / "none")
    result = invoke("evaluate", "--data", missing, "--model", "pop", "--cut-time", "1998-03-01")
    assert result.exit_code == 2 and "--cut-time" in result.output and "leave-last-out" in result.output
    result = invoke(
        "evaluate", "--data", missing, "--model", "pop", "--protocol", "temporal", "--cut-time", "1998-03-01",
        "--test-fraction", "0.3",
    )  # fmt: skip
    assert result.exit_code == 2 and "either --cut-time or --test-fraction" in result.output
    result = invoke("train", "--data", missing, "--model", "pop", "--protocol", "random", "--cut-time", "0",
                    "--output", str(tmp_path / "m"))  # fmt: skip
    assert result.exit_code == 2 and "--cut-time" in result.output and "random" in result.output
    result = invoke("evaluate", "--data", missing, "--model", "pop", "--ks", "5,ten")
    assert result.exit_code == 2 and "--ks" in result.output
    result = invoke("evaluate", "--data", missing, "--model", "pop", "--positive-rating", "four")
    assert result.exit_code == 2 and "--positive-rating" in result.output


def test_the_lsic_protocol_on_the_command_line(ml100k_dir, tmp_path):
    output = tmp_path / "lsic.json"
    result = invoke(
        "evaluate", "--data", str(ml100k_dir), "--model", "pop", "--protocol", "temporal",
        "--cut-time", "1998-03-01", "--query-mode", "user", "--positive-rating", "4", "--ks", "3,5,10",
        "--bootstrap", "20", "--repeat", "2", "--output", str(output),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    (pop,) = json.loads(output.read_text())
    assert pop["protocol"]["params"]["cut_time"] == MARCH_1998
    assert pop["protocol"]["train"] == 77_985
    evaluation = pop["evaluation"]
    assert evaluation["min_relevant_rating"] == 4 and evaluation["ks"] == [3, 5, 10]
    # seed 0 gives 63 test users: the 7 whose period holds no rating >= 4 are not asked, and counted
    assert (evaluation["queries"], evaluation["skipped_without_relevant"]) == (56, 7)
    # --repeat: each split seed has its own test users, so its own counts
    counts = [(run["split_seed"], run["queries"], run["skipped_without_relevant"]) for run in pop["runs"]]
    assert counts[0] == (0, 56, 7) and counts[1][0] == 1 and counts[1][1] > 0 and counts[1] != (1, 56, 7)
    for metric in ("precision@3", "precision@5", "precision@10", "ndcg@3", "ndcg@5", "ndcg@10", "mrr", "map"):
        assert 0.0 <= pop["metrics"][metric] <= 1.0
        assert metric in pop["intervals"]
    assert "recall@20" not in pop["metrics"]
    header = result.stdout.splitlines()[0].split()
    assert header[2:10] == ["precision@3", "precision@5", "precision@10", "ndcg@3", "ndcg@5", "ndcg@10",
                            "mrr", "map"]  # fmt: skip
    assert "recall@20" not in result.stdout


def test_train_takes_the_cut_time(ml100k_dir, tmp_path):
    model_dir = tmp_path / "pop"
    result = invoke("train", "--data", str(ml100k_dir), "--model", "pop", "--cut-time", "888710400",
                    "--output", str(model_dir))  # fmt: skip
    assert result.exit_code == 0, result.output
    saved = json.loads((model_dir / "result.json").read_text())
    assert saved["protocol"]["params"]["cut_time"] == MARCH_1998
    assert saved["protocol"]["train"] == 77_985


def test_a_cut_time_outside_the_data_is_a_clear_error(ml100k_dir):
    result = invoke("evaluate", "--data", str(ml100k_dir), "--model", "pop", "--protocol", "temporal",
                    "--cut-time", "1999-01-01")  # fmt: skip
    assert result.exit_code == 1 and "cut time 915148800 leaves an empty" in result.output


def opposite_tastes(n_users=40, per_group=8, seed=0):
    """Even users rate 8 of items 0..9 five stars and 8 of items 10..19 one star; odd users the reverse.
    Every user has events on both halves: only the ratings say which half each user likes."""
    rng = np.random.default_rng(seed)
    per_user, ratings = [], []
    for user in range(n_users):
        liked = rng.choice(10, per_group, replace=False) + (10 if user % 2 else 0)
        disliked = rng.choice(10, per_group, replace=False) + (0 if user % 2 else 10)
        per_user.append([*liked, *disliked])
        ratings += [5.0] * per_group + [1.0] * per_group
    seq = UserSequences.from_lists(per_user)
    seq = UserSequences(
        seq.indptr, seq.items, np.array(ratings, np.float32), seq.timestamps, seq.session_start
    )
    return TrainingData(n_users, 20, seq)


def liked_margin(model, data):
    """Mean score of each user's liked half minus the disliked half, over users 0 (even) and 1 (odd)."""
    scores = model.score(QueryBatch(np.array([0, 1]), np.zeros(2, int), np.zeros(2, int), data.sequences))
    return (scores[0, :10].mean() - scores[0, 10:].mean() + scores[1, 10:].mean() - scores[1, :10].mean()) / 2


def test_bpr_mf_min_rating_trains_on_positive_feedback_only():
    data = opposite_tastes()
    hparams = {"epochs": 20, "embedding_dim": 8, "batch_size": 128, "learning_rate": 0.02}
    positives_only = BPRMFRecommender(min_rating=4.0, **hparams).fit(data)
    everything = BPRMFRecommender(**hparams).fit(data)
    assert liked_margin(positives_only, data) > 2.0  # about 5.5 over seeds 0-2
    assert abs(liked_margin(everything, data)) < 0.5  # every item is "positive" for every user: about 0
    with pytest.raises(ValueError, match="bpr-mf: min_rating 6 leaves no training event"):
        BPRMFRecommender(min_rating=6.0, epochs=1).fit(data)
    with pytest.raises(ValueError, match="bpr-mf: min_rating must be finite"):
        build_model("bpr-mf", min_rating=float("inf"))
