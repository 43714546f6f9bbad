"""Component logic that can fail on its own: histories, the blessing rule, the anomaly gate."""

import math

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifacts
from tfx.types.standard_artifact_utils import encode_split_names

from movierec.components.histories import read_user_histories, stream_from_histories
from movierec.components.ranking_evaluator import Regression, decide, same_artifact
from movierec.components.sequence_gen import _user_history
from movierec.components.user_scoring import paired_sums
from movierec.components.validation_gate import AnomalyGate, anomalies_by_split
from movierec.data.splits import TEST, TRAIN


def test_user_history_orders_events_and_cuts_the_training_prefix(tmp_path):
    events = [(30, "b", 4.0, TEST), (10, "c", 3.0, TRAIN), (10, "a", 5.0, TRAIN), (9000, "d", 1.0, TEST)]
    outputs = dict(_user_history(("u1", events), session_gap=3600))
    assert set(outputs) == {"train", "test"}
    full = tf.train.Example.FromString(outputs["test"]).features.feature
    assert [v.decode() for v in full["item_ids"].bytes_list.value] == ["a", "c", "b", "d"]  # ties by item id
    assert list(full["roles"].int64_list.value) == [TRAIN, TRAIN, TEST, TEST]
    assert list(full["session_start"].int64_list.value) == [1, 0, 0, 1]
    prefix = tf.train.Example.FromString(outputs["train"]).features.feature
    assert [v.decode() for v in prefix["item_ids"].bytes_list.value] == ["a", "c"]
    assert list(prefix["timestamps"].int64_list.value) == [10, 10]

    # and they read back into a stream over vocabularies in any order
    path = str(tmp_path / "histories.gz")
    with tf.io.TFRecordWriter(path, options="GZIP") as writer:
        writer.write(outputs["test"])
    stream = stream_from_histories(
        read_user_histories(path), np.array(["d", "c", "b", "a"]), np.array(["u0", "u1"]), 3600
    )
    assert stream.sequences.indptr.tolist() == [0, 0, 4]
    # same-second events in the vocabulary's index order (models.base.canonical_order), as everywhere
    assert stream.item_ids[stream.sequences.items].tolist() == ["c", "a", "b", "d"]
    assert stream.sequences.session_start.tolist() == [True, False, False, True]
    assert stream.roles.tolist() == [TRAIN, TRAIN, TEST, TEST]


def test_a_session_opens_at_the_start_of_its_same_second_group_in_index_order():
    # SequenceGen flags "b" (first by raw id) at t=10000; in the vocabulary's index order "c" comes
    # first in that group, and the session must open there, not in the middle of the group.
    histories = {
        "user_id": np.array(["u"]),
        "item_ids": np.array(["a", "b", "c", "d"]),
        "timestamps": np.array([0, 10000, 10000, 10100]),
        "ratings": np.ones(4, np.float32),
        "roles": np.array([TRAIN, TEST, TEST, TEST]),
        "session_start": np.array([1, 1, 0, 0]),
        "lengths": np.array([4]),
    }
    stream = stream_from_histories(histories, np.array(["d", "c", "b", "a"]), np.array(["u"]), 3600)
    assert stream.item_ids[stream.sequences.items].tolist() == ["a", "c", "b", "d"]
    assert stream.sequences.session_start.tolist() == [True, True, False, False]


def test_blessing_needs_the_margin_over_the_baseline():
    assert decide("recall@20", 0.21, 0.20, margin=0.0)[0]
    blessed, reason = decide("recall@20", 0.21, 0.20, margin=0.1)
    assert not blessed and "does not beat the baseline" in reason
    assert not decide("recall@20", 0.20, 0.20, margin=0.0)[0]  # a tie does not beat it


def regression(previous: float, difference: float, low: float, high: float) -> Regression:
    return Regression(previous, difference, low, high, confidence=0.95)


def test_blessing_refuses_a_significant_regression_against_the_latest_blessed_model():
    blessed, reason = decide("recall@20", 0.25, 0.10, 0.0, regression(0.30, -0.05, -0.08, -0.02))
    assert not blessed and "significantly worse than the latest blessed model's 0.3000" in reason
    assert "[-0.0800, -0.0200]" in reason


def test_blessing_does_not_refuse_noise():
    # The same point loss, but the interval reaches 0: not evidence, so blessed (the old rule refused).
    blessed, reason = decide("recall@20", 0.25, 0.10, 0.0, regression(0.30, -0.05, -0.11, 0.01))
    assert blessed and "not significantly worse" in reason
    assert decide("recall@20", 0.30, 0.10, 0.0, regression(0.30, 0.0, 0.0, 0.0))[0]  # the same scores
    assert decide("recall@20", 0.30, 0.10, 0.0, regression(0.30, 0.0, math.nan, math.nan))[0]


def test_regression_tolerance_accepts_a_known_small_loss_only():
    significant_small = regression(0.30, -0.02, -0.03, -0.01)  # tolerance 5% of 0.30 = 0.015
    assert decide("recall@20", 0.28, 0.10, 0.0, significant_small, regression_tolerance=0.05)[0]
    significant_large = regression(0.30, -0.05, -0.07, -0.03)
    blessed, reason = decide("recall@20", 0.25, 0.10, 0.0, significant_large, regression_tolerance=0.05)
    assert not blessed and "by more than 5.0%" in reason


def test_the_latest_blessed_model_itself_is_not_blessed_again():
    blessed, reason = decide("recall@20", 0.30, 0.10, 0.0, None, already_blessed=True)
    assert not blessed and "not blessed again" in reason
    model, same, other = standard_artifacts.Model(), standard_artifacts.Model(), standard_artifacts.Model()
    model.id, same.id, other.id = 7, 7, 8
    model.uri = same.uri = "/runs/Trainer/model/7"
    other.uri = "/runs/Trainer/model/8"
    assert same_artifact(model, same) and not same_artifact(model, other)


