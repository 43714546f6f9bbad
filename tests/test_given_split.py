"""The given-split protocol: session files evaluated as the papers that publish them do.

Each test session starts from an empty state, every event after the first is a target, seen items
stay in the ranking, and the tie rule still holds (a target's context is its session's strictly
earlier events; its tied events are neither context nor competitors).
"""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from movierec.data import interactions_frame, load_dataset
from movierec.data.splits import TEST, leave_last_out_split, make_split, temporal_split
from movierec.data.stream import build_queries, build_stream
from movierec.evaluation.experiment import EvaluationSettings, prepare, run_experiment

HEADER = "SessionId\tItemId\tTime\n"
# Training popularity: A 4, B 3, C 2, D 1 (items 1-4). Session 2 pauses two hours: still one session.
TRAIN = [(1, 1, 100), (1, 2, 110), (1, 3, 120), (1, 4, 130), (2, 1, 200), (2, 2, 7400), (2, 3, 7410)]
TRAIN += [(3, 1, 300), (3, 2, 310), (4, 1, 400)]
TEST_ROWS = [
    (10, 1, 1000),  # A: first event, no target
    (10, 3, 1010),  # C after [A]
    (11, 99, 1100),  # an item never trained on: dropped and counted
    (11, 2, 1110),  # B: the first kept event, no target
    (11, 4, 1120),  # D after [B]
    (12, 3, 1200),  # C and D tied at the session's start: neither has a context
    (12, 4, 1200),
    (12, 2, 1210),  # B after [C, D]
    (13, 2, 1300),  # B, then C and A in the same second: each predicted from [B] only
    (13, 3, 1310),
    (13, 1, 1310),
    (14, 4, 1400),  # a one-event session: nothing to predict
]


def session_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "sessions"
    folder.mkdir()
    for name, rows in (("train.tsv", TRAIN), ("test.tsv", TEST_ROWS)):
        (folder / name).write_text(HEADER + "".join(f"{s}\t{i}\t{t}\n" for s, i, t in rows))
    return folder


@pytest.fixture
def sessions(tmp_path: Path):
    return load_dataset(session_folder(tmp_path))


def test_given_split_needs_split_files():
    df = interactions_frame([("u", "a", 5, 1), ("u", "b", 5, 2)])
    with pytest.raises(
        ValueError, match=r"given-split needs a layout with its own split files \(session-tsv\)"
    ):
        make_split(df, "given-split")


def test_roles_come_from_the_files_and_unknown_items_are_counted(sessions):
    split = make_split(sessions.interactions, "given-split")
    frame = sessions.interactions
    assert sorted(split.train.tolist()) == list(range(len(TRAIN)))
    assert len(split.validation) == 0
    assert sorted(frame["item_id"].to_numpy()[split.test].tolist()) == sorted(
        str(i) for _, i, _ in TEST_ROWS if i != 99
    )
    assert split.dropped == {"item_not_in_train": 1}
    assert split.params == {"session_ids": True, "exclude_seen": False, "min_context": 1}


def test_test_sessions_are_new_users_with_one_session_each(sessions):
    _, stream = prepare(sessions, "given-split")
    # users come from every kept event: the test sessions 10-14 never occur in training
    assert stream.user_ids.tolist() == ["1", "10", "11", "12", "13", "14", "2", "3", "4"]
    assert stream.training_data().sequences.indptr.tolist() == [0, 4, 4, 4, 4, 4, 4, 7, 9, 10]
    # session 2's two-hour pause does not open a second session: a session id is one session
    session_2 = slice(*stream.sequences.indptr[6:8])
    assert stream.sequences.session_start[session_2].tolist() == [True, False, False]


def test_every_event_after_the_first_is_a_target_from_an_empty_state(sessions):
    _, stream = prepare(sessions, "given-split")
    queries = build_queries(stream, TEST, min_context=1)
    item = {raw: k for k, raw in enumerate(stream.item_ids)}
    user = {raw: k for k, raw in enumerate(stream.user_ids)}
    asked = [
        (stream.user_ids[u], int(p), stream.item_ids[queries.relevant.row(q)].tolist())
        for q, (u, p) in enumerate(zip(queries.users, queries.positions, strict=True))
    ]
    assert asked == [
        ("10", 1, ["3"]),
        ("11", 1, ["4"]),
        ("12", 2, ["2"]),  # after both tied first events; neither of those was asked
        ("13", 1, ["1"]),  # context [B] only: C, in the same second, is no context ...
        ("13", 1, ["3"]),  # (a tie group is stored by item index; that order means nothing)
    ]
    # ... and no competitor either
    assert queries.ignored.row(3).tolist() == [item["3"]] and queries.ignored.row(4).tolist() == [item["1"]]
    # sessions start at their first event: no training state carries into them
    assert queries.session_starts.tolist() == [0] * 5
    assert queries.users.tolist() == [user[u] for u in ("10", "11", "12", "13", "13")]
    # without min_context every test event is asked, first ones included
    assert len(build_queries(stream, TEST)) == len(TEST_ROWS) - 1


