"""MovieLensExampleGen: any layout of `movierec.data` → tf.Example interactions in protocol splits.

It writes one TFRecord folder per split (`train`, `eval` for validation users, `test`), plus a report
artifact with every rejected row counted and the split's parameters.

Two paths make the same Examples:

- data-parallel (`write_keyed_examples`): the temporal protocol (the default) and leave-last-out, on
  every layout but session-tsv. The rating files are read as sharded sources and parsed by the
  loader's own functions (`movierec.data.beam_io`), the split is made with Beam primitives
  (`movierec.data.beam_split`), and the Examples are built per user; no worker holds more than a
  piece of a file or one user's events.
- single-worker (`_LoadAndSplit`): the other protocols (random, given-split) and the session-tsv
  layout. One DoFn loads the whole dataset (`load_dataset`) and applies the protocol of
  `movierec.data.splits`, so its memory grows with the data; these protocols have no keyed version yet.
"""

import json
import logging
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
from movierec.constants import SPLIT_OF_ROLE, TRAIN
from movierec.data import Dataset, load_dataset
from movierec.data.beam_io import CHUNK_BYTES, ReadRatings, checksum_stream, load_report
from movierec.data.beam_split import KEYED_PROTOCOLS, SplitUser
from movierec.data.errors import DataError
from movierec.data.layouts import detect_layout
from movierec.data.loader import DatasetPlan, plan_dataset
from movierec.data.side_features import AGE_BAND_LOWER_BOUNDS, AGE_BAND_NAMES
from movierec.data.splits import make_split

log = logging.getLogger(__name__)

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
    if "item_first_training_rating" in row:  # Transform's title words count each movie once by it
        features["item_first_training_rating"] = int64_feature([row["item_first_training_rating"]])
    for name in ("gender", "occupation"):
        if isinstance(row.get(name), str):
            features[name] = bytes_feature([row[name]])
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def first_training_ratings(items: np.ndarray, timestamps: np.ndarray, users: np.ndarray, train: np.ndarray):
    """int64 [n]: 1 on each item's first training rating — the earliest, same-second ratings by the
    smaller user id (one per item: the loader rejects duplicate (user, item, timestamp) rows) — else 0.

    Args:
        items, timestamps, users: [n] the ratings' item ids (any type), timestamps and user ids
            (numbers: the Beam path compares them as numbers).
        train: the indices of the training ratings.
    """
    order = train[np.lexsort((users[train], timestamps[train], items[train]))]
    first = order[np.r_[True, items[order][1:] != items[order][:-1]]] if len(order) else order
    flags = np.zeros(len(items), np.int64)
    flags[first] = 1
    return flags


def _first_training_events(user: SplitUser) -> Iterator[tuple[int, tuple[int, int]]]:
    """(item, (timestamp, user)) of the user's earliest training rating of each item
    (`first_training_ratings` over the user's events): a per-item min over users gives its choice
    over all users."""
    train = np.flatnonzero(user.role == TRAIN)
    users = np.full(len(user.item), user.user, np.int64)
    flagged = np.flatnonzero(first_training_ratings(user.item, user.timestamp, users, train))
    for item, timestamp in zip(user.item[flagged].tolist(), user.timestamp[flagged].tolist(), strict=True):
        yield item, (timestamp, user.user)


class _LoadAndSplit(beam.DoFn):
    """Runs in one worker: reads the whole dataset, splits it, and emits (split, rows) chunks.

    The path of random, given-split and session-tsv data (no keyed version yet): its memory grows with
    the data. `write_keyed_examples` is the data-parallel path.
    """

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
        table["item_first_training_rating"] = first_training_ratings(  # ids: decimal strings
            table["item_id"].to_numpy(), table["timestamp"].to_numpy(), users.astype(np.int64), split.train
        )
        for name, rows in zip(SPLITS, (split.train, split.validation, split.test), strict=True):
            rows = np.sort(rows)  # file order inside a split; the chronological order is recomputed later
            for start in range(0, len(rows), CHUNK_ROWS):
                yield name, table.iloc[rows[start : start + CHUNK_ROWS]]


