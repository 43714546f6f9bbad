"""Component logic that can fail on its own: histories, the blessing rule, the anomaly gate."""

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import standard_artifacts
from tfx.types.standard_artifact_utils import encode_split_names

from movierec.components.histories import read_user_histories, stream_from_histories
from movierec.components.ranking_evaluator import decide
from movierec.components.sequence_gen import _user_history
from movierec.components.validation_gate import AnomalyGate, anomalies_by_split
from movierec.splits import TEST, TRAIN


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
    assert stream.item_ids[stream.sequences.items].tolist() == ["a", "c", "b", "d"]
    assert stream.roles.tolist() == [TRAIN, TRAIN, TEST, TEST]


def test_blessing_needs_the_margin_over_the_baseline():
    assert decide("recall@20", 0.21, 0.20, margin=0.0)[0]
    blessed, reason = decide("recall@20", 0.21, 0.20, margin=0.1)
    assert not blessed and "does not beat the baseline" in reason
    assert not decide("recall@20", 0.20, 0.20, margin=0.0)[0]  # a tie does not beat it


def test_blessing_refuses_a_regression_against_the_latest_blessed_model():
    blessed, reason = decide("recall@20", 0.25, 0.10, 0.0, blessed_previous=0.30, regression_tolerance=0.05)
    assert not blessed and "latest blessed" in reason
    assert decide("recall@20", 0.30, 0.10, 0.0, blessed_previous=0.30)[0]  # the same model again passes


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
