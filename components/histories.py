"""Reads SequenceGen's user histories back into the `EventStream` that models and metrics use.

The id spaces are Transform's vocabularies (train split), so the indices a model learns are exactly
the indices the exported transform graph produces at serving time.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from movierec.data.splits import session_starts
from movierec.data.stream import EventStream, lookup_ids
from movierec.models.base import UserSequences, canonical_order, gather_ranges

_SPEC = {
    "user_id": tf.io.FixedLenFeature([], tf.string),
    "item_ids": tf.io.VarLenFeature(tf.string),
    "timestamps": tf.io.VarLenFeature(tf.int64),
    "ratings": tf.io.VarLenFeature(tf.float32),
    "roles": tf.io.VarLenFeature(tf.int64),
    "session_start": tf.io.VarLenFeature(tf.int64),
}


def read_user_histories(file_patterns: str | list[str]) -> dict[str, np.ndarray]:
    """Flat arrays of every history in the files: `user_id` per history, event arrays + `lengths`."""
    patterns = [file_patterns] if isinstance(file_patterns, str) else list(file_patterns)
    files = sorted(f for pattern in patterns for f in tf.io.gfile.glob(pattern))
    batches = []
    if files:
        dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(4096)
        batches = dataset.map(lambda records: tf.io.parse_example(records, _SPEC))
    return _columns(batches)


def parse_user_histories(records: list[bytes]) -> dict[str, np.ndarray]:
    """`read_user_histories` of serialized user-history Examples (e.g. a Beam worker's batch)."""
    return _columns([tf.io.parse_example(tf.constant(records, dtype=tf.string), _SPEC)] if records else [])


def _columns(parsed_batches) -> dict[str, np.ndarray]:
    columns: dict[str, list] = {name: [] for name in _SPEC}
    columns["lengths"] = []
    for batch in parsed_batches:
        columns["user_id"].append(batch["user_id"].numpy().astype(str))
        items = tf.RaggedTensor.from_sparse(batch["item_ids"])
        columns["lengths"].append(items.row_lengths().numpy())
        columns["item_ids"].append(items.flat_values.numpy().astype(str))
        for name in ("timestamps", "ratings", "roles", "session_start"):
            columns[name].append(batch[name].values.numpy())
    empty = {
        "user_id": str,
        "item_ids": str,
        "timestamps": np.int64,
        "ratings": np.float32,
        "roles": np.int64,
        "session_start": np.int64,
        "lengths": np.int64,
    }
    return {
        name: np.concatenate(parts) if parts else np.zeros(0, dtype=empty[name])
        for name, parts in columns.items()
    }


def vocabulary(transform_output, name: str) -> np.ndarray:
    """A Transform vocabulary as raw ids, in Transform's index order."""
    return np.array(
        [v.decode() if isinstance(v, bytes) else v for v in transform_output.vocabulary_by_name(name)]
    )


def stream_from_histories(
    histories: dict[str, np.ndarray], item_vocab: np.ndarray, user_vocab: np.ndarray, session_gap: int
) -> EventStream:
    """An EventStream over the vocabularies' id spaces; users without a history get an empty one."""
    users = lookup_ids(user_vocab, histories["user_id"])
    items = lookup_ids(item_vocab, histories["item_ids"])
    if (users < 0).any() or (items < 0).any():
        raise ValueError("histories name users or items missing from the Transform vocabularies")
    # histories may come in any order: lay them out by user index
    lengths = np.zeros(len(user_vocab), dtype=np.int64)
    lengths[users] = histories["lengths"]
    indptr = np.r_[0, np.cumsum(lengths)].astype(np.int64)
    starts_in_file = np.r_[0, np.cumsum(histories["lengths"])[:-1]]
    by_user = np.argsort(users)
    source = gather_ranges(starts_in_file[by_user], histories["lengths"][by_user])
    # tie groups in the canonical (item index) order, as the command line's streams
    event_users = np.repeat(np.arange(len(user_vocab)), lengths)
    source = source[canonical_order(event_users, histories["timestamps"][source], items[source])]
    timestamps = histories["timestamps"][source].astype(np.int64)
    sequences = UserSequences(
        indptr=indptr,
        items=items[source].astype(np.int32),
        ratings=histories["ratings"][source].astype(np.float32),
        timestamps=timestamps,
        # recomputed in the canonical order with the command line's rule (SequenceGen's flags follow
        # its own tie order, in which another event of the opening second may come first)
        session_start=session_starts(event_users, timestamps, session_gap),
    )
    return EventStream(
        user_vocab, item_vocab, sequences, histories["roles"][source].astype(np.int8), session_gap
    )
