"""MovieLensExampleGen: any layout of `movierec.data` → tf.Example interactions in protocol splits.

The Beam pipeline reads the files inside a worker (nothing is collected in the driver), applies the
protocol of `movierec.data.splits` — the same function the CLI uses — and writes one TFRecord folder per
split (`train`, `eval` for validation users, `test`), plus a report artifact with every rejected row
counted and the split's parameters.
"""

import json
import os
from collections.abc import Iterator

import apache_beam as beam
import numpy as np
import pandas as pd
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import (
    BeamComponentParameter,
    OutputArtifact,
    Parameter,
)
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.types.standard_artifact_utils import encode_split_names

from movierec.components.artifacts import DataReport
from movierec.constants import SPLIT_OF_ROLE
from movierec.data import Dataset, load_dataset
from movierec.data.side_features import AGE_BAND_LOWER_BOUNDS, AGE_BAND_NAMES
from movierec.data.splits import make_split

SPLITS = tuple(SPLIT_OF_ROLE.values())  # TFX's names: eval holds the protocol's validation events
CHUNK_ROWS = 50_000
# Slicing features for the rating evaluation (TFMA slices on features of the Examples themselves):
# MovieLens 1M's age groups (its `age` is already one of these lower bounds; ML-100K's exact ages map
# onto them), and bands of a user's number of training ratings.
AGE_BANDS = tuple(zip(AGE_BAND_LOWER_BOUNDS, AGE_BAND_NAMES, strict=True))
ACTIVITY_BANDS = ((0, "0"), (1, "1-19"), (20, "20-49"), (50, "50-99"), (100, "100-199"), (200, "200+"))


def band(value: float, bands: tuple[tuple[int, str], ...]) -> str:
    """The label of the last band whose lower bound is <= value (the first band below all of them)."""
    label = bands[0][1]
    for lower, name in bands:
        if value >= lower:
            label = name
    return label


def bytes_feature(values) -> tf.train.Feature:
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[str(v).encode() for v in values]))


def int64_feature(values) -> tf.train.Feature:
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def float_feature(values) -> tf.train.Feature:
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def interaction_table(dataset: Dataset) -> pd.DataFrame:
    """Interactions joined with item and user side features (missing values made explicit)."""
    table = dataset.interactions
    if dataset.items is not None:
        items = dataset.items[["item_id", "title", "year", "genres"]]
        table = table.merge(items, on="item_id", how="left")
    if dataset.users is not None:
        users = dataset.users[["user_id", "age", "gender", "occupation"]]
        table = table.merge(users, on="user_id", how="left")
    return table


def to_example(row: dict) -> bytes:
    """One interaction. Side features are written only where known, so TFDV sees them as missing."""
    features = {
        "user_id": bytes_feature([row["user_id"]]),
        "item_id": bytes_feature([row["item_id"]]),
        "rating": float_feature([row["rating"]]),
        "timestamp": int64_feature([row["timestamp"]]),
    }
    if isinstance(row.get("title"), str):
        features["title"] = bytes_feature([row["title"]])
    if "year" in row and not pd.isna(row["year"]):
        features["year"] = int64_feature([row["year"]])
    if isinstance(row.get("genres"), tuple):
        features["genres"] = bytes_feature(row["genres"])
    if "age" in row and not pd.isna(row["age"]):
        features["age"] = int64_feature([row["age"]])
        features["age_band"] = bytes_feature([band(row["age"], AGE_BANDS)])
    if "training_ratings" in row:
        features["activity_band"] = bytes_feature([band(row["training_ratings"], ACTIVITY_BANDS)])
    if "item_training_ratings" in row:  # Transform weighs title words by it (each movie counts once)
        features["item_training_ratings"] = int64_feature([row["item_training_ratings"]])
    for name in ("gender", "occupation"):
        if isinstance(row.get(name), str):
            features[name] = bytes_feature([row[name]])
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


