"""Keras 3 weights in a SavedModel that TF Serving's loader restores (serving/keras_variables.py):
the session-based loader (`SessionServable`, as TF Serving and `saved_model_cli run`) answers as
`tf.saved_model.load` does, and the checkpoint holds each weight once."""

from __future__ import annotations

import os

import keras
import numpy as np
import tensorflow as tf

from movierec.serving.keras_variables import keras_variables
from movierec.serving.session_servable import SessionServable
from movierec.serving.warmup import save_servable


class Scorer(tf.Module):
    """A Keras 3 network inside a tf.Module, as every export holds its model."""

    def __init__(self):
        super().__init__()
        keras.utils.set_random_seed(0)
        self.network = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.Dense(2)])

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def score(self, x):
        return {"scores": self.network(x)}


def test_the_session_loader_restores_keras_weights_once(tmp_path):
    module = Scorer()
    assert len(keras_variables(module)) == 4  # two kernels, two biases
    version = os.path.join(tmp_path, "scorer", "1")
    save_servable(module, version, {"serving_default": module.score}, [])
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected = module.network(x).numpy()

    answer = SessionServable(version).run("serving_default", {"x": x})  # fails unrestored without the fix

    np.testing.assert_allclose(answer["scores"], expected, rtol=1e-6)
    python_loader = tf.saved_model.load(version).signatures["serving_default"]
    np.testing.assert_allclose(python_loader(x=tf.constant(x))["scores"], expected, rtol=1e-6)
    stored = [name for name, _ in tf.train.list_variables(os.path.join(version, "variables", "variables"))]
    assert sum("VARIABLE_VALUE" in name for name in stored) == 4
    # the patch is undone after saving: the network saves as Keras saves it again
    assert all("_export_to_saved_model_graph" not in vars(v) for v in keras_variables(module))


def test_session_servable_refuses_what_tf_serving_refuses(tmp_path):
    module = Scorer()
    version = os.path.join(tmp_path, "scorer", "1")
    save_servable(module, version, {"serving_default": module.score}, [])
    servable = SessionServable(version)
    assert servable.signatures == ["serving_default"]
    for signature, inputs, message in (
        ("predict", {"x": np.zeros((1, 3))}, 'signature name: "predict" not found'),
        ("serving_default", {"y": np.zeros((1, 3))}, "input size does not match signature"),
    ):
        try:
            servable.run(signature, inputs)
        except ValueError as error:
            assert message in str(error)
        else:
            raise AssertionError(f"{signature} {sorted(inputs)} was answered")
