"""The input of U_pf: each user's liked movies (rated >= a threshold), in time order, cut before the
predicted event (Wang et al. §IV.C, "user preference feature extraction").

The paper takes "all movies rated by each user"; with any split that includes the predicted rating
itself. Here a prediction at time t sees only the user's liked events with a timestamp strictly smaller
than t (the project's tie rule: same-second events are never context for each other), the latest
`max_history` of them — fewer where that count would split a group of same-second events: the window
then starts after the group (a group is unordered, so no "latest" part of it exists). Windows are
positions into the flat liked-event arrays, right-padded with -1
(oldest first, so the LSTM's last valid step is the latest liked movie).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from movierec.models.base import UserSequences, gather_ranges


@dataclass(frozen=True)
class LikedHistory:
    """The liked events of `n_users` users: user u owns rows indptr[u]:indptr[u+1], in time order."""

    indptr: np.ndarray  # [n_users + 1] int64
    items: np.ndarray  # [n_liked] int32
    timestamps: np.ndarray  # [n_liked] int64

    @classmethod
    def from_sequences(cls, sequences: UserSequences, threshold: float) -> LikedHistory:
        liked = sequences.ratings >= threshold
        cumulative = np.r_[0, np.cumsum(liked)].astype(np.int64)
        return cls(
            indptr=cumulative[sequences.indptr],
            items=sequences.items[liked].astype(np.int32),
            timestamps=sequences.timestamps[liked].astype(np.int64),
        )

    @property
    def n_users(self) -> int:
        return len(self.indptr) - 1

    def counts_before(self, users: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
        """How many of each user's liked events have a timestamp strictly smaller than `timestamps`."""
        users = np.asarray(users, dtype=np.int64)
        timestamps = np.asarray(timestamps, dtype=np.int64)
        if len(users) == 0:
            return np.zeros(0, dtype=np.int64)
        # One sorted key (user, time rank) for the events; a query's count is where its key would go.
        _, ranks = np.unique(np.r_[self.timestamps, timestamps], return_inverse=True)
        width = np.int64(ranks.max() + 1)
        owners = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.indptr))
        event_keys = owners * width + ranks[: len(self.timestamps)]
        query_keys = users * width + ranks[len(self.timestamps) :]
        return np.searchsorted(event_keys, query_keys, side="left") - self.indptr[users]

    def windows(self, users: np.ndarray, counts: np.ndarray, max_history: int) -> np.ndarray:
        """[n, L] rows into `items`: the last min(count, max_history) of the user's first `counts`
        liked events, less the part of a same-second group the cut would split, oldest first,
        right-padded with -1; L = the longest window (at least 1)."""
        users = np.asarray(users, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        first = self.indptr[users]
        start = first + counts - np.minimum(counts, max_history)
        # a window whose first event shares its second with the event before it starts after them
        cut = start > first
        if cut.any():
            times = self.timestamps
            cut[cut] = times[start[cut] - 1] == times[start[cut]]
            start[cut] = self.group_ends(start[cut])
        lengths = np.maximum(first + counts - start, 0)
        width = max(int(lengths.max(initial=0)), 1)
        out = np.full((len(users), width), -1, dtype=np.int64)
        rows = gather_ranges(first + counts - lengths, lengths)
        columns = np.arange(int(lengths.sum())) - np.repeat(np.r_[0, np.cumsum(lengths)[:-1]], lengths)
        out[np.repeat(np.arange(len(users)), lengths), columns] = rows
        return out

    def group_ends(self, rows: np.ndarray) -> np.ndarray:
        """For liked-event rows, the row just after each one's group of same-second events of the
        same user."""
        owners = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(self.indptr))
        keys = np.stack([owners, self.timestamps])
        boundary = np.r_[True, (keys[:, 1:] != keys[:, :-1]).any(axis=0), True]
        ends = np.flatnonzero(boundary)  # group starts, and the end of the last one
        return ends[np.searchsorted(ends, rows, side="right")]


def liked_counts_at(
    sequences: UserSequences, threshold: float, users: np.ndarray, positions: np.ndarray
) -> np.ndarray:
    """How many of the first `positions` events of each user's stream in `sequences` are liked (a
    query's visible context: its position is the start of the target's tie group)."""
    cumulative = np.r_[0, np.cumsum(sequences.ratings >= threshold)].astype(np.int64)
    first = sequences.indptr[np.asarray(users, dtype=np.int64)]
    return cumulative[first + np.asarray(positions, dtype=np.int64)] - cumulative[first]
