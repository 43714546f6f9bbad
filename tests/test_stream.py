"""Event streams and queries: each prediction sees only strictly earlier events."""

import numpy as np

from movierec.data import interactions_frame
from movierec.data.splits import TEST, temporal_split
from movierec.data.stream import build_queries, build_stream

ROWS = [
    ("u", "a", 5, 1),
    ("u", "b", 4, 2),
    ("v", "a", 3, 3),
    ("v", "c", 2, 4),
    ("u", "c", 5, 10),
    ("u", "a", 1, 11),
    ("v", "b", 3, 10_000),
    ("u", "b", 2, 12),
]


def make():
    df = interactions_frame(ROWS)
    split = temporal_split(df, cut_time=10, validation_share=0.0)
    return df, split, build_stream(df, split, session_gap=3600)


def test_stream_is_grouped_by_user_in_time_order():
    _, _, stream = make()
    assert stream.user_ids.tolist() == ["u", "v"]
    assert stream.item_ids.tolist() == ["a", "b", "c"]
    seq = stream.sequences
    assert seq.indptr.tolist() == [0, 5, 8]
    assert stream.item_ids[seq.items].tolist() == ["a", "b", "c", "a", "b", "a", "c", "b"]
    assert seq.timestamps.tolist() == [1, 2, 10, 11, 12, 3, 4, 10_000]
    # u pauses 8 s (same session); v pauses ~3 h (new session)
    assert seq.session_start.tolist() == [True, False, False, False, False, True, False, True]


def test_training_data_is_the_prefix_before_the_cut():
    _, _, stream = make()
    train = stream.training_data()
    assert train.sequences.indptr.tolist() == [0, 2, 4]
    assert train.sequences.timestamps.max() < 10


def test_next_item_queries_expose_only_earlier_events():
    _, _, stream = make()
    queries = build_queries(stream, TEST, "next-item")
    assert queries.users.tolist() == [0, 0, 0, 1]
    assert queries.positions.tolist() == [2, 3, 4, 2]
    assert stream.item_ids[queries.relevant.indices].tolist() == ["c", "a", "b", "b"]
    assert queries.session_starts.tolist() == [0, 0, 0, 2]
    batch, relevant, ignored = queries.batch(1, 3, stream.sequences)
    assert ignored.indptr.tolist() == [0, 0, 0]  # no ties here
    query, items = batch.visible()
    assert query.tolist() == [0, 0, 0, 1, 1, 1, 1]
    assert stream.item_ids[items].tolist() == ["a", "b", "c", "a", "b", "c", "a"]
    assert batch.last_items().tolist() == [2, 0]
    assert relevant.indptr.tolist() == [0, 1, 2]


def test_user_queries_gather_the_period_per_user():
    _, _, stream = make()
    queries = build_queries(stream, TEST, "user")
    assert queries.users.tolist() == [0, 1]
    assert queries.positions.tolist() == [2, 2]
    assert queries.relevant.indptr.tolist() == [0, 3, 4]
    assert sorted(stream.item_ids[queries.relevant.indices[:3]].tolist()) == ["a", "b", "c"]


def test_unknown_raw_ids_encode_to_minus_one():
    _, _, stream = make()
    assert stream.encode_items(["c", "zzz", "a"]).tolist() == [2, -1, 0]
    assert np.array_equal(stream.encode_users(["v"]), [1])