class _LoadAndSplit(beam.DoFn):
    """Runs in a worker: reads the dataset, splits it, and emits (split, rows) chunks."""

    def __init__(self, protocol: str, split_params: dict, strict: bool, report_path: str):
        self.protocol, self.split_params, self.strict = protocol, split_params, strict
        self.report_path = report_path

    def process(self, data_path: str) -> Iterator[tuple[str, pd.DataFrame]]:
        dataset = load_dataset(data_path, strict=self.strict)
        split = make_split(dataset.interactions, self.protocol, **self.split_params)
        report = {
            "dataset": {
                "name": dataset.name,
                "layout": dataset.layout,
                "checksum": dataset.checksum,
                "files": [str(f) for f in dataset.files],
            },
            "load": dataset.report.to_dict(),
            "split": split.describe(),
        }
        tf.io.gfile.makedirs(os.path.dirname(self.report_path))
        with tf.io.gfile.GFile(self.report_path, "w") as handle:
            handle.write(json.dumps(report, indent=2, default=str))
        table = interaction_table(dataset)
        users = table["user_id"].to_numpy()
        per_user = pd.Series(users[split.train]).value_counts()
        table["training_ratings"] = pd.Series(users).map(per_user).fillna(0).astype(np.int64).to_numpy()
        items = table["item_id"].to_numpy()
        per_item = pd.Series(items[split.train]).value_counts()
        table["item_training_ratings"] = pd.Series(items).map(per_item).fillna(0).astype(np.int64).to_numpy()
        for name, rows in zip(SPLITS, (split.train, split.validation, split.test), strict=True):
            rows = np.sort(rows)  # file order inside a split; the chronological order is recomputed later
            for start in range(0, len(rows), CHUNK_ROWS):
                yield name, table.iloc[rows[start : start + CHUNK_ROWS]]


@component(use_beam=True)
def MovieLensExampleGen(
    examples: OutputArtifact[standard_artifacts.Examples],
    report: OutputArtifact[DataReport],
    data_path: Parameter[str],
    data_fingerprint: Parameter[str],
    protocol: Parameter[str] = "temporal",
    split_params: Parameter[str] = "{}",
    strict: Parameter[bool] = False,
    code_fingerprint: Parameter[str] = "",
    beam_pipeline: BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Reads GroupLens/Netflix files into tf.Examples.

    `data_fingerprint` (the files' checksum, computed when the pipeline is built) is part of the cache
    key, so changed data re-runs the pipeline while unchanged data is served from the cache;
    `code_fingerprint` (movierec.pipeline.fingerprint) does the same for changed movierec code.
    `split_params` is the protocol's parameters as JSON.
    """
    del data_fingerprint, code_fingerprint  # only part of the cache key
    report_path = os.path.join(report.uri, "report.json")
    with beam_pipeline as p:
        chunks = (
            p
            | "DataPath" >> beam.Create([data_path])
            | "LoadAndSplit"
            >> beam.ParDo(_LoadAndSplit(protocol, json.loads(split_params), strict, report_path))
            | "Reshuffle" >> beam.Reshuffle()
        )
        for name in SPLITS:
            _ = (
                chunks
                | f"Select{name}" >> beam.Filter(lambda chunk, n=name: chunk[0] == n)
                | f"ToExamples{name}"
                >> beam.FlatMap(lambda chunk: (to_example(r) for r in chunk[1].to_dict("records")))
                | f"Write{name}"
                >> beam.io.WriteToTFRecord(
                    os.path.join(examples.uri, f"Split-{name}", "data_tfrecord"), file_name_suffix=".gz"
                )
            )
    examples.split_names = encode_split_names(list(SPLITS))
    with tf.io.gfile.GFile(report_path) as handle:
        summary = json.load(handle)
    examples.set_string_custom_property("split", json.dumps(summary["split"]))
    report.set_int_custom_property("rejected_rows", int(summary["load"].get("total_rejected", 0)))
