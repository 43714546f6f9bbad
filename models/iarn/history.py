"""IARN's two histories per (user, item, time): the user's rated items and the item's raters.

The paper describes user i by "all the items rated by her" and item j by "all users who have rated
the item" (§3), with no cut in time. Any rating at or after the predicted one leaks it, so here a pair
(i, j) at time t sees only events with a timestamp strictly smaller than t (the project's tie rule:
same-second events are never context for each other), the latest `max_history` of each side, from the
training ratings (plus, when scoring a query, the user's visible context: recommender.py).

`EventHistory` holds one side's events grouped by owner (a user, or an item), in time order within an
owner; `windows` are rows into its arrays, right-padded with -1 (oldest first, so the recurrences'
last real step is the latest event and padded steps come after it, where the gates are 0).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from movierec.models.base import UserSequences, gather_ranges, tie_shuffled_order


@dataclass(frozen=True)
class EventHistory:
    """Events of `n_owners` owners: owner o owns rows indptr[o]:indptr[o+1], in time order. `others`
    are the counterpart ids (a user's items, or an item's users)."""

    indptr: np.ndarray  # [n_owners + 1] int64
    others: np.ndarray  # [n_events] int32
    ratings: np.ndarray  # [n_events] float32
    timestamps: np.ndarray  # [n_events] int64

    @classmethod
    def of_users(cls, sequences: UserSequences) -> EventHistory:
        """Each user's rated items (the sequences' own order: time, ties by item index)."""
        return cls(
            sequences.indptr.astype(np.int64),
            sequences.items.astype(np.int32),
            sequences.ratings.astype(np.float32),
            sequences.timestamps.astype(np.int64),
        )

    @classmethod
    def of_items(cls, sequences: UserSequences, n_items: int) -> EventHistory:
        """Each item's raters, by (item, time, user index)."""
        users = sequences.users
        order = np.lexsort((users, sequences.timestamps, sequences.items))
        counts = np.bincount(sequences.items, minlength=n_items)
        return cls(
            np.r_[0, np.cumsum(counts)].astype(np.int64),
            users[order].astype(np.int32),
            sequences.ratings[order].astype(np.float32),
            sequences.timestamps[order].astype(np.int64),
        )

    @property
    def n_owners(self) -> int:
        return len(self.indptr) - 1

    @functools.cached_property
    def _distinct_times(self) -> np.ndarray:
        return np.unique(self.timestamps)

    @functools.cached_property
    def _event_keys(self) -> np.ndarray:
        # one sorted key per event: (owner, rank of its timestamp); owners' events are in time order
        width = np.int64(len(self._distinct_times) + 1)
        owners = np.repeat(np.arange(self.n_owners, dtype=np.int64), np.diff(self.indptr))
        return owners * width + np.searchsorted(self._distinct_times, self.timestamps)

    def counts_before(self, owners: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
        """How many of each owner's events have a timestamp strictly smaller than `timestamps`."""
        owners = np.asarray(owners, dtype=np.int64)
        timestamps = np.asarray(timestamps, dtype=np.int64)
        if len(owners) == 0 or len(self.timestamps) == 0:
            return np.zeros(len(owners), dtype=np.int64)
        width = np.int64(len(self._distinct_times) + 1)
        # an event is earlier than t exactly when its time rank is below the number of times < t
        query_keys = owners * width + np.searchsorted(self._distinct_times, timestamps, side="left")
        return np.searchsorted(self._event_keys, query_keys, side="left") - self.indptr[owners]

    def windows(self, owners: np.ndarray, counts: np.ndarray, max_history: int) -> np.ndarray:
        """[n, L] rows: the last min(count, max_history) of each owner's first `counts` events, oldest
        first, right-padded with -1; L = the longest window (at least 1)."""
        owners = np.asarray(owners, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        lengths = np.minimum(counts, max_history)
        width = max(int(lengths.max(initial=0)), 1)
        out = np.full((len(owners), width), -1, dtype=np.int64)
        rows = gather_ranges(self.indptr[owners] + counts - lengths, lengths)
        columns = np.arange(int(lengths.sum())) - np.repeat(np.r_[0, np.cumsum(lengths)[:-1]], lengths)
        out[np.repeat(np.arange(len(owners)), lengths), columns] = rows
        return out

    def tie_shuffled(self, rng: np.random.Generator) -> EventHistory:
        """The same history with every owner's same-timestamp events in a random (seeded) order: the
        canonical order of ties (by index) is not time, so training never learns it as time."""
        if len(self.others) == 0:
            return self
        as_sequences = UserSequences(
            self.indptr, self.others, self.ratings, self.timestamps, np.zeros(len(self.others), bool)
        )
        order = tie_shuffled_order(as_sequences, rng)
        return EventHistory(self.indptr, self.others[order], self.ratings[order], self.timestamps[order])


def gather_window(history: EventHistory, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(counterpart ids with -1 at padding, ratings with 0 at padding) of window `rows`."""
    valid = rows >= 0
    safe = np.where(valid, rows, 0)
    if len(history.others) == 0:
        return np.full(rows.shape, -1, np.int32), np.zeros(rows.shape, np.float32)
    others = np.where(valid, history.others[safe], -1).astype(np.int32)
    ratings = np.where(valid, history.ratings[safe], 0.0).astype(np.float32)
    return others, ratings


def context_history(sequences: UserSequences, users: np.ndarray, positions: np.ndarray) -> EventHistory:
    """A user history of one owner per query: query q owns the first `positions[q]` events of user
    `users[q]`'s stream (its visible context, which ends where the target's tie group starts)."""
    users = np.asarray(users, dtype=np.int64)
    lengths = np.asarray(positions, dtype=np.int64)
    rows = gather_ranges(sequences.indptr[users], lengths)
    return EventHistory(
        np.r_[0, np.cumsum(lengths)].astype(np.int64),
        sequences.items[rows].astype(np.int32),
        sequences.ratings[rows].astype(np.float32),
        sequences.timestamps[rows].astype(np.int64),
    )
