"""The `random` protocol (the LSTM+CNN paper's 80/20 split): seeded, file-order free, counted drops,
validation and test users apart; histories are still cut at each target's time downstream."""

from __future__ import annotations

import numpy as np
import pytest

from movierec.constants import TEST, TRAIN
from movierec.data import interactions_frame
from movierec.data.splits import PROTOCOLS, make_split, random_split
from movierec.data.stream import build_queries, build_stream


@pytest.fixture
def events():
    rng = np.random.default_rng(3)
    n = 500
    frame = interactions_frame(
        {
            "user_id": rng.integers(0, 25, n).astype(str),
            "item_id": rng.integers(0, 60, n).astype(str),
            "rating": rng.integers(1, 6, n),
            "timestamp": rng.integers(0, 300, n),
        }
    )
    # the loaders reject duplicate (user, item, timestamp) rows
    return frame.drop_duplicates(["user_id", "item_id", "timestamp"]).reset_index(drop=True)


def test_random_split_is_a_seeded_80_20_partition_with_counted_drops(events):
    split = make_split(events, "random", seed=4)
    assert "random" in PROTOCOLS and split.protocol == "random" and split.params["seed"] == 4
    evaluated = len(events) - len(split.train)
    assert evaluated == round(0.2 * len(events))
    kept = len(split.validation) + len(split.test)
    assert kept + sum(split.dropped.values()) == evaluated
    assert len(np.intersect1d(split.train, np.r_[split.validation, split.test])) == 0
    users = events["user_id"].to_numpy()
    assert not set(users[split.validation]) & set(users[split.test])  # validation and test users apart
    again = random_split(events, seed=4)
    assert np.array_equal(again.train, split.train) and np.array_equal(again.test, split.test)
    other = random_split(events, seed=5)
    assert not np.array_equal(other.test, split.test)


def test_random_split_does_not_depend_on_file_order(events):
    shuffled = events.sample(frac=1.0, random_state=0)
    a, b = random_split(events, seed=1), random_split(shuffled, seed=1)
    key = lambda frame, rows: sorted(map(tuple, frame.iloc[rows].to_numpy().tolist()))  # noqa: E731
    assert key(events, a.test) == key(shuffled, b.test)


def test_queries_of_the_random_protocol_see_only_strictly_earlier_events(events):
    split = random_split(events, seed=0)
    stream = build_stream(events, split)
    queries = build_queries(stream, TEST)
    seq = stream.sequences
    rows = seq.indptr[queries.users] + queries.positions
    targets = np.flatnonzero(stream.roles == TEST)
    # each query's context ends where its target's tie group starts: strictly earlier timestamps only
    assert (seq.timestamps[rows] == seq.timestamps[targets]).all()
    previous = rows - 1
    has = queries.positions > 0
    assert (seq.timestamps[previous[has]] < seq.timestamps[targets[has]]).all()
    assert (stream.roles == TRAIN).sum() == len(split.train)
