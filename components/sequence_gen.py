"""SequenceGen: per-user and per-item histories, built once (on Beam) and reused by every model.

Input: the interaction Examples of MovieLensExampleGen (all splits). Outputs:
- `user_histories` — one Example per user (its features are read by `movierec.components.histories`)
  with all of the user's kept events in chronological order (same-timestamp events by item id here;
  readers re-order tie groups by the model's item index, see `movierec.components.histories`), the
  role of each event (0 train, 1 validation, 2 test)
  and session starts. Split `train` holds every user's training events only; `eval` and `test` hold
  the full histories of validation and test users respectively. Two more splits carry the side
  tables of the training data, as raw features exactly as ExampleGen wrote them (so the transform
  graph maps them as it maps a serving request): `items`, one Example per movie with training events
  (`item_id` and the movie's `title`, `year`, `genres` where known), and `users`, one per user with
  training events (`user_id`, `age`, `age_band`, `gender`, `occupation` where known). The Trainer
  turns them into the models' side features (`movierec.components.side_tables`).
- `item_histories` — one Example per item with its training events in time order (RRN, IARN).
"""

import os
from collections.abc import Iterable

import apache_beam as beam
import numpy as np
import tensorflow as tf
from tfx.dsl.component.experimental.annotations import (
    BeamComponentParameter,
    InputArtifact,
    OutputArtifact,
    Parameter,
)
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.types.standard_artifact_utils import decode_split_names, encode_split_names

from movierec.components.example_gen import bytes_feature, float_feature, int64_feature
from movierec.constants import DEFAULT_SESSION_GAP, SPLIT_OF_ROLE, TRAIN
from movierec.data.splits import session_starts

ROLE_OF_SPLIT = {split: role for role, split in SPLIT_OF_ROLE.items()}
ITEMS_SPLIT, USERS_SPLIT = "items", "users"
SIDE_TABLES = {  # split → (key feature, the side features it keeps)
    ITEMS_SPLIT: ("item_id", ("title", "year", "genres")),
    USERS_SPLIT: ("user_id", ("age", "age_band", "gender", "occupation")),
}


def _side_row(record: bytes, key: str, names: tuple[str, ...]) -> tuple[str, bytes]:
    """(the entity's raw id, an Example of its key and side features only) from an interaction."""
    features = tf.train.Example.FromString(record).features.feature
    row = tf.train.Example()
    for name in (key, *names):
        if name in features:
            row.features.feature[name].CopyFrom(features[name])
    return features[key].bytes_list.value[0].decode(), row.SerializeToString(deterministic=True)


def _parse(record: bytes, role: int) -> tuple[str, tuple]:
    features = tf.train.Example.FromString(record).features.feature
    user = features["user_id"].bytes_list.value[0].decode()
    item = features["item_id"].bytes_list.value[0].decode()
    return user, (
        int(features["timestamp"].int64_list.value[0]),
        item,
        float(features["rating"].float_list.value[0]),
        role,
    )


def _user_history(user_events: tuple[str, Iterable[tuple]], session_gap: int) -> list[tuple[str, bytes]]:
    user, events = user_events
    # chronological order; tie groups by item id (any fixed order: readers re-order them)
    events = sorted(events, key=lambda e: (e[0], e[1]))
    timestamps = np.array([e[0] for e in events], dtype=np.int64)
    starts = session_starts(np.zeros(len(events), dtype=np.int64), timestamps, session_gap)
    roles = [e[3] for e in events]
    example = tf.train.Example(
        features=tf.train.Features(
            feature={
                "user_id": bytes_feature([user]),
                "item_ids": bytes_feature([e[1] for e in events]),
                "timestamps": int64_feature(timestamps),
                "ratings": float_feature([e[2] for e in events]),
                "roles": int64_feature(roles),
                "session_start": int64_feature(starts.astype(np.int64)),
            }
        )
    )
    # training events of every user; full history in the user's evaluation split (selected by role,
    # not as a prefix: a held-out event may share its second with training events)
    train_positions = [i for i, r in enumerate(roles) if r == TRAIN]
    outputs = []
    eval_roles = {r for r in roles if r != TRAIN}
    if train_positions:
        prefix = tf.train.Example()
        prefix.CopyFrom(example)
        for name in ("item_ids", "timestamps", "ratings", "roles", "session_start"):
            feature = prefix.features.feature[name]
            kind = feature.WhichOneof("kind")
            values = list(getattr(feature, kind).value)
            del getattr(feature, kind).value[:]
            getattr(feature, kind).value.extend(values[i] for i in train_positions)
        outputs.append((SPLIT_OF_ROLE[TRAIN], prefix.SerializeToString()))
    outputs.extend((SPLIT_OF_ROLE[role], example.SerializeToString()) for role in sorted(eval_roles))
    return outputs


