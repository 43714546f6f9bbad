"""Artifacts and data on a non-local filesystem, as inside a Kubeflow pod (where they are gs:// URIs).

TensorFlow's in-memory `ram://` filesystem stands in for GCS: it is reached only through tf.io.gfile,
exactly like gs://, so code that slips back to pathlib or open() fails here. pathlib would turn
"ram://x/y" into the local relative path "ram:/x/y", which is why every test also checks that no
local "ram:" folder appeared.
"""

import contextlib
import os
import subprocess
import sys
import uuid

import numpy as np
import pytest
import tensorflow as tf

from movierec.data import DataError, detect_layout, load_dataset
from movierec.models import QueryBatch, TrainingData, UserSequences, build_model, load_model, save_model


@pytest.fixture
def ram_root(tmp_path, monkeypatch):
    """A fresh ram:// folder; the working directory is an empty temporary folder, so a path
    mishandled as local shows up as tmp_path/"ram:"."""
    monkeypatch.chdir(tmp_path)
    root = f"ram://movierec-test-{uuid.uuid4().hex}"
    tf.io.gfile.makedirs(root)
    yield root
    # ram:// lists a SavedModel's `assets.extra` also as `assets/.extra`, which it cannot delete
    with contextlib.suppress(tf.errors.NotFoundError):
        tf.io.gfile.rmtree(root)
    assert not (tmp_path / "ram:").exists(), "a ram:// path was written as a local path"


def copy_to_ram(folder, destination: str) -> str:
    tf.io.gfile.makedirs(destination)
    for name in os.listdir(folder):
        tf.io.gfile.copy(os.path.join(folder, name), f"{destination}/{name}")
    return destination


def chains(n_users=12, n_items=15, length=5, seed=0) -> TrainingData:
    """Every user watches consecutive items: something the models can learn in one or two epochs."""
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n_items - length, n_users)
    return TrainingData(
        n_users, n_items, UserSequences.from_lists([list(range(s, s + length)) for s in starts])
    )


# -- the data layer ---------------------------------------------------------------------------------------


def test_a_dataset_on_a_uri_loads_exactly_like_its_local_copy(fixtures_dir, ram_root):
    uri = copy_to_ram(fixtures_dir / "ml-100k", f"{ram_root}/ml-100k")
    local = load_dataset(fixtures_dir / "ml-100k")

    assert detect_layout(uri) == "ml-100k"
    remote = load_dataset(uri)
    assert (remote.name, remote.layout, remote.checksum) == (local.name, local.layout, local.checksum)
    assert remote.interactions.equals(local.interactions)
    assert remote.items.equals(local.items) and remote.users.equals(local.users)
    assert list(remote.files) == [f"{uri}/{n}" for n in ("u.data", "u.genre", "u.item", "u.user")]


def test_the_pipeline_data_fingerprint_reads_uris(fixtures_dir, ram_root):
    from movierec.pipeline.pipeline import data_fingerprint

    uri = copy_to_ram(fixtures_dir / "ml-100k", f"{ram_root}/ml-100k")
    tf.io.gfile.makedirs(f"{uri}/extra")
    tf.io.gfile.copy(f"{uri}/u.genre", f"{uri}/extra/notes.txt")
    plain = copy_to_ram(fixtures_dir / "ml-100k", f"{ram_root}/plain")  # same files, no subfolder
    assert data_fingerprint(uri) != data_fingerprint(plain)  # the nested file counts
    tf.io.gfile.rmtree(f"{uri}/extra")
    assert data_fingerprint(uri) == data_fingerprint(plain) == data_fingerprint(str(fixtures_dir / "ml-100k"))


def test_bad_rows_and_missing_files_on_a_uri_are_reported_with_file_and_line(fixtures_dir, ram_root):
    uri = copy_to_ram(fixtures_dir / "ml-100k", f"{ram_root}/ml-100k")
    tf.io.gfile.remove(f"{uri}/u.data")  # ram:// appends when a file is rewritten (unlike gs://)
    with tf.io.gfile.GFile(f"{uri}/u.data", "wb") as handle:
        handle.write(b"1\t1\t4\t880000000\n2\t2\t9\t880000001\n")
    with pytest.raises(DataError) as info:
        load_dataset(uri, strict=True)
    assert (info.value.path, info.value.line) == (f"{uri}/u.data", 2)
    assert str(info.value).startswith(f"{uri}/u.data:2: rating 9 out of range")

    tf.io.gfile.remove(f"{uri}/u.item")
    with pytest.raises(DataError, match=r"missing required file u\.item") as info:
        load_dataset(uri)
    assert info.value.path == f"{uri}/u.item"
    with pytest.raises(DataError, match="dataset folder does not exist"):
        load_dataset(f"{ram_root}/nowhere")


