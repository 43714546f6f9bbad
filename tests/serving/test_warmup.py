"""Warmup requests and atomic versions (serving/warmup.py) of the GRU4Rec export; the rating exports'
warmup is replayed in their own test files (test_rating_export.py, test_iarn_export.py,
test_lstm_cnn_export.py)."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from warmup_replay import assert_one_replayable_request_per_signature, replay_in_fresh_process

from movierec.serving.warmup import (
    ASSETS_EXTRA,
    WARMUP_FILE,
    predict_log,
    read_warmup,
    request_inputs,
    save_servable,
)

pytestmark = pytest.mark.slow  # the shared GRU4Rec export (Transform on Beam, a training epoch)


def test_the_warmup_file_holds_one_request_per_signature_that_replays_in_a_fresh_process(gru4rec):
    assert os.path.isfile(os.path.join(gru4rec.export_dir, ASSETS_EXTRA, WARMUP_FILE))
    replayed = replay_in_fresh_process(gru4rec.export_dir)
    assert replayed["signatures"] == ["recommend", "serving_default", "transform_features", "update_state"]
    assert_one_replayable_request_per_signature(replayed)
    assert replayed["model_names"] == ["gru4rec"]
    # built from the training data: the first user's latest 10 items, with their timestamps
    seq = gru4rec.sequences
    user = int(np.flatnonzero(np.diff(seq.indptr) >= 10)[0])
    items, times = gru4rec.history(user)
    request = predict_pb2.PredictRequest.FromString(
        replayed["requests"][replayed["requested"].index("recommend")]
    )
    inputs = request_inputs(request)
    assert [i.decode() for i in inputs["item_ids"][0]] == items[-10:]
    assert inputs["timestamps"][0].tolist() == times[-10:]
    answer = replayed["answers"][replayed["requested"].index("recommend")]
    assert answer["history_length"].tolist() == [10] and answer["unknown_ids"].tolist() == [0]


def test_no_staging_folder_is_left_beside_the_version(gru4rec):
    assert os.listdir(os.path.dirname(gru4rec.export_dir)) == [os.path.basename(gru4rec.export_dir)]


class Doubler(tf.Module):
    def __init__(self, factor: float):
        super().__init__()
        self.factor = tf.Variable(factor)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def double(self, x):
        return {"y": x * self.factor}


class Broken(Doubler):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def double(self, x):
        raise RuntimeError("tracing fails half-way through the export")


def test_a_version_is_replaced_whole_or_not_at_all(tmp_path):
    version = str(tmp_path / "doubler" / "1")
    warm = [predict_log("doubler", "serving_default", {"x": np.array([1.0, 2.0], np.float32)})]
    module = Doubler(2.0)
    save_servable(module, version, {"serving_default": module.double}, warm)
    first = sorted(os.listdir(version))
    assert {"saved_model.pb", "variables", ASSETS_EXTRA} <= set(first)
    assert len(read_warmup(version)) == 1

    broken = Broken(3.0)
    with pytest.raises(RuntimeError, match="half-way"):
        save_servable(broken, version, {"serving_default": broken.double}, warm)
    # the failed export left the previous version untouched, and no staging folder
    assert sorted(os.listdir(version)) == first and os.listdir(tmp_path / "doubler") == ["1"]
    served = tf.saved_model.load(version).signatures["serving_default"]
    assert served(x=tf.constant([1.0]))["y"].numpy().tolist() == [2.0]

    module = Doubler(5.0)
    save_servable(module, version, {"serving_default": module.double}, [])
    served = tf.saved_model.load(version).signatures["serving_default"]
    assert served(x=tf.constant([1.0]))["y"].numpy().tolist() == [5.0]
    assert read_warmup(version) == [] and os.listdir(tmp_path / "doubler") == ["1"]


def test_a_missing_warmup_file_is_an_error_naming_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=WARMUP_FILE):
        read_warmup(str(tmp_path))