def _item_history(item_events: tuple[str, Iterable[tuple]]) -> bytes:
    item, events = item_events
    events = sorted(events)  # (timestamp, user, rating)
    return tf.train.Example(
        features=tf.train.Features(
            feature={
                "item_id": bytes_feature([item]),
                "user_ids": bytes_feature([e[1] for e in events]),
                "timestamps": int64_feature([e[0] for e in events]),
                "ratings": float_feature([e[2] for e in events]),
            }
        )
    ).SerializeToString()


@component(use_beam=True)
def SequenceGen(
    examples: InputArtifact[standard_artifacts.Examples],
    user_histories: OutputArtifact[standard_artifacts.Examples],
    item_histories: OutputArtifact[standard_artifacts.Examples],
    session_gap: Parameter[int] = DEFAULT_SESSION_GAP,
    code_fingerprint: Parameter[str] = "",
    beam_pipeline: BeamComponentParameter[beam.Pipeline] = None,
) -> None:
    """Groups interactions into chronological histories (sessions split at `session_gap` seconds).

    `code_fingerprint` (movierec.pipeline.fingerprint) only keys the cache: changed code re-runs it."""
    del code_fingerprint
    splits = [s for s in decode_split_names(examples.split_names) if s in ROLE_OF_SPLIT]
    with beam_pipeline as p:
        records = {
            split: p
            | f"Read{split}" >> beam.io.ReadFromTFRecord(os.path.join(examples.uri, f"Split-{split}", "*"))
            for split in splits
        }
        events = [
            records[split] | f"Parse{split}" >> beam.Map(_parse, ROLE_OF_SPLIT[split]) for split in splits
        ] | "AllEvents" >> beam.Flatten()
        train_split = SPLIT_OF_ROLE[TRAIN]
        for table, (key, names) in SIDE_TABLES.items():
            _ = (
                records[train_split]
                | f"{table}Rows" >> beam.Map(_side_row, key, names)
                # every interaction of an entity carries the same side features: keep one, the same
                # one in every run
                | f"One{table}" >> beam.CombinePerKey(min)
                | f"{table}Values" >> beam.Values()
                | f"Write{table}"
                >> beam.io.WriteToTFRecord(
                    os.path.join(user_histories.uri, f"Split-{table}", "data_tfrecord"),
                    file_name_suffix=".gz",
                )
            )
        histories = (
            events
            | "GroupByUser" >> beam.GroupByKey()
            | "UserHistory" >> beam.FlatMap(_user_history, session_gap)
        )
        for split in ROLE_OF_SPLIT:
            _ = (
                histories
                | f"Select{split}" >> beam.Filter(lambda kv, s=split: kv[0] == s)
                | f"Values{split}" >> beam.Values()
                | f"WriteUsers{split}"
                >> beam.io.WriteToTFRecord(
                    os.path.join(user_histories.uri, f"Split-{split}", "data_tfrecord"),
                    file_name_suffix=".gz",
                )
            )
        _ = (
            events
            | "TrainOnly" >> beam.Filter(lambda kv: kv[1][3] == TRAIN)
            | "ByItem" >> beam.Map(lambda kv: (kv[1][1], (kv[1][0], kv[0], kv[1][2])))
            | "GroupByItem" >> beam.GroupByKey()
            | "ItemHistory" >> beam.Map(_item_history)
            | "WriteItems"
            >> beam.io.WriteToTFRecord(
                os.path.join(item_histories.uri, "Split-train", "data_tfrecord"), file_name_suffix=".gz"
            )
        )
    user_histories.split_names = encode_split_names([*ROLE_OF_SPLIT, *SIDE_TABLES])
    item_histories.split_names = encode_split_names([SPLIT_OF_ROLE[TRAIN]])