def test_local_data_is_read_without_importing_tensorflow(fixtures_dir):
    # movierec.storage imports TensorFlow for URIs only: the data layer stays light for local files.
    code = (
        "import sys; from movierec.data import load_dataset; "
        f"load_dataset({str(fixtures_dir / 'ml-100k')!r}); assert 'tensorflow' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- models ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, hparams",
    [
        ("bpr-mf", {"epochs": 1, "embedding_dim": 8}),  # Keras .keras archive
        ("itemknn", {}),  # scipy and numpy .npz
        ("gru4rec", {"epochs": 1, "hidden_size": 16, "batch_size": 4, "n_sample": 4}),
    ],
)
def test_train_save_load_score_round_trip_on_a_uri(name, hparams, ram_root):
    data = chains()
    model = build_model(name, **hparams).fit(data)
    directory = f"{ram_root}/models/{name}"
    save_model(model, directory)
    assert tf.io.gfile.exists(f"{directory}/recommender.json")

    restored = load_model(directory)
    assert type(restored) is type(model) and restored.get_config() == model.get_config()
    users = np.arange(data.n_users)
    batch = QueryBatch(users, np.full(data.n_users, 3), np.zeros_like(users), data.sequences)
    expected = model.score(batch)
    np.testing.assert_array_equal(restored.score(batch), expected)
    assert np.ptp(expected, axis=1).min() > 0  # trained: the scores discriminate between items


# -- the serving export ------------------------------------------------------------------------------------


def transform_output(folder, interactions: list[tuple[str, str, int]]):
    """Transform's output for these (user, item, timestamp) events: the pipeline's own preprocessing_fn,
    analysed with tensorflow-transform on Beam's direct runner."""
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from movierec.pipeline.modules.transform import preprocessing_fn

    # one value per feature, shape [1]: the pipeline's schema of ExampleGen's interactions
    spec = {
        "user_id": tf.io.FixedLenFeature([1], tf.string),
        "item_id": tf.io.FixedLenFeature([1], tf.string),
        "rating": tf.io.FixedLenFeature([1], tf.float32),
        "timestamp": tf.io.FixedLenFeature([1], tf.int64),
    }
    rows = [{"user_id": [u], "item_id": [i], "rating": [4.0], "timestamp": [t]} for u, i, t in interactions]
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=str(folder / "tmp")):
        transform_fn = (pipeline | beam.Create(rows), metadata) | tft_beam.AnalyzeDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(str(folder / "transform"))
    # the raw schema, which TFX's Transform also writes (the serving export parses requests with it)
    metadata_io.write_metadata(metadata, str(folder / "transform" / tft.TFTransformOutput.RAW_METADATA_DIR))
    return tft.TFTransformOutput(str(folder / "transform"))


@pytest.mark.slow  # tensorflow-transform analysis on Beam: about 30 s
def test_gru4rec_serving_export_on_a_uri_loads_and_serves_the_trained_scores(tmp_path, ram_root):
    from movierec.components.histories import vocabulary
    from movierec.serving.export import export_for_serving

    data = chains()
    seq = data.sequences
    raw = [(f"u{u}", f"m{i}", int(t)) for u, i, t in zip(seq.users, seq.items, seq.timestamps, strict=True)]
    output = transform_output(tmp_path, raw)
    items = vocabulary(output, "item_id")
    # retrain in Transform's id space, as the Trainer does, so the export maps raw ids correctly
    index = {raw_id: k for k, raw_id in enumerate(items)}
    mapped = [
        [index[f"m{i}"] for i in seq.items[a:b]] for a, b in zip(seq.indptr[:-1], seq.indptr[1:], strict=True)
    ]
    data = TrainingData(data.n_users, len(items), UserSequences.from_lists(mapped))
    model = build_model("gru4rec", epochs=1, hidden_size=16, batch_size=4, n_sample=4).fit(data)

    save_model(model, f"{ram_root}/model/recommender")
    restored = load_model(f"{ram_root}/model/recommender")
    export_dir = f"{ram_root}/model/Format-Serving"
    assert export_for_serving(restored, output, items, export_dir)
    assert tf.io.gfile.exists(f"{export_dir}/saved_model.pb")
    assert tf.io.gfile.exists(f"{export_dir}/assets.extra/tf_serving_warmup_requests")
    assert tf.io.gfile.listdir(f"{ram_root}/model") == ["Format-Serving", "recommender"]  # no staging left

    served = tf.saved_model.load(export_dir).signatures["serving_default"]
    history = mapped[0][:3]
    request = tf.train.Example(
        features=tf.train.Features(
            feature={
                "item_ids": tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[items[i].encode() for i in history])
                )
            }
        )
    ).SerializeToString()
    response = served(examples=tf.constant([request]))
    returned = response["item_ids"].numpy()[0]
    served_scores = response["scores"].numpy()[0]
    # what evaluation scores for the same history (one session); the history's items are never served
    # (the top-K covers the whole small catalogue here: the last slots are empty, id "" at -inf)
    scores = model.score(QueryBatch(np.array([0]), np.array([3]), np.array([0]), data.sequences))[0]
    scores[history] = -np.inf
    assert list(returned[-len(history) :]) == [b""] * len(history)
    assert np.isneginf(served_scores[-len(history) :]).all()
    served_ids = [index[v.decode()] for v in returned[: -len(history)]]
    assert served_ids == list(np.argsort(-scores, kind="stable")[: -len(history)])
    np.testing.assert_allclose(served_scores[: -len(history)], scores[served_ids], rtol=1e-5)
