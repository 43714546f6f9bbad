"""From a split to what models consume: integer ids, per-user event streams, evaluation queries.

Ids are assigned from the training events only (sorted raw ids, so the mapping is deterministic).
The stream holds every kept event — training and evaluation alike — in the protocol's chronological
order; a query for an evaluation event exposes only the events before it, so each prediction uses
only events strictly earlier in time (see `movierec.splits.chronological_order` for ties).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from movierec.evaluation import Ragged
from movierec.models.base import QueryBatch, TrainingData, UserSequences
from movierec.splits import TRAIN, Split, chronological_order, session_starts

QUERY_MODES = ("next-item", "user")
DEFAULT_SESSION_GAP = 3600  # seconds of inactivity that end a session


@dataclass(frozen=True)
class EventStream:
    user_ids: np.ndarray  # encoded user -> raw id
    item_ids: np.ndarray  # encoded item -> raw id
    sequences: UserSequences  # all kept events, per user in chronological order
    roles: np.ndarray  # role of each event in `sequences` (splits.TRAIN / VALIDATION / TEST)
    session_gap: int

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def training_data(self) -> TrainingData:
        """The training events: for both protocols they are a prefix of every user's stream."""
        is_train = self.roles == TRAIN
        train_lengths = np.bincount(self.sequences.users[is_train], minlength=self.n_users)
        return TrainingData(self.n_users, self.n_items, self.sequences.prefix(train_lengths))

    def encode_items(self, raw_ids) -> np.ndarray:
        """Encoded ids of raw item ids; -1 for items unknown to the model."""
        return lookup_ids(self.item_ids, raw_ids)

    def encode_users(self, raw_ids) -> np.ndarray:
        return lookup_ids(self.user_ids, raw_ids)


def lookup_ids(vocabulary: np.ndarray, raw_ids) -> np.ndarray:
    """Index of each raw id in `vocabulary` (any order, e.g. TFT's by frequency); -1 if absent."""
    raw = np.asarray(raw_ids, dtype=vocabulary.dtype)
    if len(vocabulary) == 0:
        return np.full(raw.shape, -1, dtype=np.int64)
    sorter = np.argsort(vocabulary, kind="stable")
    position = np.searchsorted(vocabulary, raw, sorter=sorter).clip(0, len(vocabulary) - 1)
    index = sorter[position]
    return np.where(vocabulary[index] == raw, index, -1).astype(np.int64)


def build_stream(
    interactions: pd.DataFrame, split: Split, session_gap: int = DEFAULT_SESSION_GAP
) -> EventStream:
    users_raw = interactions["user_id"].to_numpy(dtype=str)
    items_raw = interactions["item_id"].to_numpy(dtype=str)
    user_ids = np.unique(users_raw[split.train])
    item_ids = np.unique(items_raw[split.train])

    roles_by_row = split.roles(len(interactions))
    order = chronological_order(interactions)
    order = order[roles_by_row[order] >= 0]
    user = lookup_ids(user_ids, users_raw[order])
    item = lookup_ids(item_ids, items_raw[order])
    # The split already removed evaluation events of unknown users or items; this is a safety net.
    if (user < 0).any() or (item < 0).any():
        raise ValueError("the split kept evaluation events whose user or item is not in training")
    by_user = np.argsort(user, kind="stable")  # stable: chronological within each user
    rows = order[by_user]
    user, item = user[by_user], item[by_user]
    timestamps = interactions["timestamp"].to_numpy(dtype=np.int64)[rows]
    sequences = UserSequences(
        indptr=np.r_[0, np.cumsum(np.bincount(user, minlength=len(user_ids)))].astype(np.int64),
        items=item.astype(np.int32),
        ratings=interactions["rating"].to_numpy(dtype=np.float32)[rows],
        timestamps=timestamps,
        session_start=session_starts(user, timestamps, session_gap),
    )
    return EventStream(user_ids, item_ids, sequences, roles_by_row[rows], session_gap)


@dataclass(frozen=True)
class Queries:
    """What to predict for one role: query q is (users[q], positions[q]) with `relevant.row(q)`."""

    users: np.ndarray
    positions: np.ndarray
    session_starts: np.ndarray
    relevant: Ragged
    mode: str

    def __len__(self) -> int:
        return len(self.users)

    def batch(self, start: int, stop: int, sequences: UserSequences) -> tuple[QueryBatch, Ragged]:
        relevant = Ragged(
            self.relevant.indptr[start : stop + 1] - self.relevant.indptr[start],
            self.relevant.indices[self.relevant.indptr[start] : self.relevant.indptr[stop]],
        )
        batch = QueryBatch(
            self.users[start:stop], self.positions[start:stop], self.session_starts[start:stop], sequences
        )
        return batch, relevant


def build_queries(stream: EventStream, role: int, mode: str = "next-item") -> Queries:
    """Queries for the events of `role`.

    next-item: one query per event, relevant = that event's item, history = the user's events before
               it (GRU4Rec's next-click evaluation, applied to every model).
    user:      one query per user, relevant = every item of the user's `role` events, history = the
               events before the first of them (a top-N list at the start of the period).
    """
    if mode not in QUERY_MODES:
        raise ValueError(f"unknown query mode {mode!r}; choose one of {QUERY_MODES}")
    seq = stream.sequences
    events = np.flatnonzero(stream.roles == role)
    users = seq.users[events]
    positions = events - seq.indptr[users]
    # index of the first event of each event's session
    first_of_session = np.maximum.accumulate(np.where(seq.session_start, np.arange(len(seq.items)), 0))
    session_first = first_of_session[events] - seq.indptr[users]
    if mode == "next-item":
        relevant = Ragged(np.arange(len(events) + 1, dtype=np.int64), seq.items[events].astype(np.int64))
        return Queries(users, positions, session_first, relevant, mode)

    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.zeros(0, int)
    query_users, query_positions = users[starts], positions[starts]
    # unique items per user: sort by (user, item) and keep first occurrences
    order = np.lexsort((seq.items[events], users))
    pair_users, pair_items = users[order], seq.items[events][order]
    first = np.r_[True, (pair_users[1:] != pair_users[:-1]) | (pair_items[1:] != pair_items[:-1])]
    pair_users, pair_items = pair_users[first], pair_items[first]
    counts = np.bincount(np.searchsorted(query_users, pair_users), minlength=len(query_users))
    relevant = Ragged(np.r_[0, np.cumsum(counts)].astype(np.int64), pair_items.astype(np.int64))
    return Queries(query_users, query_positions, query_positions.copy(), relevant, mode)
