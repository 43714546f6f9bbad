"""Protocols: no leakage across the temporal cut, deterministic ties, counted removals."""

import numpy as np
import pytest

from movierec.data import interactions_frame
from movierec.data.splits import (
    chronological_order,
    leave_last_out_split,
    same_second_share,
    session_starts,
    temporal_split,
)


@pytest.fixture
def events():
    rng = np.random.default_rng(7)
    n = 400
    return interactions_frame(
        {
            "user_id": rng.integers(0, 30, n).astype(str),
            "item_id": rng.integers(0, 40, n).astype(str),
            "rating": rng.integers(1, 6, n),
            "timestamp": rng.integers(0, 1000, n),
        }
    )


def test_chronological_order_breaks_ties_independently_of_file_order():
    df = interactions_frame([("2", "b", 3, 5), ("1", "a", 3, 5), ("1", "b", 3, 5), ("1", "a", 4, 1)])
    order = chronological_order(df)
    # time first; user "1"'s two same-second events in a fixed hashed order (not by id); then user "2"
    assert order[0] == 3 and sorted(order[1:3].tolist()) == [1, 2] and order[3] == 0
    shuffled = df.iloc[[2, 0, 3, 1]].reset_index(drop=True)
    assert [tuple(r) for r in shuffled.iloc[chronological_order(shuffled)].to_numpy()] == [
        tuple(r) for r in df.iloc[order].to_numpy()
    ]


def test_temporal_split_has_no_event_from_the_future_in_training(events):
    split = temporal_split(events, test_fraction=0.25, seed=3)
    ts = events["timestamp"].to_numpy()
    cut = split.params["cut_time"]
    assert ts[split.train].max() < cut
    evaluated = np.r_[split.validation, split.test]
    assert ts[evaluated].min() >= cut
    # every row is either trained on, evaluated, or counted as dropped
    assert len(split.train) + len(evaluated) + sum(split.dropped.values()) == len(events)
    # evaluation users and items are known from training
    assert set(events["user_id"].to_numpy()[evaluated]) <= set(events["user_id"].to_numpy()[split.train])
    assert set(events["item_id"].to_numpy()[evaluated]) <= set(events["item_id"].to_numpy()[split.train])
    # validation and test users are disjoint
    users = events["user_id"].to_numpy()
    assert not set(users[split.validation]) & set(users[split.test])


def test_temporal_split_is_seeded(events):
    a, b = temporal_split(events, seed=1), temporal_split(events, seed=1)
    c = temporal_split(events, seed=2)
    assert np.array_equal(a.test, b.test)
    assert not np.array_equal(a.test, c.test)


def test_temporal_split_counts_cold_users_and_items():
    df = interactions_frame(
        [("u", "a", 5, 1), ("u", "b", 5, 2), ("v", "a", 5, 10), ("u", "c", 5, 11), ("u", "a", 4, 12)]
    )
    split = temporal_split(df, cut_time=10, validation_share=0.0)
    assert split.dropped == {"user_not_in_train": 1, "item_not_in_train": 1}
    assert split.test.tolist() == [4]


def test_temporal_split_rejects_an_empty_period(events):
    with pytest.raises(ValueError, match="empty"):
        temporal_split(events, cut_time=10**9)


def test_leave_last_out_takes_each_users_last_events():
    df = interactions_frame(
        [
            ("u", "a", 5, 1),
            ("u", "b", 5, 2),
            ("u", "c", 5, 3),
            ("u", "a", 5, 4),
            ("u", "b", 5, 5),
            ("v", "a", 5, 1),
            ("v", "b", 5, 9),
            ("v", "c", 5, 5),
            ("w", "a", 5, 1),
            ("w", "d", 5, 2),
        ]
    )
    split = leave_last_out_split(df)
    assert sorted(split.test.tolist()) == [4, 6]  # v's last is b at t=9, not the last line of the file
    assert sorted(split.validation.tolist()) == [3, 7]
    assert split.dropped == {"user_not_in_train": 0, "item_not_in_train": 0, "users_too_short": 1}
    assert sorted(split.train.tolist()) == [0, 1, 2, 5, 8, 9]  # w is too short: all its events train


def test_session_starts_split_on_gaps_and_users():
    users = np.array([0, 0, 0, 1, 1])
    ts = np.array([0, 100, 5000, 5001, 5002])
    assert session_starts(users, ts, gap_seconds=3600).tolist() == [True, False, True, True, False]


def test_same_second_share_counts_each_users_consecutive_pairs():
    # u: 1, 5, 5 -> one of two pairs tied; v: 5 (no pair); w: 7, 7 -> one of one; v's 5 is not u's
    df = interactions_frame(
        [
            ("u", "a", 3, 5),
            ("u", "b", 3, 1),
            ("v", "a", 3, 5),
            ("u", "c", 3, 5),
            ("w", "a", 3, 7),
            ("w", "b", 3, 7),
        ]
    )
    assert same_second_share(df) == pytest.approx(2 / 3)