def test_seen_items_stay_in_the_ranking_for_session_files(sessions):
    split, stream = prepare(sessions, "given-split")
    _, result = run_experiment(
        sessions, "pop", split=split, stream=stream, settings=EvaluationSettings(bootstrap_resamples=10)
    )
    assert result.evaluation["exclude_seen"] is False and result.evaluation["min_context"] == 1
    assert result.evaluation["queries"] == 5
    # Pop ranks A > B > C > D. C after [A]: 3rd (A, seen, stays ahead); D after [B]: 4th; B after
    # [C, D]: 2nd; C after [B] with A tied (ignored): 2nd; A after [B] with C tied: 1st.
    assert result.metrics["mrr@20"] == pytest.approx(np.mean([1 / 3, 1 / 4, 1 / 2, 1 / 2, 1]))
    assert result.protocol["params"]["exclude_seen"] is False
    # the split's parameter decides: removing seen items would rank C after [A] 2nd, D after [B] 3rd,
    # and C after [B] 1st
    removing = dataclasses.replace(split, params={**split.params, "exclude_seen": True})
    _, removed = run_experiment(
        sessions, "pop", split=removing, stream=stream, settings=EvaluationSettings(bootstrap_resamples=10)
    )
    assert removed.evaluation["exclude_seen"] is True
    assert removed.metrics["mrr@20"] == pytest.approx(np.mean([1 / 2, 1 / 3, 1 / 2, 1, 1]))


def test_user_files_keep_seen_item_removal_and_gap_sessions(tmp_path: Path):
    folder = tmp_path / "users"
    folder.mkdir()
    header = "UserId\tItemId\tRating\tTime\n"
    (folder / "train.tsv").write_text(header + "1\t1\t4\t100\n1\t2\t4\t110\n2\t1\t4\t120\n2\t2\t4\t9000\n")
    (folder / "test.tsv").write_text(header + "1\t1\t4\t200\n3\t2\t4\t300\n3\t1\t4\t310\n")
    ds = load_dataset(folder)
    split, stream = prepare(ds, "given-split", session_gap=3600)
    assert split.params == {"session_ids": False, "exclude_seen": True, "min_context": 1}
    # user 2 paused 8880 s: a second session, as the gap says for user data
    user_2 = slice(*stream.sequences.indptr[1:3])
    assert stream.sequences.session_start[user_2].tolist() == [True, True]
    _, result = run_experiment(
        ds, "pop", split=split, stream=stream, settings=EvaluationSettings(bootstrap_resamples=5)
    )
    assert result.evaluation["exclude_seen"] is True
    # user 1's re-watch of item 1 is asked (context from training); user 3's first event is not
    assert result.evaluation["queries"] == 2


def test_millisecond_data_scales_the_session_gap(tmp_path: Path):
    folder = tmp_path / "ms"
    folder.mkdir()
    header = "UserId\tItemId\tRating\tTime\n"
    # 2000.5 s between user 1's events: one session under a 3600 s gap, in seconds or milliseconds
    (folder / "train.tsv").write_text(header + "1\t1\t4\t100\n1\t2\t4\t2100.5\n")
    (folder / "test.tsv").write_text(header + "1\t1\t4\t2200\n")
    ds = load_dataset(folder)
    assert ds.time_unit == "ms"
    _, stream = prepare(ds, "given-split", session_gap=3600)
    assert stream.session_gap == 3_600_000
    assert stream.sequences.session_start.tolist() == [True, False, False]


def test_user_queries_need_a_context_too(sessions):
    _, stream = prepare(sessions, "given-split")
    # one top-N list per session at its start: a new session has nothing to go on
    assert len(build_queries(stream, TEST, "user", min_context=1)) == 0
    assert len(build_queries(stream, TEST, "user")) == 5


@pytest.mark.parametrize("protocol", ["temporal", "leave-last-out"])
def test_other_protocols_still_encode_exactly_the_training_users(protocol):
    # Users now come from every kept event; these protocols drop evaluation users unseen in training,
    # so their user set (and every encoded id, hence every metric) is what it was.
    rng = np.random.default_rng(5)
    n, late = 500, 30  # users 100-109 only act at the very end: cold users of the temporal split
    df = interactions_frame(
        {
            "user_id": np.r_[rng.integers(0, 60, n), rng.integers(100, 110, late)].astype(str),
            "item_id": rng.integers(0, 50, n + late).astype(str),
            "rating": rng.integers(1, 6, n + late),
            "timestamp": np.r_[rng.integers(0, 2000, n), rng.integers(1990, 2000, late)],
        }
    )
    split = temporal_split(df, seed=1) if protocol == "temporal" else leave_last_out_split(df)
    if protocol == "temporal":
        assert split.dropped["user_not_in_train"] > 0  # there are cold users to keep out
    stream = build_stream(df, split)
    assert np.array_equal(stream.user_ids, np.unique(df["user_id"].to_numpy(dtype=str)[split.train]))
