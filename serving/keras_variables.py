"""Keras 3 variables in a SavedModel that TF Serving's C++ loader restores.

`tf.saved_model.save` exports a Keras 3 variable (a wrapper around a `tf.Variable`) as two variables:
the copy its functions read and a second copy that the checkpoint restores
(`keras.src.backend.tensorflow.core.Variable._export_to_saved_model_graph`). `tf.saved_model.load`
binds both to one object, so Python never notices; TF Serving, `saved_model_cli run` and every
other session-based loader run the restore op and then read the other copy, which was never
restored: "FAILED_PRECONDITION: Could not find variable …" on the first request (keras-team/keras#20095,
tensorflow/tensorflow#72963). `plain_variables_while_saving` makes the checkpoint restore the copy the
functions read: one copy per variable, restored by both loaders (`session_servable` tests it on every
export).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import keras
import tensorflow as tf


def keras_variables(module: tf.Module) -> list[keras.Variable]:
    """Every Keras 3 variable of the Keras layers that `module` tracks (nested cells included)."""
    found = {}
    for node in tf.train.TrackableView(module).descendants():
        if isinstance(node, keras.Layer):
            for variable in node.variables:
                found.setdefault(id(variable), variable)
    return list(found.values())


def _export_as_value(variable: keras.Variable):
    def export(object_map, tensor_map, options, **kwargs):
        resources = variable.value._export_to_saved_model_graph(object_map, tensor_map, options, **kwargs)
        object_map[variable] = object_map[variable.value]  # Keras: a new tf.Variable, never read
        return resources

    return export


@contextlib.contextmanager
def plain_variables_while_saving(module: tf.Module) -> Iterator[None]:
    """Within the block, `module`'s Keras variables export as their underlying `tf.Variable`."""
    variables = keras_variables(module)
    for variable in variables:
        variable._export_to_saved_model_graph = _export_as_value(variable)
    try:
        yield
    finally:
        for variable in variables:
            del variable._export_to_saved_model_graph
