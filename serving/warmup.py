"""What TF Serving finds next to a servable's graph: warmup requests, and versions written atomically.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord file of
`tensorflow_serving.apis.prediction_log_pb2.PredictionLog`s) when it loads a version, before the
version takes traffic: the first real request then no longer pays for the graph's lazy
initialisation (lookup tables, kernels, allocations). The exports write one `predict_log` per
signature, built from the training data they were given (a real user's history or event), so the
warmup runs the code paths real requests run. A warmup request never changes a servable's state
(RRN's `update_state` is warmed with an event it rejects).

`save_servable` writes a version into a staging folder next to its destination and then publishes it
(a rename for local folders, `movierec.storage.publish_folder`; on object stores, which cannot rename
a folder, file by file with `saved_model.pb` last: TF Serving, which polls the model's folder, cannot
load a version before that file exists), so it never loads half a version. `copy_version` publishes
a copy of a finished version the same way (the Pusher's copy into the push destination,
`components/pusher.py`).
"""

from __future__ import annotations

import os
import posixpath
import uuid
from collections.abc import Mapping
from typing import Any

import numpy as np
import tensorflow as tf

from movierec import storage
from movierec.serving.keras_variables import plain_variables_while_saving
from movierec.serving.session_servable import SessionServable

ASSETS_EXTRA = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
SAVED_MODEL_FILE = "saved_model.pb"


def warmup_path(export_dir: str) -> str:
    return posixpath.join(os.fspath(export_dir).rstrip("/"), ASSETS_EXTRA, WARMUP_FILE)


def predict_log(model_name: str, signature: str, inputs: Mapping[str, Any]):
    """A `PredictionLog` whose `predict_log.request` is a PredictRequest for `signature` (inputs as
    numpy-convertible values; strings as bytes or str)."""
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = signature
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
    return prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))


def write_warmup(export_dir: str, logs: list) -> None:
    """Writes `logs` as the warmup file of the SavedModel in `export_dir`."""
    tf.io.gfile.makedirs(posixpath.dirname(warmup_path(export_dir)))
    with tf.io.TFRecordWriter(warmup_path(export_dir)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def read_warmup(export_dir: str) -> list:
    """The `PredictionLog`s of an export's warmup file (an error names the file if it is unreadable)."""
    from tensorflow_serving.apis import prediction_log_pb2

    path = warmup_path(export_dir)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: no warmup file (exports write one per version)")
    logs = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record)
        logs.append(log)
    return logs


def request_inputs(request) -> dict[str, np.ndarray]:
    """A PredictRequest's inputs as numpy arrays."""
    return {name: tf.make_ndarray(proto) for name, proto in request.inputs.items()}


def replay(loaded, logs: list) -> list[dict[str, np.ndarray]]:
    """Runs every warmup request against a loaded SavedModel — `tf.saved_model.load`'s object or a
    `SessionServable` (loaded as TF Serving loads it) — and returns the answers. A request naming a
    signature the model lacks is an error naming both."""
    answers = []
    for n, log in enumerate(logs):
        request = log.predict_log.request
        name = request.model_spec.signature_name or "serving_default"
        if name not in loaded.signatures:
            raise KeyError(f"warmup request {n}: signature {name!r} not in {sorted(loaded.signatures)}")
        inputs = request_inputs(request)
        if isinstance(loaded, SessionServable):
            answers.append(loaded.run(name, inputs))
        else:
            tensors = {key: tf.constant(value) for key, value in inputs.items()}
            answers.append({key: value.numpy() for key, value in loaded.signatures[name](**tensors).items()})
    return answers


def save_servable(module: tf.Module, export_dir: str, signatures: dict, warmup: list) -> None:
    """Writes the SavedModel with its warmup file into a staging folder beside `export_dir`, then
    publishes it there (replacing any previous folder): readers see a whole version or none."""
    target = os.fspath(export_dir).rstrip("/")
    staging = staging_path(target)
    try:
        with plain_variables_while_saving(module):  # else TF Serving finds Keras weights unrestored
            tf.saved_model.save(module, staging, signatures=signatures)
        write_warmup(staging, warmup)
        _publish(staging, target)
    finally:
        _remove(staging)


def copy_version(source: str, target: str) -> None:
    """Copies the finished SavedModel folder `source` (a Trainer's export: `saved_model.pb`,
    `variables/`, `assets/`, `assets.extra/`) to `target`, replacing any folder there, as
    `save_servable` writes one: every file into a staging folder beside `target`, then published
    (a rename; on object stores file by file, `saved_model.pb` last). A failure at any point leaves
    `target` as it was (absent, or the previous folder) and no staging folder."""
    source, target = os.fspath(source).rstrip("/"), os.fspath(target).rstrip("/")
    if not tf.io.gfile.exists(posixpath.join(source, SAVED_MODEL_FILE)):
        raise FileNotFoundError(f"source: {source} holds no {SAVED_MODEL_FILE}, so no SavedModel to copy")
    staging = staging_path(target)
    try:
        if not storage.is_uri(staging):  # folders too: an empty `assets/` is part of the SavedModel
            for folder, _, _ in tf.io.gfile.walk(source):
                tf.io.gfile.makedirs(posixpath.join(staging, folder[len(source) :].lstrip("/")))
        for name in _existing_files(source):
            copy_file(posixpath.join(source, name), posixpath.join(staging, name))
        _publish(staging, target)
    finally:
        _remove(staging)


