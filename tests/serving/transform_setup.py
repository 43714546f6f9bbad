"""Shared by the serving tests: a real Transform output of the pipeline's `preprocessing_fn` over given
interactions, and interaction Examples as ExampleGen writes them."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import tensorflow as tf

ANALYSE = textwrap.dedent(
    """
    import json, os, sys
    import apache_beam as beam
    import tensorflow as tf
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

    from movierec.pipeline import modules
    from movierec.pipeline.config import SCHEMA_FILE
    from movierec.pipeline.modules.transform import preprocessing_fn

    folder = sys.argv[1]
    with open(os.path.join(folder, "rows.json")) as f:
        rows = json.load(f)
    # the pipeline's reviewed schema, for the features the rows have
    path = os.path.join(os.path.dirname(modules.__file__), os.pardir, SCHEMA_FILE)
    with open(path) as f:
        schema = text_format.Parse(f.read(), schema_pb2.Schema())
    spec = schema_utils.schema_as_feature_spec(schema).feature_spec
    names = {name for row in rows for name in row}
    spec = {name: feature for name, feature in spec.items() if name in names}
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(spec))
    rows = [
        {name: (row.get(name, []) if isinstance(row.get(name, []), list) else [row[name]]) for name in spec}
        for row in rows
    ]
    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=os.path.join(folder, "tmp")):
        transform_fn = (pipeline | beam.Create(rows), metadata) | tft_beam.AnalyzeDataset(preprocessing_fn)
        _ = transform_fn | tft_beam.WriteTransformFn(os.path.join(folder, "transform"))
    # the raw schema, which TFX's Transform also writes
    raw = os.path.join(folder, "transform", tft.TFTransformOutput.RAW_METADATA_DIR)
    metadata_io.write_metadata(metadata, raw)
    sys.stdout.flush()
    os._exit(0)  # Beam's objects, left for interpreter shutdown, crash it (a segmentation fault)
    """
)


def transform_output(folder, rows: list[dict]):
    """Transform's output for these interactions (dicts of raw features, a list for several values):
    the pipeline's own preprocessing_fn, analysed with tensorflow-transform on Beam's direct runner,
    in a child process: Beam's leftovers crash the interpreter that ran it when it exits."""
    import tensorflow_transform as tft

    (folder / "rows.json").write_text(json.dumps(rows))
    subprocess.run([sys.executable, "-c", ANALYSE, str(folder)], check=True)
    return tft.TFTransformOutput(str(folder / "transform"))


def example(user=None, item=None, timestamp=None, **extra) -> bytes:
    """An interaction Example as ExampleGen writes it (plus any other raw features)."""

    def value(v):
        if isinstance(v, list):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[x.encode() for x in v]))
        if isinstance(v, str):
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=[v.encode()]))
        if isinstance(v, float):
            return tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v)]))

    features = {"user_id": user, "item_id": item, "timestamp": timestamp, **extra}
    features = {k: value(v) for k, v in features.items() if v is not None}
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()
