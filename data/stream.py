"""From a split to what models consume: integer ids, per-user event streams, evaluation queries.

Item ids are assigned from the training events only, user ids from every kept event (sorted raw ids,
so the mapping is deterministic): under temporal and leave-last-out these are the training users (they
drop evaluation users unseen in training); under given-split a test session may be new. The stream
holds every kept event — training and evaluation alike — per user in time order.

The context rule, for every protocol and model: an event is never context for, nor a competitor of,
another event of the same user with the same timestamp. A query's context is the user's events with a
strictly smaller timestamp (its position is the start of the target's tie group); the other items of
the target's tie group are removed from that query's ranking (`Queries.ignored`: neither hits nor
misses); the seen-item mask is built from the context alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from movierec.constants import DEFAULT_SESSION_GAP
from movierec.data.splits import TRAIN, Split, session_starts
from movierec.evaluation import Ragged
from movierec.models.base import QueryBatch, TrainingData, UserSequences, canonical_order, gather_ranges

QUERY_MODES = ("next-item", "user")


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
        """The training events (selected by role: under leave-last-out a held-out event may share its
        second with training events and sit among them in the canonical tie order)."""
        return TrainingData(self.n_users, self.n_items, self.sequences.select(self.roles == TRAIN))

    def encode_items(self, raw_ids) -> np.ndarray:
        """Encoded ids of raw item ids; -1 for items unknown to the model."""
        return lookup_ids(self.item_ids, raw_ids)

    def encode_users(self, raw_ids) -> np.ndarray:
        return lookup_ids(self.user_ids, raw_ids)


def lookup_ids(vocabulary: np.ndarray, raw_ids) -> np.ndarray:
    """Index of each raw id in `vocabulary` (any order, e.g. TFT's by frequency); -1 if absent."""
    raw = np.asarray(raw_ids)
    if vocabulary.dtype.kind in "US":
        # Both as the wider string type: casting "1683" to a vocabulary of 3-character ids would
        # truncate it to "168" and silently match that item.
        raw = raw.astype(vocabulary.dtype.type)  # a string type as wide as the longest raw id
        common = np.promote_types(vocabulary.dtype, raw.dtype)
        vocabulary, raw = vocabulary.astype(common), raw.astype(common)
    else:
        raw = raw.astype(vocabulary.dtype)
    if len(vocabulary) == 0:
        return np.full(raw.shape, -1, dtype=np.int64)
    sorter = np.argsort(vocabulary, kind="stable")
    position = np.searchsorted(vocabulary, raw, sorter=sorter).clip(0, len(vocabulary) - 1)
    index = sorter[position]
    return np.where(vocabulary[index] == raw, index, -1).astype(np.int64)


def build_stream(
    interactions: pd.DataFrame, split: Split, session_gap: int = DEFAULT_SESSION_GAP
) -> EventStream:
    """The kept events of `split`, encoded, per user in time order, with their roles.

    Sessions split a user's events at pauses longer than `session_gap` (in the timestamps' unit),
    except where the split says the user ids are session ids (`split.params["session_ids"]`, given-split
    on GRU4Rec's files): each user is then exactly one session, as the file says.
    """
    users_raw = interactions["user_id"].to_numpy(dtype=str)
    items_raw = interactions["item_id"].to_numpy(dtype=str)
    roles_by_row = split.roles(len(interactions))
    kept = np.flatnonzero(roles_by_row >= 0)
    user_ids = np.unique(users_raw[kept])
    item_ids = np.unique(items_raw[split.train])

    user = lookup_ids(user_ids, users_raw[kept])
    item = lookup_ids(item_ids, items_raw[kept])
    # The split already removed evaluation events of unknown items; this is a safety net.
    if (item < 0).any():
        raise ValueError("the split kept evaluation events whose item is not in training")
    all_timestamps = interactions["timestamp"].to_numpy(dtype=np.int64)
    order = canonical_order(user, all_timestamps[kept], item)
    rows = kept[order]
    user, item = user[order], item[order]
    timestamps = all_timestamps[rows]
    sequences = UserSequences(
        indptr=np.r_[0, np.cumsum(np.bincount(user, minlength=len(user_ids)))].astype(np.int64),
        items=item.astype(np.int32),
        ratings=interactions["rating"].to_numpy(dtype=np.float32)[rows],
        timestamps=timestamps,
        session_start=(
            np.r_[True, user[1:] != user[:-1]]
            if split.params.get("session_ids")
            else session_starts(user, timestamps, session_gap)
        ),
    )
    return EventStream(user_ids, item_ids, sequences, roles_by_row[rows], session_gap)


@dataclass(frozen=True)
class Queries:
    """What to predict for one role: query q is (users[q], positions[q]) with `relevant.row(q)`.

    `ignored.row(q)` holds the items of the target's tie group that are not relevant: removed from
    the query's ranking whatever the seen-item setting (they happened in the same second)."""

    users: np.ndarray
    positions: np.ndarray
    session_starts: np.ndarray
    relevant: Ragged
    ignored: Ragged
    mode: str
    # queries (next-item: role events; user: users) not asked because they hold no relevant item
    # (`build_queries(min_relevant_rating=...)`)
    skipped_without_relevant: int = 0

    def __len__(self) -> int:
        return len(self.users)

    def batch(self, start: int, stop: int, sequences: UserSequences) -> tuple[QueryBatch, Ragged, Ragged]:
        """Queries start:stop as a QueryBatch, with their relevant and ignored sets."""
        batch = QueryBatch(
            self.users[start:stop], self.positions[start:stop], self.session_starts[start:stop], sequences
        )
        return batch, self.relevant.slice(start, stop), self.ignored.slice(start, stop)


def _ragged_from_pairs(query: np.ndarray, items: np.ndarray, n_queries: int) -> Ragged:
    """A Ragged from (query, item) pairs, pairs sorted by query and duplicates dropped."""
    order = np.lexsort((items, query))
    query, items = query[order], items[order]
    first = np.r_[True, (query[1:] != query[:-1]) | (items[1:] != items[:-1])] if len(query) else query
    query, items = query[first], items[first]
    indptr = np.r_[0, np.cumsum(np.bincount(query, minlength=n_queries))].astype(np.int64)
    return Ragged(indptr, items.astype(np.int64))


def build_queries(
    stream: EventStream,
    role: int,
    mode: str = "next-item",
    min_context: int = 0,
    min_relevant_rating: float | None = None,
) -> Queries:
    """Queries for the events of `role`.

    next-item: one query per event, relevant = that event's item, context = the user's events with a
               strictly smaller timestamp (GRU4Rec's next-click evaluation, applied to every model).
    user:      one query per user, relevant = every item of the user's `role` events, context = the
               events strictly before the first of them (a top-N list at the start of the period).

    In both, the other events of a target's tie group (same user, same timestamp) are neither context
    nor competitors: their items go to `Queries.ignored`. Queries whose context has fewer than
    `min_context` events are not asked (given-split: the first event of a test session, and the events
    tied with it, have nothing to be predicted from).

    `min_relevant_rating` (None: every `role` event is relevant): only `role` events rated at least
    this much are relevant (the LSIC paper's positives, rating >= 4). A `role` event rated below it
    is "unknown (negative) feedback": it is neither relevant nor ignored, its item stays a candidate,
    and it still counts where time decides — context of later queries, the start of a user's period.
    The tie rule is unchanged: in next-item mode the other events of a target's tie group, low-rated
    ones included, stay ignored; in user mode a list is asked before the whole period, so no order
    inside the period is read and a low-rated event competes with the positives whatever its second.
    A query left without a relevant item (next-item: a low-rated event; user: a user with no positive
    event in the period) is not asked; `Queries.skipped_without_relevant` counts them.
    """
    if mode not in QUERY_MODES:
        raise ValueError(f"unknown query mode {mode!r}; choose one of {QUERY_MODES}")
    if min_relevant_rating is not None and not np.isfinite(min_relevant_rating):
        raise ValueError(f"min_relevant_rating must be a finite number or None, got {min_relevant_rating}")
    seq = stream.sequences
    tie_start, tie_stop = seq.tie_groups
    events = np.flatnonzero(stream.roles == role)
    users = seq.users[events]
    positions = tie_start[events] - seq.indptr[users]
    if min_context > 0:
        if mode == "user":  # a user's query is asked at its first event: keep or drop all its events
            first = np.r_[True, users[1:] != users[:-1]] if len(users) else np.zeros(0, bool)
            asked = np.repeat(positions[first], np.diff(np.r_[np.flatnonzero(first), len(users)]))
        else:
            asked = positions
        enough = asked >= min_context
        events, users, positions = events[enough], users[enough], positions[enough]
    if min_relevant_rating is None:
        positive = np.ones(len(events), dtype=bool)
    else:
        positive = seq.ratings[events] >= min_relevant_rating
    if mode == "next-item":
        skipped = int((~positive).sum())
        events, users, positions = events[positive], users[positive], positions[positive]
    # index of the first event of each event's session (never after the context's end)
    first_of_session = np.maximum.accumulate(np.where(seq.session_start, np.arange(len(seq.items)), 0))
    session_first = np.minimum(first_of_session[events] - seq.indptr[users], positions)
    # every (event, member of its tie group) pair
    group_sizes = tie_stop[events] - tie_start[events]
    members = gather_ranges(tie_start[events], group_sizes)
    owner = np.repeat(np.arange(len(events)), group_sizes)
    if mode == "next-item":
        relevant = Ragged(np.arange(len(events) + 1, dtype=np.int64), seq.items[events].astype(np.int64))
        other = members != events[owner]
        ignored = _ragged_from_pairs(owner[other], seq.items[members[other]], len(events))
        return Queries(users, positions, session_first, relevant, ignored, mode, skipped)

    starts = np.flatnonzero(np.r_[True, users[1:] != users[:-1]]) if len(users) else np.zeros(0, int)
    query_of_event = np.cumsum(np.r_[True, users[1:] != users[:-1]]) - 1 if len(users) else users
    n_queries = len(starts)
    relevant = _ragged_from_pairs(query_of_event[positive], seq.items[events[positive]], n_queries)
    other = stream.roles[members] != role  # tied with a `role` event, but of another role
    ignored = _ragged_from_pairs(query_of_event[owner[other]], seq.items[members[other]], n_queries)
    # the period starts a new session: session models get no session context in this mode
    queries = Queries(users[starts], positions[starts], positions[starts].copy(), relevant, ignored, mode)
    if min_relevant_rating is None:
        return queries
    return _keep_queries(queries, np.diff(relevant.indptr) > 0)


def _keep_queries(queries: Queries, keep: np.ndarray) -> Queries:
    """The queries where `keep` is true; the others are counted as skipped for want of a relevant item."""
    return Queries(
        queries.users[keep],
        queries.positions[keep],
        queries.session_starts[keep],
        _select_rows(queries.relevant, keep),
        _select_rows(queries.ignored, keep),
        queries.mode,
        queries.skipped_without_relevant + int((~keep).sum()),
    )


def _select_rows(sets: Ragged, keep: np.ndarray) -> Ragged:
    lengths = np.diff(sets.indptr)
    indices = sets.indices[gather_ranges(sets.indptr[:-1][keep], lengths[keep])]
    return Ragged(np.r_[0, np.cumsum(lengths[keep])].astype(np.int64), indices)