def copy_file(source: str, destination: str) -> None:
    """One file of `copy_version` (its parent folder created first)."""
    tf.io.gfile.makedirs(posixpath.dirname(destination))
    tf.io.gfile.copy(source, destination, overwrite=True)


def staging_path(target: str) -> str:
    """A new folder name beside `target` for writing it before it is published."""
    parent, name = posixpath.split(target) if storage.is_uri(target) else os.path.split(target)
    # a dot name: TF Serving takes only all-digit folder names for versions, and skips this one
    return (posixpath.join if storage.is_uri(target) else os.path.join)(
        parent, f".{name}.staging-{uuid.uuid4().hex[:12]}"
    )


def _publish(staging: str, target: str) -> None:
    if storage.is_uri(target):
        _publish_files(staging, target)
    else:
        storage.publish_folder(staging, target)  # a rename of the whole folder


def _existing_files(root: str) -> list[str]:
    """The files below a URI folder, relative to it. `tf.io.gfile.walk` is checked file by file:
    ram:// lists `assets/.extra` (a prefix match of `assets.extra`) under `assets`."""
    return [
        posixpath.join(folder, name)[len(root) :].lstrip("/")
        for folder, _, names in tf.io.gfile.walk(root)
        for name in names
        if not tf.io.gfile.isdir(posixpath.join(folder, name))
        and tf.io.gfile.exists(posixpath.join(folder, name))
    ]


def _remove(folder: str) -> None:
    """Deletes a folder if it exists; on a URI, file by file when the recursive delete fails (ram://,
    whose folder listing above names files that do not exist)."""
    try:
        storage.remove_tree(folder)
    except OSError:
        if not storage.is_uri(folder):
            raise
        for name in _existing_files(folder):
            tf.io.gfile.remove(posixpath.join(folder, name))


def _publish_files(staging: str, target: str) -> None:
    """Object stores have no folder rename: the previous version is removed, then every file is
    renamed into `target`, `saved_model.pb` last (TF Serving cannot load a version before it exists)."""
    files = sorted(_existing_files(staging), key=lambda name: name == SAVED_MODEL_FILE)
    _remove(target)
    for name in files:
        destination = posixpath.join(target, name)
        tf.io.gfile.makedirs(posixpath.dirname(destination))
        tf.io.gfile.rename(posixpath.join(staging, name), destination, overwrite=True)


def example(features: Mapping[str, Any]) -> bytes:
    """A serialized tf.Example of {name: value or list of values} (str/bytes, int or float)."""

    def feature(values) -> tf.train.Feature:
        values = list(values) if isinstance(values, list | tuple | np.ndarray) else [values]
        if all(isinstance(v, str | bytes) for v in values):
            encoded = [v.encode() if isinstance(v, str) else v for v in values]
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=encoded))
        if all(isinstance(v, int | np.integer) for v in values):
            return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))
        return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))

    return tf.train.Example(
        features=tf.train.Features(feature={name: feature(v) for name, v in features.items()})
    ).SerializeToString()


def interaction_example(raw_feature_spec: Mapping[str, Any], known: Mapping[str, Any]) -> bytes:
    """An interaction Example that `raw_feature_spec` (Transform's raw schema) parses: the `known`
    values (e.g. a real event's user_id, item_id, rating, timestamp), every other fixed-length
    feature filled with "" or 0 (a variable-length one is left out)."""
    values = {}
    for name, spec in raw_feature_spec.items():
        if name in known:
            values[name] = known[name]
        elif isinstance(spec, tf.io.FixedLenFeature) and spec.default_value is None:
            size = int(np.prod(spec.shape)) if spec.shape else 1
            zero = "" if spec.dtype == tf.string else (0 if spec.dtype.is_integer else 0.0)
            values[name] = [zero] * size
    return example(values)


def sample_event(rated: Any, min_history: int = 1) -> dict[str, Any] | None:
    """A real training event for warmup requests: the latest `min_history` events of the first user
    (lowest index) who has that many, from a `UserSequences` (or a (users, items) pair of index
    arrays, which has no times or ratings). None when no user has that many events."""
    if rated is None:
        return None
    if hasattr(rated, "indptr"):
        lengths = np.diff(rated.indptr)
        users = np.flatnonzero(lengths >= min_history)
        if not len(users):
            return None
        user = int(users[0])
        rows = slice(int(rated.indptr[user + 1]) - min_history, int(rated.indptr[user + 1]))
        return {
            "user": user,
            "items": [int(i) for i in rated.items[rows]],
            "timestamps": [int(t) for t in rated.timestamps[rows]],
            "rating": float(rated.ratings[rows][-1]),
        }
    users, items = (np.asarray(a, np.int64) for a in rated)
    counts = np.bincount(users) if len(users) else np.zeros(0, np.int64)
    candidates = np.flatnonzero(counts >= min_history)
    if not len(candidates):
        return None
    user = int(candidates[0])
    mine = items[users == user][-min_history:]
    return {"user": user, "items": [int(i) for i in mine], "timestamps": None, "rating": None}
