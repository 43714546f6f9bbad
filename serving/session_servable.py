"""A SavedModel loaded as TF Serving loads it: the MetaGraph tagged `serve` imported into a graph,
the checkpoint restored by the SavedModel's restore op, signatures run by `Session.run` on the
SignatureDef's tensor names (`tensorflow/cc/saved_model/loader.cc`, which TF Serving's
`SavedModelBundle` uses). `tf.saved_model.load` rebuilds Python objects instead and can hide
an export that TF Serving cannot run (`keras_variables`); the serving tests use this.

    servable = SessionServable("/models/gru4rec/1")
    servable.run("recommend", {"item_ids": np.array([[b"50", b"181"]]), ...})
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

SERVE_TAG = "serve"


class SessionServable:
    """One SavedModel version in its own graph and session.

    Args:
        export_dir: the version's folder (`saved_model.pb`, `variables/`, `assets/`), any filesystem
            `tf.io.gfile` reads.
    """

    def __init__(self, export_dir: str):
        self.export_dir = export_dir
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(self.session, [SERVE_TAG], export_dir)
        self.signature_defs = dict(meta_graph.signature_def)
        self._callables = {}

    @property
    def signatures(self) -> list[str]:
        return sorted(name for name in self.signature_defs if not name.startswith("__"))

    def _callable(self, signature: str, input_names: tuple[str, ...]):
        key = (signature, input_names)
        if key not in self._callables:
            signature_def = self.signature_defs[signature]
            output_names = sorted(signature_def.outputs)
            run = self.session.make_callable(
                [signature_def.outputs[name].name for name in output_names],
                [signature_def.inputs[name].name for name in input_names],
            )
            dtypes = [tf.as_dtype(signature_def.inputs[name].dtype).as_numpy_dtype for name in input_names]
            self._callables[key] = output_names, dtypes, run
        return self._callables[key]

    def run(self, signature: str, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """`inputs` (every input of `signature`, by name) → its outputs by name. A signature the model
        lacks, or inputs that do not match it, raise ValueError with TF Serving's wording; a failing
        op raises its `tf.errors.OpError`."""
        if signature not in self.signature_defs:
            raise ValueError(f'Serving signature name: "{signature}" not found in signature def')
        expected = set(self.signature_defs[signature].inputs)
        if set(inputs) != expected:
            raise ValueError(
                f"input size does not match signature: inputs {sorted(inputs)} != {sorted(expected)}"
            )
        names = tuple(sorted(inputs))
        output_names, dtypes, run = self._callable(signature, names)
        values = run(*(np.asarray(inputs[name], dtype) for name, dtype in zip(names, dtypes, strict=True)))
        return dict(zip(output_names, values, strict=True))

    def close(self) -> None:
        self.session.close()
