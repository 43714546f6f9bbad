"""The side features of a pipeline run (`SideFeatures`), from SequenceGen's side tables through the
transform graph: the Trainer's twin of `movierec.data.side_features` on the command line.

SequenceGen writes one raw Example per training movie (split `items`) and per training user (split
`users`); the transform graph maps their titles, genres and user fields exactly as it maps a serving
request, and `movierec.serving.side_inputs` turns Transform's indices into the ids the model embeds.
An input is off (None, with the reason in `SideFeatures.disabled`) where the schema lacks the feature,
its vocabulary is empty, or no training movie or user has a value.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from movierec.components.histories import vocabulary
from movierec.components.sequence_gen import ITEMS_SPLIT, SIDE_TABLES, USERS_SPLIT
from movierec.data.stream import lookup_ids
from movierec.models.base import SideFeatures
from movierec.serving.side_inputs import (
    ITEM_INPUTS,
    TITLE_SPECIAL,
    UNKNOWN,
    USER_INPUTS,
    field_ids,
    genre_multi_hot,
    optional_features_spec,
    title_word_ids,
)

SIDE_FEATURES_FILE = "side_features.json"  # the Trainer's record of the inputs on and off, in the Model


def side_table_files(train_files: str | list[str], table: str) -> list[str]:
    """The file patterns of a side table next to the train split's (`<artifact>/Split-train/*`)."""
    patterns = [train_files] if isinstance(train_files, str) else list(train_files)
    return [f"{pattern.rstrip('/*').rsplit('/', 1)[0]}/Split-{table}/*" for pattern in patterns]


def _records(patterns: list[str]) -> list[bytes]:
    files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
    if not files:
        return []
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _vocabulary(transform_output, name: str) -> list[str]:
    """A Transform vocabulary's values, [] where the run's data built none (no such feature)."""
    try:
        return vocabulary(transform_output, name).tolist()
    except (ValueError, KeyError, tf.errors.NotFoundError):
        return []


def _transformed(transform_output, records: list[bytes], key: str, names: tuple[str, ...]) -> dict:
    """Raw ids and the transform graph's outputs for the side-table records."""
    wanted = optional_features_spec(transform_output.raw_feature_spec(), (key, *names))
    parsed = tf.io.parse_example(tf.constant(records), wanted)
    outputs = transform_output.transform_features_layer()({k: v for k, v in parsed.items() if k != key})
    ids = tf.reshape(
        tf.sparse.to_dense(parsed[key]) if isinstance(parsed[key], tf.SparseTensor) else parsed[key], [-1]
    )
    return {"ids": ids.numpy().astype(str), **outputs}


def side_features(
    transform_output, train_files: str | list[str], item_vocabulary: np.ndarray, user_vocabulary: np.ndarray
) -> SideFeatures:
    """SideFeatures aligned with the model's indices (Transform's `item_id`/`user_id` vocabularies)."""
    vocabularies: dict[str, list[str]] = {}
    disabled: dict[str, str] = {}
    columns: dict[str, np.ndarray | None] = {name: None for name in (*ITEM_INPUTS, *USER_INPUTS)}
    for table, inputs, index_vocabulary in (
        (ITEMS_SPLIT, ITEM_INPUTS, item_vocabulary),
        (USERS_SPLIT, USER_INPUTS, user_vocabulary),
    ):
        key, names = SIDE_TABLES[table]
        records = _records(side_table_files(train_files, table))
        outputs = _transformed(transform_output, records, key, names) if records else {}
        rows = lookup_ids(index_vocabulary, outputs["ids"]) if records else np.zeros(0, np.int64)
        keep = rows >= 0
        for column, (output, vocabulary_name) in inputs.items():
            entries = _vocabulary(transform_output, vocabulary_name)
            if output not in outputs:
                disabled[column] = f"the run's data has no {vocabulary_name} feature"
                continue
            if not entries:
                disabled[column] = f"no training {table[:-1]} has a {vocabulary_name}"
                continue
            index = outputs[output]
            if column == "item_title_words":
                values, names_by_id = title_word_ids(index, len(entries)), [*TITLE_SPECIAL, *entries]
            elif column == "item_genres":
                values, names_by_id = genre_multi_hot(index, len(entries)), entries
            else:
                values, names_by_id = field_ids(index, len(entries)), [UNKNOWN, *entries]
            values = values.numpy()
            table_values = np.zeros((len(index_vocabulary), *values.shape[1:]), dtype=values.dtype)
            table_values[rows[keep]] = values[keep]
            columns[column] = table_values.astype(np.int8 if column == "item_genres" else np.int32)
            vocabularies[column] = names_by_id
    item_ids = np.asarray(item_vocabulary).astype(str)
    return SideFeatures(**columns, item_ids=item_ids, vocabularies=vocabularies, disabled=disabled)