def _side_tables(plan: DatasetPlan) -> tuple[dict[int, tuple], dict[int, tuple]]:
    """{item id: (title, year, genres)} and {user id: (age, gender, occupation)} of the side tables,
    with missing values as None (what `interaction_table`'s left joins give `to_example`)."""

    def value(v):
        return None if v is None or (not isinstance(v, tuple) and pd.isna(v)) else v

    items = {}
    if plan.items is not None:
        for item_id, title, year, genres in plan.items[["item_id", "title", "year", "genres"]].itertuples(
            index=False, name=None
        ):
            items[int(item_id)] = (value(title), value(year), value(genres))
    users = {}
    if plan.users is not None:
        for user_id, age, gender, occupation in plan.users[
            ["user_id", "age", "gender", "occupation"]
        ].itertuples(index=False, name=None):
            users[int(user_id)] = (value(age), value(gender), value(occupation))
    return items, users


class _ToExamples(beam.DoFn):
    """One user's events with their roles → (split name, serialized tf.Example), as `to_example`
    writes the rows of `interaction_table` (side features joined by id, training counts added)."""

    def __init__(self, has_items: bool, has_users: bool) -> None:
        self.has_items, self.has_users = has_items, has_users

    def process(self, user, tables, first_ratings):
        items, users = tables
        user_features = users.get(user.user, (None, None, None))
        for item, rating, timestamp, role in zip(
            user.item.tolist(), user.rating, user.timestamp.tolist(), user.role.tolist(), strict=True
        ):
            if role < 0:
                continue
            row = {
                "user_id": str(user.user),
                "item_id": str(item),
                "rating": float(np.float32(rating)),  # the interactions table's float32
                "timestamp": timestamp,
                "training_ratings": user.training_ratings,
                "item_first_training_rating": int(
                    role == TRAIN and first_ratings.get(item) == (timestamp, user.user)
                ),
            }
            if self.has_items:
                row["title"], row["year"], row["genres"] = items.get(item, (None, None, None))
            if self.has_users:
                row["age"], row["gender"], row["occupation"] = user_features
            yield beam.pvalue.TaggedOutput(SPLIT_OF_ROLE[role], to_example(row))


class _WriteReport(beam.DoFn):
    """report.json of the data-parallel path: the same structure `_LoadAndSplit` writes."""

    def __init__(self, plan: DatasetPlan, strict: bool, report_path: str) -> None:
        self.plan, self.strict, self.report_path = plan, strict, report_path

    def process(self, checksum, layouts, read, issues, texts, split):
        plan = self.plan
        load = load_report(plan, layouts, read, issues, texts)
        if self.strict:
            load.raise_first()
        if (
            sum(
                f.rows_accepted for f in load.files if str(f.file) in {str(r.path) for r in plan.rating_files}
            )
            == 0
        ):
            raise DataError(
                plan.rating_files[0].path,
                None,
                f"no rating rows left: every one was rejected\n{load.summary()}",
            )
        if load.total_rejected:
            log.warning(
                "%s: %d rows rejected while loading %s; see the load report:\n%s",
                plan.folder,
                load.total_rejected,
                plan.layout,
                load.summary(),
            )
        report = {
            "dataset": {
                "name": plan.name,
                "layout": plan.layout,
                "checksum": checksum,
                "files": [str(f) for f in plan.files],
            },
            "load": load.to_dict(),
            "split": split,
        }
        tf.io.gfile.makedirs(os.path.dirname(self.report_path))
        with tf.io.gfile.GFile(self.report_path, "w") as handle:
            handle.write(json.dumps(report, indent=2, default=str))
        yield self.report_path


def data_parallel(data_path: str, protocol: str) -> DatasetPlan | None:
    """The dataset's plan (side tables read, rating files listed) when the data-parallel path
    applies: a keyed protocol (temporal, leave-last-out) on a layout read in pieces. None for the
    single-worker path: the other protocols (random, given-split), session-tsv files (read together:
    their time unit is decided across files), and a folder no layout fits (that path raises the
    loader's error from inside the pipeline)."""
    if protocol not in KEYED_PROTOCOLS:
        return None
    try:
        layout = detect_layout(data_path)
    except DataError:
        return None
    if layout == "session-tsv":
        return None
    return plan_dataset(data_path, layout=layout)


