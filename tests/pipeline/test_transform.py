"""preprocessing_fn on Beam: title words, genres and user fields as the command line reads them, and
the transform graph (what the exports embed) giving the same indices as Transform on raw strings."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from movierec.data import load_dataset
from movierec.data.side_features import title_words
from movierec.pipeline.config import SCHEMA_FILE
from movierec.pipeline.modules import transform
from movierec.pipeline.modules.transform import TITLE_LENGTH, preprocessing_fn


def _schema() -> schema_pb2.Schema:
    path = os.path.join(os.path.dirname(transform.__file__), os.pardir, SCHEMA_FILE)
    return text_format.Parse(open(path).read(), schema_pb2.Schema())


def test_title_words_in_the_graph_equal_the_command_lines_on_every_ml100k_title(ml100k_dir):
    titles = load_dataset(ml100k_dir).items["title"].astype(str).tolist()
    titles += ["Tora! Tora! Tora! (1970)", "(1995)", "  Café  Society (2016) ", "Ça (Ça) (1999)", "ÉTÉ 85"]
    graph = transform.title_words(tf.constant(titles)).to_list()
    assert [[w.decode() for w in row] for row in graph] == [title_words(t) for t in titles]


def _interaction(user, item, title, genres, rating=4.0, gender=None, item_ratings=1, **extra):
    row = {
        "user_id": [user],
        "item_id": [item],
        "rating": [rating],
        "timestamp": [1],
        "title": [title],
        "genres": list(genres),
        "item_training_ratings": [item_ratings],
        "gender": [gender] if gender else [],
    }
    return row | extra


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    """Transform (analyse + transform on Beam) over a few training ratings; the transform graph on disk."""
    folder = str(tmp_path_factory.mktemp("transform"))
    # "star" is in 2 movies' titles; "wars" in one movie rated 3 times (counted once); "tora" 3 times in
    # one title (once); "heat" in 2 movies
    rows = [
        _interaction("u1", "1", "Star Wars (1977)", ["Action", "Sci-Fi"], gender="M", item_ratings=3),
        _interaction("u2", "1", "Star Wars (1977)", ["Action", "Sci-Fi"], gender="F", item_ratings=3),
        _interaction("u3", "1", "Star Wars (1977)", ["Action", "Sci-Fi"], item_ratings=3),
        _interaction("u1", "2", "Star Trek (1979)", ["Sci-Fi"], gender="M"),
        _interaction("u1", "3", "Tora! Tora! Tora! (1970)", ["War"], gender="M"),
        _interaction("u2", "4", "Heat (1995)", ["(no genres listed)"], gender="F"),
        _interaction("u2", "5", "The Heat (2013)", [], gender="F"),
    ]
    feature_spec = schema_utils.schema_as_feature_spec(_schema()).feature_spec
    spec = {k: v for k, v in feature_spec.items() if k in rows[0]}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    with tft_beam.Context(temp_dir=os.path.join(folder, "tmp")):
        (data, _), transform_fn = (rows, metadata) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(folder)
    return rows, data, tft.TFTransformOutput(folder)


def _words(output, row) -> list[str]:
    vocabulary = [w.decode() for w in output.vocabulary_by_name("title_word")]
    return [vocabulary[i] if i < len(vocabulary) else "<oov>" for i in row if i >= 0]


def test_title_vocabulary_counts_each_movie_once_and_strips_the_year(transformed):
    _, data, output = transformed
    assert sorted(w.decode() for w in output.vocabulary_by_name("title_word")) == ["heat", "star"]
    assert _words(output, data[0]["title_word_index"]) == ["star", "<oov>"]  # "wars": one movie only
    assert _words(output, data[4]["title_word_index"]) == ["<oov>"] * 3  # "tora" x3 in one title
    assert len(data[0]["title_word_index"]) == TITLE_LENGTH


def test_genres_and_user_fields(transformed):
    _, data, output = transformed
    genres = [g.decode() for g in output.vocabulary_by_name("genre")]
    assert sorted(genres) == ["Action", "Sci-Fi", "War"]  # "(no genres listed)" is no genre
    assert [genres[i] for i in data[0]["genre_index"] if i >= 0] == ["Action", "Sci-Fi"]
    assert (np.asarray(data[5]["genre_index"]) == -1).all()
    genders = [g.decode() for g in output.vocabulary_by_name("gender")]
    assert sorted(genders) == ["F", "M"]
    assert genders[data[0]["gender_index"]] == "M"
    assert data[2]["gender_index"] == -1  # unknown, not a vocabulary entry


def test_the_transform_graph_maps_raw_strings_as_transform_did(transformed):
    rows, data, output = transformed
    layer = output.transform_features_layer()
    titles = [r["title"][0] for r in rows] + ["Star of the Heat Unseen (2031)"]
    # the title alone: the weights only counted words in the analysis, serving does not need them
    served = layer({"title": tf.constant(titles)[:, None]})["title_word_index"].numpy()
    for k, row in enumerate(data):
        np.testing.assert_array_equal(served[k], row["title_word_index"])
    # a title never seen: known words keep their index, the rest is the OOV bucket
    assert _words(output, served[-1]) == ["star", "<oov>", "<oov>", "heat", "<oov>"]