def test_paired_differences_need_the_same_queries():
    from movierec.evaluation import Ragged, RankingAccumulator

    def accumulator(scores: list[list[float]], relevant: list[list[int]]) -> RankingAccumulator:
        accumulator = RankingAccumulator(ks=(1,))
        accumulator.update(np.array(scores), Ragged.from_lists(relevant))
        return accumulator

    # better wins every query of users 0-2 and ties on user 3's
    users = np.array([0, 0, 1, 2, 3])
    relevant = [[0], [1], [0], [0], [0]]
    better = accumulator([[1, 0], [0, 1], [1, 0], [1, 0], [1, 0]], relevant)
    worse = accumulator([[0, 1], [1, 0], [0, 1], [0, 1], [1, 0]], relevant)
    difference = paired_sums(better, worse, users).difference_summaries(0.95)["recall@1"]
    assert difference["difference"] == pytest.approx(4 / 5) and difference["low"] > 0
    skipped = accumulator([[0, 1], [1, 0], [0, 1], [0, 1], [1, 0]], [[0], [], [0], [0], [0]])
    with pytest.raises(ValueError, match="scored on different queries"):
        paired_sums(better, skipped, users)


def anomalies_artifact(tmp_path, with_anomaly: bool):
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.uri = str(tmp_path)
    artifact.split_names = encode_split_names(["train", "eval"])
    for split in ("train", "eval"):
        proto = anomalies_pb2.Anomalies()
        if with_anomaly and split == "eval":
            proto.anomaly_info["rating"].description = "Unexpectedly large value: 7."
        (tmp_path / f"Split-{split}").mkdir()
        (tmp_path / f"Split-{split}" / "SchemaDiff.pb").write_bytes(proto.SerializeToString())
    return artifact


def test_anomaly_gate_stops_with_the_feature_and_split(tmp_path):
    artifact = anomalies_artifact(tmp_path, with_anomaly=True)
    assert anomalies_by_split(artifact) == {"eval": ["rating: Unexpectedly large value: 7."]}
    with pytest.raises(RuntimeError, match="split eval: rating: Unexpectedly large value"):
        AnomalyGate.test_call(anomalies=artifact)


def test_anomaly_gate_passes_clean_data(tmp_path):
    AnomalyGate.test_call(anomalies=anomalies_artifact(tmp_path, with_anomaly=False))


def test_slicing_features_band_ages_and_training_activity():
    from movierec.components.example_gen import ACTIVITY_BANDS, AGE_BANDS, band, to_example

    assert [band(age, AGE_BANDS) for age in (7, 18, 24, 25, 56, 73)] == [
        "under 18",
        "18-24",
        "18-24",
        "25-34",
        "56+",
        "56+",
    ]
    assert [band(n, ACTIVITY_BANDS) for n in (0, 1, 19, 20, 199, 200)] == [
        "0",
        "1-19",
        "1-19",
        "20-49",
        "100-199",
        "200+",
    ]
    row = {"user_id": "1", "item_id": "2", "rating": 4.0, "timestamp": 5, "age": 31, "training_ratings": 60}
    features = tf.train.Example.FromString(to_example(row)).features.feature
    assert features["age_band"].bytes_list.value == [b"25-34"]
    assert features["activity_band"].bytes_list.value == [b"50-99"]
    assert "gender" not in features  # unknown side features stay missing


def test_the_trainer_logs_every_models_epochs_to_tensorboard():
    from movierec.pipeline.modules.trainer import epoch_summaries

    assert epoch_summaries({"epoch_losses": [0.5, 0.25]}) == [{"loss": 0.5}, {"loss": 0.25}]
    rating_log = {"epochs": [{"epoch": 1, "loss": 1.2, "seconds": 3.0, "validation_rmse": 0.98}]}
    assert epoch_summaries(rating_log) == [{"loss": 1.2, "seconds": 3.0, "validation_rmse": 0.98}]
    assert epoch_summaries({}) == []
    # LSIC: the held-out run's curves (figure 3) under selection/
    lsic_log = {"selection": [{"phase": "adversarial", "epoch": 1, "g_precision_at_5": 0.2, "seconds": 4.0}]}
    assert epoch_summaries(lsic_log, "selection") == [{"g_precision_at_5": 0.2, "seconds": 4.0}]


def test_scored_batches_join_save_and_load_into_the_whole_splits_results(tmp_path):
    from movierec.components.user_scoring import ScoredUsers
    from movierec.evaluation.user_sums import UserSums

    def batch(users: list[int], recall: list[float], squared: float, absolute: float, n: int) -> ScoredUsers:
        sums = UserSums.of_queries({"recall@20": np.array(recall)}, np.array(users))
        return ScoredUsers(
            {"candidate": sums},
            {},
            {
                "candidate": {
                    "queries": len(users),
                    "queries_without_relevant": 0,
                    "queries_without_negatives": 0,
                }
            },
            {"candidate": {"squared_error": squared, "absolute_error": absolute, "count": n}},
        )

    joined = ScoredUsers.join([batch([9, 9], [1.0, 0.0], 2.0, 2.0, 2), batch([3], [1.0], 16.0, 4.0, 2)])
    joined.save(str(tmp_path / "per_user" / "eval.npz"))
    results = ScoredUsers.load(str(tmp_path / "per_user" / "eval.npz")).results()["candidate"]
    assert results["recall@20"] == pytest.approx(2 / 3) and results["queries"] == 3
    assert results["rmse"] == pytest.approx(np.sqrt(18 / 4)) and results["mae"] == pytest.approx(6 / 4)
    assert results["count"] == 4