def write_keyed_examples(
    p: beam.Pipeline,
    plan: DatasetPlan,
    examples_uri: str,
    report_path: str,
    split_params: dict,
    strict: bool = False,
    chunk_bytes: int = CHUNK_BYTES,
    protocol: str = "temporal",
) -> None:
    """Adds the data-parallel ExampleGen to `p`: the planned dataset's rating files read in pieces,
    split by a keyed protocol, written as Examples under `examples_uri` (Split-<name>/), with the
    report at `report_path`.

    Args:
        p: the pipeline (any runner).
        plan: the dataset, from `movierec.data.loader.plan_dataset` (side tables already read).
        examples_uri: the Examples artifact's folder.
        report_path: where report.json goes.
        split_params: the protocol's keyword arguments (as for `movierec.data.splits.make_split`).
        strict: raise the first rejected row as a DataError, as `load_dataset(strict=True)`.
        chunk_bytes: the nominal size of a piece of a rating file.
        protocol: "temporal" or "leave-last-out" (`movierec.data.beam_split.KEYED_PROTOCOLS`).
    """
    read = p | "ReadRatings" >> ReadRatings(plan, chunk_bytes)
    split = read.events | "Split" >> KEYED_PROTOCOLS[protocol](**split_params)
    tables = p | "SideTables" >> beam.Create([_side_tables(plan)])
    first_ratings = (
        split.users
        | "FirstTrainingEvents" >> beam.FlatMap(_first_training_events)
        | "FirstTrainingRatings" >> beam.CombinePerKey(min)
        | "FirstRatingDict" >> beam.combiners.ToDict()
    )
    outputs = split.users | "ToExamples" >> beam.ParDo(
        _ToExamples(plan.items is not None, plan.users is not None),
        beam.pvalue.AsSingleton(tables),
        beam.pvalue.AsSingleton(first_ratings),
    ).with_outputs(*SPLITS)
    for name in SPLITS:
        _ = outputs[name] | f"Write{name}" >> beam.io.WriteToTFRecord(
            os.path.join(examples_uri, f"Split-{name}", "data_tfrecord"), file_name_suffix=".gz"
        )
    checksum = p | "Files" >> beam.Create([list(plan.files)]) | "Checksum" >> beam.Map(checksum_stream)
    _ = checksum | "WriteReport" >> beam.ParDo(
        _WriteReport(plan, strict, report_path),
        beam.pvalue.AsSingleton(read.layouts),
        beam.pvalue.AsSingleton(read.read),
        beam.pvalue.AsSingleton(read.issues),
        beam.pvalue.AsSingleton(read.texts),
        beam.pvalue.AsSingleton(split.summary),
    )


@component(use_beam=True)
def MovieLensExampleGen(
    examples: OutputArtifact[standard_artifacts.Examples],
    report: OutputArtifact[DataReport],
    data_path: Parameter[str],
    data_fingerprint: Parameter[str],
    protocol: Parameter[str] = "temporal",
    split_params: Parameter[str] = "{}",
    strict: Parameter[bool] = False,
    piece_bytes: Parameter[int] = CHUNK_BYTES,
    code_fingerprint: Parameter[str] = "",
    beam_pipeline: BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Reads GroupLens/Netflix files into tf.Examples.

    `piece_bytes`: the data-parallel path reads rating files in pieces of about this size (one Beam
    element each, so it bounds what one worker parses at once); the Examples do not depend on it.

    `data_fingerprint` (the files' checksum, computed when the pipeline is built) is part of the cache
    key, so changed data re-runs the pipeline while unchanged data is served from the cache;
    `code_fingerprint` (movierec.pipeline.fingerprint) does the same for changed movierec code.
    `split_params` is the protocol's parameters as JSON.
    """
    del data_fingerprint, code_fingerprint  # only part of the cache key
    if piece_bytes < 1:
        raise ValueError(f"piece_bytes must be >= 1, got {piece_bytes}")
    report_path = os.path.join(report.uri, "report.json")
    plan = data_parallel(data_path, protocol)
    if plan is not None:
        with beam_pipeline as p:
            write_keyed_examples(
                p, plan, examples.uri, report_path, json.loads(split_params), strict, piece_bytes, protocol
            )
    else:
        _write_single_worker(
            beam_pipeline, data_path, protocol, split_params, strict, examples.uri, report_path
        )
    examples.split_names = encode_split_names(list(SPLITS))
    with tf.io.gfile.GFile(report_path) as handle:
        summary = json.load(handle)
    examples.set_string_custom_property("split", json.dumps(summary["split"]))
    report.set_int_custom_property("rejected_rows", int(summary["load"].get("total_rejected", 0)))


def _write_single_worker(
    beam_pipeline: beam.Pipeline,
    data_path: str,
    protocol: str,
    split_params: str,
    strict: bool,
    examples_uri: str,
    report_path: str,
) -> None:
    """The single-worker path (see the module's docstring): every protocol, memory O(data)."""
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
                    os.path.join(examples_uri, f"Split-{name}", "data_tfrecord"), file_name_suffix=".gz"
                )
            )
